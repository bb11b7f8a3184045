/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox-fs.c - see sandbox-fs.h. The root fds are opened before the sandbox is built, so what fs/ serves
 * is the directory the policy named at resolve time, whatever happens to the path afterwards; fs/ then
 * resolves everything beneath that fd without following symlinks out of it.
 *
 * Start path: the sandbox mounts the roots while the session record is still being written (run-session in
 * a thread), so a root's /dev/fuse fd is only parked when it arrives; serving starts once the store and the
 * session are set (nono_run_fs_set_store), whichever comes last. Until then the kernel queues the requests
 * (INIT first): a process touching the mount waits, nothing is served unrecorded.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs/fs.h"
#include "launcher/sandbox-fs.h"
#include "launcher/sandbox-util.h"

struct root {
        const struct nono_grant *g;
        int fd;
        int fuse_fd; /* parked until the session is set; -1 */
        bool is_file;
        bool attached; /* its fd was handed over (served or parked) */
        nono_fs *fs;
        struct nono_fs_rule *rules;
        size_t n_rules;
};

struct nono_run_fs {
        const struct nono_policy *p;
        struct root *roots;
        size_t n;
        char **paths;
        nono_store *st;
        char *session;
        pthread_mutex_t lock; /* roots' fuse_fd/fs, st, session, ready: the session thread sets the store */
        bool ready;           /* set_store was called: parked roots start, new ones start at once */
        bool defer;           /* nono_run_fs_defer: a root whose fd comes once ready is parked all the same */
        bool failed;          /* a parked root could not be served (nono_run_fs_serve_parked) */
};

/* Rules of a root: deny patterns below it (relative), relative globs, and nono's state below it. */
static int add_rule(struct root *r, const char *pattern, unsigned deny)
{
        struct nono_fs_rule *v = realloc(r->rules, (r->n_rules + 1) * sizeof(*v));

        if (!v)
                return -ENOMEM;
        r->rules = v;
        v[r->n_rules].pattern = strdup(pattern);
        v[r->n_rules].deny = deny;
        if (!v[r->n_rules].pattern)
                return -ENOMEM;
        r->n_rules++;
        return 0;
}

static unsigned deny_bits(unsigned access)
{
        return (access & NONO_ACCESS_READ ? NONO_DENY_READ : 0) |
               (access & NONO_ACCESS_WRITE ? NONO_DENY_WRITE : 0);
}

static int root_rules(struct root *r, const struct nono_policy *p, char *const *state)
{
        size_t n = strlen(r->g->path);
        int e;

        for (size_t i = 0; i < p->n_denies; i++) {
                const char *pat = p->denies[i].pattern;
                if (pat[0] != '/') {
                        if ((e = add_rule(r, pat, deny_bits(p->denies[i].access))) < 0)
                                return e;
                } else if (strncmp(pat, r->g->path, n) == 0 && pat[n] == '/' && pat[n + 1]) {
                        if ((e = add_rule(r, pat + n + 1, deny_bits(p->denies[i].access))) < 0)
                                return e;
                }
        }
        for (size_t i = 0; state && state[i]; i++)
                if (strncmp(state[i], r->g->path, n) == 0 && state[i][n] == '/' &&
                    (e = add_rule(r, state[i] + n + 1, NONO_DENY_READ | NONO_DENY_WRITE)) < 0)
                        return e;
        return 0;
}

int nono_run_fs_open(const struct nono_policy *p, char *const *state_paths, struct nono_run_fs **out,
                     char *err, size_t errlen)
{
        struct nono_run_fs *f = calloc(1, sizeof(*f));
        int r;

        if (f)
                pthread_mutex_init(&f->lock, NULL);
        if (!f || !(f->roots = calloc(p->n_grants + 1, sizeof(*f->roots))) ||
            !(f->paths = calloc(p->n_grants + 1, sizeof(char *)))) {
                nono_run_fs_free(f);
                return -ENOMEM;
        }
        f->p = p;
        for (size_t i = 0; i < p->n_grants; i++) {
                const struct nono_grant *g = &p->grants[i];
                if (g->system)
                        continue;
                struct root *rt = &f->roots[f->n];
                struct stat st;
                rt->g = g;
                rt->fuse_fd = -1;
                rt->fd = open(g->path, O_PATH | O_CLOEXEC | (g->is_file ? 0 : O_DIRECTORY));
                if (rt->fd < 0 || fstat(rt->fd, &st) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot open %s: %s", g->path, strerror(errno));
                        nono_run_fs_free(f);
                        return r;
                }
                rt->is_file = S_ISREG(st.st_mode);
                f->paths[f->n++] = g->path;
                if ((r = root_rules(rt, p, state_paths)) < 0) {
                        snprintf(err, errlen, "out of memory");
                        nono_run_fs_free(f);
                        return r;
                }
        }
        *out = f;
        return 0;
}

static int root_serve(struct nono_run_fs *f, struct root *rt, unsigned index);
static int root_fs(struct nono_run_fs *f, struct root *rt, unsigned index);

int nono_run_fs_set_store(struct nono_run_fs *f, struct nono_store *st, const char *session)
{
        int ret = 0;

        pthread_mutex_lock(&f->lock);
        f->st = st;
        free(f->session);
        f->session = session ? strdup(session) : NULL;
        f->ready = true;
        /* every root's instance now (the session thread is off the sandbox's path), so that a root whose
         * fd comes later only attaches and starts; parked ones are served at once */
        for (size_t i = 0; i < f->n; i++) {
                struct root *rt = &f->roots[i];
                bool parked = rt->fuse_fd >= 0;
                int r = parked ? root_serve(f, rt, (unsigned)i) : root_fs(f, rt, (unsigned)i);
                if (r < 0 && !parked) /* root_serve says it itself */
                        fprintf(stderr, "nono: cannot serve %s: %s\n", rt->g->path, strerror(-r));
                if (r < 0 && !ret)
                        ret = r;
        }
        pthread_mutex_unlock(&f->lock);
        return ret;
}

char **nono_run_fs_roots(struct nono_run_fs *f)
{
        return f->paths;
}

static int root_fs(struct nono_run_fs *f, struct root *rt, unsigned index)
{
        bool rec = f->st && f->session;
        struct nono_fs_config cfg = {
            .root_fd = rt->fd,
            .root_path = rt->g->path,
            .root_id = index,
            .read_only = !(rt->g->access & NONO_ACCESS_WRITE),
            .preimages = rec && f->p->rollback,
            .record = rec && f->p->audit,
            .rules = rt->rules,
            .n_rules = rt->n_rules,
            .store = f->st,
            .session = f->session,
        };

        if (rt->fs)
                return 0;
        return nono_fs_new(&cfg, &rt->fs);
}

/* Makes the root's fs/ instance and serves the parked fd; under f->lock, once ready. */
static int root_serve(struct nono_run_fs *f, struct root *rt, unsigned index)
{
        int fd = rt->fuse_fd, r;

        rt->fuse_fd = -1;
        if ((r = root_fs(f, rt, index)) < 0) {
                close(fd);
        } else {
                r = nono_fs_attach(rt->fs, fd); /* the FUSE session owns fd from here on */
                if (r < 0)
                        close(fd);
                if (r >= 0)
                        r = nono_fs_start(rt->fs);
        }
        if (r < 0)
                fprintf(stderr, "nono: cannot serve %s: %s\n", rt->g->path, strerror(-r));
        return r;
}

int nono_run_fs_chan(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct nono_run_fs *f = userdata;
        struct root *rt = m->index < f->n ? &f->roots[m->index] : NULL;
        int r;

        if (!rt || m->kind != NONO_CHAN_FUSE_FD || fd < 0 || rt->attached) {
                if (fd >= 0)
                        close(fd);
                reply->status = -EINVAL;
                return 0;
        }
        if (m->arg > 0 && m->arg2 == 0) /* the mount's anonymous device, from the child */
                nono_fs_tune_readahead(makedev(0, (unsigned)m->arg));
        pthread_mutex_lock(&f->lock);
        rt->attached = true;
        rt->fuse_fd = fd;
        bool later = f->ready && f->defer;
        r = f->ready && !f->defer ? root_serve(f, rt, m->index) : 0;
        pthread_mutex_unlock(&f->lock);
        reply->status = r;
        return later ? 1 : 0;
}

void nono_run_fs_serve_parked(struct nono_run_fs *f)
{
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; f->ready && i < f->n; i++)
                if (f->roots[i].fuse_fd >= 0 && root_serve(f, &f->roots[i], (unsigned)i) < 0)
                        f->failed = true; /* root_serve said why */
        pthread_mutex_unlock(&f->lock);
}

void nono_run_fs_defer(struct nono_run_fs *f, bool on)
{
        pthread_mutex_lock(&f->lock);
        f->defer = on;
        pthread_mutex_unlock(&f->lock);
}

bool nono_run_fs_failed(struct nono_run_fs *f)
{
        pthread_mutex_lock(&f->lock);
        bool r = f->failed;
        pthread_mutex_unlock(&f->lock);
        return r;
}

struct stopper {
        nono_fs *fs;
        int r;
        pthread_t t;
        bool threaded;
};

static void *stop_main(void *arg)
{
        struct stopper *s = arg;

        s->r = nono_fs_stop_queued(s->fs);
        return NULL;
}

/* Each root waits for its loop to end (its mount went with the sandbox) and queues its last events, which
 * the session's end commits with its end event and seal. With --rollback the roots stop side by side: each
 * writes the post-images of what changed in it, which takes time; without, starting a thread costs more
 * than the stop. */
int nono_run_fs_stop(struct nono_run_fs *f, struct nono_run_fs_totals *t)
{
        _cleanup_free_ struct stopper *st = f && f->n ? calloc(f->n, sizeof(*st)) : NULL;
        int ret = 0;

        *t = (struct nono_run_fs_totals){0};
        for (size_t i = 0; st && i < f->n; i++) {
                st[i].fs = f->roots[i].fs;
                if (i > 0 && st[i].fs && f->p->rollback)
                        st[i].threaded = pthread_create(&st[i].t, NULL, stop_main, &st[i]) == 0;
        }
        for (size_t i = 0; f && i < f->n; i++) {
                struct nono_fs_stats s;
                if (!f->roots[i].fs)
                        continue;
                int r;
                if (st && st[i].threaded) {
                        pthread_join(st[i].t, NULL);
                        r = st[i].r;
                } else {
                        r = nono_fs_stop_queued(f->roots[i].fs);
                }
                if (r < 0 && !ret) {
                        fprintf(stderr, "nono: stopping %s: %s\n", f->roots[i].g->path, strerror(-r));
                        ret = r;
                }
                nono_fs_get_stats(f->roots[i].fs, &s);
                t->files_read += s.files_read;
                t->files_changed += s.files_changed;
                t->violations += s.violations;
                t->events += s.events;
                t->preimage_bytes += s.preimage_bytes;
        }
        return ret;
}

void nono_run_fs_free(struct nono_run_fs *f)
{
        if (!f)
                return;
        for (size_t i = 0; f->roots && i < f->n; i++) {
                nono_fs_free(f->roots[i].fs);
                if (f->roots[i].fuse_fd >= 0)
                        close(f->roots[i].fuse_fd);
                if (f->roots[i].fd >= 0)
                        close(f->roots[i].fd);
                for (size_t k = 0; k < f->roots[i].n_rules; k++)
                        free((char *)f->roots[i].rules[k].pattern);
                free(f->roots[i].rules);
        }
        free(f->roots);
        free(f->paths);
        free(f->session);
        pthread_mutex_destroy(&f->lock);
        free(f);
}
