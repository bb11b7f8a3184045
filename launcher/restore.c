/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore.c - the rollback engine's driver (contract in restore.h): checks the session, builds the plan,
 * records the restore as its own session (pre-images of everything it will overwrite or remove, durable
 * before the journal and before the first change), applies the plan, writes the restore session's
 * post-images, and finishes both sessions. A pending journal always wins: re-running the command completes
 * the interrupted restore instead of planning a new one on a half-restored tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher/restore_fs.h"
#include "launcher/restore_int.h"

static __thread char errbuf[1024];

const char *nono_restore_errmsg(void)
{
        return errbuf;
}

void rb_set_err(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, sizeof errbuf, fmt, ap);
        va_end(ap);
}

int rb_step_add(struct rb_plan *p, uint8_t op, uint8_t how, uint32_t root, uint64_t node, const char *path,
                const char *path2)
{
        if ((p->n_steps & (p->n_steps + 1)) == 0 || !p->steps) {
                struct rb_step *nv = realloc(p->steps, (p->n_steps + 1) * 2 * sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                p->steps = nv;
        }
        struct rb_step *s = &p->steps[p->n_steps++];
        *s = (struct rb_step){.op = op, .how = how, .root = root, .node = node};
        s->path = strdup(path ? path : "");
        s->path2 = path2 ? strdup(path2) : NULL;
        return s->path ? 0 : -ENOMEM;
}

void rb_plan_free(struct rb_plan *p)
{
        for (size_t i = 0; i < p->n_items; i++) {
                free(p->items[i].path);
                free(p->items[i].rec.post_link_target);
                free(p->items[i].content);
        }
        free(p->items);
        for (size_t i = 0; i < p->n_steps; i++) {
                free(p->steps[i].path);
                free(p->steps[i].path2);
        }
        free(p->steps);
        free(p->placed);
        free(p->relinked);
        for (size_t i = 0; p->rootfds && i < p->n_roots; i++) {
                if (p->rootfds[i] >= 0)
                        close(p->rootfds[i]);
                if (p->fsstash && p->fsstash[i] >= 0)
                        close(p->fsstash[i]);
        }
        free(p->rootfds);
        free(p->fsstash);
        for (size_t i = 0; p->filebase && i < p->n_roots; i++)
                free(p->filebase[i]);
        free(p->filebase);
        memset(p, 0, sizeof *p);
}

int rb_open_roots(struct rb_plan *p)
{
        p->rootfds = calloc(p->n_roots + 1, sizeof *p->rootfds);
        p->fsstash = calloc(p->n_roots + 1, sizeof *p->fsstash);
        p->filebase = calloc(p->n_roots + 1, sizeof *p->filebase);
        if (!p->rootfds || !p->fsstash || !p->filebase)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_roots; i++)
                p->rootfds[i] = p->fsstash[i] = -1;
        for (size_t i = 0; i < p->n_roots; i++) {
                char name[128];
                int parent;
                snprintf(name, sizeof name, RB_FS_STASH_PREFIX "%s.%zu", p->session, i);
                p->rootfds[i] = open(p->roots[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (p->rootfds[i] < 0 && errno == ENOTDIR) {
                        /* a root that is a single file: work in its directory, on its name */
                        char *dir = strdup(p->roots[i]), *sl = dir ? strrchr(dir, '/') : NULL;
                        if (sl) {
                                p->filebase[i] = strdup(sl + 1);
                                *(sl == dir ? sl + 1 : sl) = 0;
                                p->rootfds[i] = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        }
                        free(dir);
                }
                if (p->rootfds[i] < 0)
                        continue; /* an error only if the restore needs it (rb_plan_build) */
                /* fs/ keeps it next to the root (same filesystem), else inside it */
                parent = p->filebase[i] ? -1 : openat(p->rootfds[i], "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (parent >= 0) {
                        p->fsstash[i] = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        close(parent);
                }
                if (p->fsstash[i] < 0 || p->filebase[i])
                        p->fsstash[i] =
                            openat(p->rootfds[i], name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        return 0;
}

int rb_fs_stash_entry(const struct rb_plan *p, uint32_t root, uint64_t node)
{
        char name[32];
        int fd;

        if (!p->fsstash || root >= p->n_roots || p->fsstash[root] < 0)
                return -ENOENT;
        snprintf(name, sizeof name, "%llu", (unsigned long long)node);
        fd = openat(p->fsstash[root], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int rb_fs_hlink_entry(const struct rb_plan *p, uint32_t root, uint64_t node, char *name)
{
        char buf[32];
        int fd;

        if (!name)
                name = buf;
        snprintf(name, 32, "h%llu", (unsigned long long)node);
        if (!p->fsstash || root >= p->n_roots || p->fsstash[root] < 0)
                return -ENOENT;
        fd = openat(p->fsstash[root], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static uint64_t pid_start_time(void)
{
        char buf[1024], *p;
        int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        unsigned long long v = 0;

        if (fd >= 0)
                close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        p = strrchr(buf, ')');
        /* after ") " come fields 3..; starttime is field 22 */
        for (int f = 3; p && f < 22; f++)
                p = strchr(p + 1, ' ');
        if (p)
                sscanf(p + 1, "%llu", &v);
        return v;
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void rb_timing(const char *what)
{
        static int on = -1;
        static struct timespec last, lastcpu;
        struct timespec t, cpu;

        if (on < 0)
                on = getenv("NONO_RESTORE_TIMING") != NULL;
        if (!on)
                return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        if (what && last.tv_sec)
                fprintf(stderr, "nono: timing: %-16s %8.1f ms wall %8.1f ms cpu\n", what,
                        (t.tv_sec - last.tv_sec) * 1e3 + (t.tv_nsec - last.tv_nsec) / 1e6,
                        (cpu.tv_sec - lastcpu.tv_sec) * 1e3 + (cpu.tv_nsec - lastcpu.tv_nsec) / 1e6);
        last = t;
        lastcpu = cpu;
}

/* Stores a file's content. A small file is read into a buffer of its size: nono_object_put_fd() reads
 * through 1 MiB blocks, and with thousands of async puts in flight those are fresh mmap()s whose munmap()
 * costs a TLB shootdown on every CPU (perf: a third of a 10,000-file restore's CPU). */
static int put_content(nono_store *st, int fd, const struct stat *sb, nono_digest *out, uint64_t *size)
{
        size_t cap = (size_t)sb->st_size + 1, got = 0;
        char stackbuf[4096], *buf;
        int r;

        if (sb->st_size > 256 * 1024)
                return nono_object_put_fd(st, fd, out, size, NONO_ASYNC);
        buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
        if (!buf)
                return -ENOMEM;
        while (got < cap) {
                ssize_t k = pread(fd, buf + got, cap - got, got);
                if (k <= 0)
                        break;
                got += k;
        }
        if (got == cap) /* it grew since the stat: stream it */
                r = nono_object_put_fd(st, fd, out, size, NONO_ASYNC);
        else {
                r = nono_object_put_buf(st, buf, got, out, NONO_ASYNC);
                *size = got;
        }
        if (buf != stackbuf)
                free(buf);
        return r;
}

/* The live content of fd (O_PATH) as n's complete pre-image in the restore session; adds its size to *bytes.
 */
static int put_live_content(nono_store *st, int fd, const struct stat *sb, struct nono_node *n,
                            uint64_t *bytes)
{
        _cleanup_close_ int rd = rfs_open_read(fd);
        uint64_t sz = 0;
        int r = rd < 0 ? rd : put_content(st, rd, sb, &n->object, &sz);

        n->complete = true;
        *bytes += sz;
        return r;
}

/* The file the plan read (same inode, size, mtime and ctime): its content then is its content now. */
static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Each inode the restore will relink from fs/'s h<node> (its other names, unrecorded, see its content
 * change): its whole current state as a node of the restore session, see rb_plan.relinked. */
static int record_relinked(nono_store *st, struct rb_plan *p, uint64_t *bytes)
{
        int r = 0;

        for (size_t j = 0; j < p->n_steps && r >= 0; j++) {
                const struct rb_step *s = &p->steps[j];
                if (s->op != RB_PLACE || s->how != RB_FROM_FSLINK)
                        continue;
                _cleanup_close_ int fd = rb_fs_hlink_entry(p, s->root, s->node, NULL);
                struct nono_node n = {.id = p->n_items + 1 + p->n_relinked};
                struct stat st2;
                if (fd < 0 || fstat(fd, &st2) < 0 || !S_ISREG(st2.st_mode))
                        continue;
                struct rb_placed *nv = realloc(p->relinked, (p->n_relinked + 1) * sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                p->relinked = nv;
                r = rfs_read_meta(fd, &st2, &n);
                if (r >= 0)
                        r = put_live_content(st, fd, &st2, &n, bytes);
                if (r >= 0)
                        r = nono_node_put(st, p->restore_id, &n, NONO_ASYNC);
                if (r >= 0)
                        p->relinked[p->n_relinked++] =
                            (struct rb_placed){.dev = st2.st_dev, .ino = st2.st_ino, .size = n.id};
                nono_node_clear(&n);
                if (r < 0)
                        rb_set_err("cannot record %s/%s before restoring it: %s", p->roots[s->root], s->path,
                                   *nono_store_errmsg() ? nono_store_errmsg() : strerror(-r));
        }
        return r;
}

/* The restore session's pre-images: whole content of whatever is at each touched path now (a small
 * file's from the plan's read when it has not changed since). */
static int record_pre(nono_store *st, struct rb_plan *p, uint64_t *bytes)
{
        int r = 0;

        for (size_t i = 0; i < p->n_items && r >= 0; i++) {
                struct rb_item *it = &p->items[i];
                struct nono_node n = {0};
                _cleanup_close_ int fd = -1;
                struct stat st2;

                if (it->k) {
                        fd = rfs_open_path(p->rootfds[it->root], it->path);
                        if (fd < 0 || fstat(fd, &st2) < 0) {
                                it->k = 0; /* vanished since planning: nothing to keep */
                        } else {
                                n.id = it->k;
                                r = rfs_read_meta(fd, &st2, &n);
                                if (r >= 0 && n.type == NONO_FT_FILE && it->content &&
                                    same_file(&st2, &it->cur)) {
                                        r = nono_object_put_buf(st, it->content, it->content_len, &n.object,
                                                                NONO_ASYNC);
                                        n.size = it->content_len;
                                        n.complete = true;
                                        *bytes += it->content_len;
                                } else if (r >= 0 && n.type == NONO_FT_FILE) {
                                        r = put_live_content(st, fd, &st2, &n, bytes);
                                }
                                if (r >= 0)
                                        r = nono_node_put(st, p->restore_id, &n, NONO_ASYNC);
                                nono_node_clear(&n);
                        }
                }
                if (r >= 0)
                        r = nono_path_put_pre(st, p->restore_id, it->root, it->path, it->k, NONO_ASYNC);
                if (r < 0)
                        rb_set_err("cannot record %s/%s before restoring it: %s", p->roots[it->root],
                                   it->path, *nono_store_errmsg() ? nono_store_errmsg() : strerror(-r));
        }
        if (r >= 0)
                r = record_relinked(st, p, bytes);
        rb_timing("record pre");
        if (r >= 0 && (r = nono_store_sync(st)) < 0)
                rb_set_err(
                    "cannot record what the restore overwrites (so that it can be undone), nothing was "
                    "changed: %s",
                    *nono_store_errmsg() ? nono_store_errmsg() : strerror(-r));
        return r;
}

struct devino {
        dev_t dev;
        ino_t ino;
        uint64_t k;
        size_t item;
};

static int cmp_devino(const void *a, const void *b)
{
        const struct devino *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int cmp_placed(const void *a, const void *b)
{
        const struct rb_placed *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The restore session's post-images: what each touched path holds now, and which of its nodes it is. A
 * file this process built from a whole object and renamed into place is not read back: it is the same
 * inode with the same size, and the object is its content (only a process writing into the tree while
 * the restore runs could make that wrong, and then the worst case is a missed conflict on undo). */
static int record_post(nono_store *st, struct rb_plan *p)
{
        struct devino *m = calloc(p->n_items + p->n_relinked + 1, sizeof *m);
        size_t nm = 0;
        int r = 0;

        if (!m)
                return -ENOMEM;
        if (p->n_placed)
                qsort(p->placed, p->n_placed, sizeof *p->placed, cmp_placed);
        for (size_t i = 0; i < p->n_items; i++)
                if (p->items[i].k)
                        m[nm++] =
                            (struct devino){p->items[i].cur.st_dev, p->items[i].cur.st_ino, p->items[i].k, i};
        for (size_t j = 0; j < p->n_relinked; j++)
                m[nm++] =
                    (struct devino){p->relinked[j].dev, p->relinked[j].ino, p->relinked[j].size, SIZE_MAX};
        qsort(m, nm, sizeof *m, cmp_devino);
        for (size_t i = 0; i < p->n_items && r >= 0; i++) {
                struct rb_item *it = &p->items[i];
                struct nono_path_rec rec = {.root = it->root, .path = it->path, .has_post = true};
                _cleanup_close_ int fd = rfs_open_path(p->rootfds[it->root], it->path);
                struct stat st2;
                char link[4096];

                if (fd >= 0 && fstat(fd, &st2) == 0) {
                        struct devino key = {st2.st_dev, st2.st_ino, 0, 0}, *f;
                        rec.post_type = S_ISREG(st2.st_mode)    ? NONO_FT_FILE
                                        : S_ISDIR(st2.st_mode)  ? NONO_FT_DIR
                                        : S_ISLNK(st2.st_mode)  ? NONO_FT_SYMLINK
                                        : S_ISFIFO(st2.st_mode) ? NONO_FT_FIFO
                                                                : NONO_FT_SOCK;
                        rec.post_mode = st2.st_mode & 07777;
                        rec.post_size = st2.st_size;
                        rec.post_mtime_ns = st2.st_mtim.tv_sec * 1000000000LL + st2.st_mtim.tv_nsec;
                        f = bsearch(&key, m, nm, sizeof *m, cmp_devino);
                        const struct rb_placed *pl =
                            S_ISREG(st2.st_mode) && p->n_placed
                                ? bsearch(&(struct rb_placed){.dev = st2.st_dev, .ino = st2.st_ino},
                                          p->placed, p->n_placed, sizeof *p->placed, cmp_placed)
                                : NULL;
                        /* A placed file is new content even in a reused inode (restore_apply.c "spare").
                         * A resumed restore does not know which inodes the killed run reused: a
                         * single-named file found at another path than the plan saw it is not taken
                         * for the object it was (kept inodes of regular files that move are rare:
                         * block-level ones; they are then recorded as new, never as the wrong one). */
                        if (f && (pl || (p->resumed && S_ISREG(st2.st_mode) && st2.st_nlink == 1 &&
                                         f->item != SIZE_MAX && strcmp(p->items[f->item].path, it->path))))
                                f = NULL;
                        rec.post_node = f ? f->k : 0;
                        if (pl && pl->object_known && pl->size == (uint64_t)st2.st_size) {
                                rec.post_has_digest = true;
                                rec.post_digest = pl->object;
                        } else if (S_ISREG(st2.st_mode)) {
                                _cleanup_close_ int rd = rfs_open_read(fd);
                                rec.post_has_digest =
                                    rd >= 0 && nono_object_id_fd(rd, &rec.post_digest, NULL) == 0;
                        } else if (S_ISLNK(st2.st_mode)) {
                                ssize_t l = readlinkat(fd, "", link, sizeof link - 1);
                                if (l >= 0) {
                                        link[l] = 0;
                                        rec.post_link_target = link;
                                }
                        }
                }
                r = nono_path_put_post(st, p->restore_id, &rec, NONO_ASYNC);
        }
        free(m);
        return r < 0 ? r : nono_store_sync(st);
}

static int finish(nono_store *st, struct rb_plan *p, const struct nono_session *orig, uint64_t bytes)
{
        struct nono_session rs = {0}, o = {0};
        int r;

        r = record_post(st, p);
        if (r < 0)
                return r;
        if (nono_session_get(st, p->restore_id, &rs) == 0) {
                rs.state = NONO_SESSION_FINISHED;
                rs.end_ns = now_ns();
                rs.exit_status = 0;
                if (bytes)
                        rs.preimage_bytes = bytes;
                nono_session_update(st, &rs);
                nono_session_clear(&rs);
        }
        if (p->full && nono_session_get(st, orig->id, &o) == 0) {
                o.state = NONO_SESSION_RESTORED;
                nono_session_update(st, &o);
                /* undoing a restore gives the session it restored its changes back */
                if (o.kind == NONO_SESSION_RESTORE && o.parent) {
                        struct nono_session par = {0};
                        if (nono_session_get(st, o.parent, &par) == 0 && par.state == NONO_SESSION_RESTORED) {
                                par.state = NONO_SESSION_FINISHED;
                                nono_session_update(st, &par);
                        }
                        nono_session_clear(&par);
                }
                nono_session_clear(&o);
        }
        r = nono_journal_delete(st, p->session);
        return r == -ENOENT ? 0 : r;
}

static int create_restore_session(nono_store *st, const struct nono_session *s,
                                  const struct nono_restore_opts *o, struct rb_plan *p)
{
        char cwd[4096];
        char *dflt[] = {"nono", "rollback", "restore", (char *)s->id, NULL};
        struct nono_session rs = {
            .kind = NONO_SESSION_RESTORE,
            .state = NONO_SESSION_RUNNING,
            .argv = o->argv ? o->argv : dflt,
            .cwd = getcwd(cwd, sizeof cwd) ? cwd : "/",
            .policy_json = "{}",
            .roots = s->roots,
            .parent = (char *)s->id,
            .rollback = true,
            .start_ns = now_ns(),
            .pid = getpid(),
            .pid_start = pid_start_time(),
        };
        int r = nono_session_create(st, &rs);

        if (r < 0) {
                rb_set_err("cannot record the restore as a session: %s", nono_store_errmsg());
                return r;
        }
        memcpy(p->restore_id, rs.id, sizeof p->restore_id);
        return 0;
}

static void count(const struct rb_plan *p, struct nono_restore_report *rep)
{
        for (size_t i = 0; i < p->n_items; i++) {
                const struct rb_item *it = &p->items[i];
                if (!it->target && it->cur_exists)
                        rep->removed++;
                else if (it->target && !it->cur_exists)
                        rep->created++;
                else if (it->target)
                        rep->restored++;
        }
}

static int resume(nono_store *st, const struct nono_session *s, const struct nono_restore_opts *o,
                  struct nono_restore_report *rep, FILE *out)
{
        struct rb_plan p = {0};
        int r;

        snprintf(p.session, sizeof p.session, "%s", s->id);
        p.roots = s->roots;
        for (p.n_roots = 0; s->roots && s->roots[p.n_roots]; p.n_roots++)
                ;
        r = rb_journal_load(st, s->id, &p);
        if (r >= 0 && o->dry_run) {
                fprintf(out,
                        "an interrupted restore of %s is pending (%zu of %zu steps done): run `nono rollback "
                        "restore %s` to complete it\n",
                        s->id, p.done, p.n_steps, s->id);
                rb_plan_free(&p);
                return 0;
        }
        if (r >= 0)
                r = rb_open_roots(&p);
        if (r >= 0) {
                fprintf(out, "nono: completing the interrupted restore of %s (%zu of %zu steps were done)\n",
                        s->id, p.done, p.n_steps);
                p.resumed = true;
                r = rb_apply(st, &p, o->progress);
        }
        if (r >= 0)
                r = finish(st, &p, s, 0);
        if (r >= 0) {
                rep->resumed = true;
                memcpy(rep->restore_id, p.restore_id, sizeof rep->restore_id);
                count(&p, rep);
        }
        rb_plan_free(&p);
        return r;
}

static int check_session(const struct nono_session *s)
{
        if (!s->rollback) {
                rb_set_err("session %s ran without --rollback, so nono kept no pre-images to restore", s->id);
                return -ENODATA;
        }
        if (s->state == NONO_SESSION_RUNNING) {
                rb_set_err(
                    "session %s is still running (nono pid %d): let it finish or stop it, then restore",
                    s->id, s->pid);
                return -EBUSY;
        }
        return 0;
}

static int restore_locked(nono_store *st, const char *id, const struct nono_restore_opts *o,
                          struct nono_restore_report *rep);

/* One restore (or cleanup) at a time per store: see nono_store_lock for the failure it prevents. A dry run
 * changes nothing and takes no lock. */
int nono_restore(nono_store *st, const char *id, const struct nono_restore_opts *o,
                 struct nono_restore_report *rep)
{
        int lk = -1, holder = 0, r;

        if (!o->dry_run && (r = nono_store_lock(st, "rollback", &lk, &holder)) < 0) {
                memset(rep, 0, sizeof *rep);
                errbuf[0] = 0;
                if (r == -EBUSY)
                        rb_set_err("another nono%s is restoring or cleaning up sessions in this store: let "
                                   "it finish, then run this again",
                                   nono_pid_note(holder));
                else
                        rb_set_err("%s", nono_store_errmsg());
                return r;
        }
        r = restore_locked(st, id, o, rep);
        nono_store_unlock(lk);
        return r;
}

static int restore_locked(nono_store *st, const char *id, const struct nono_restore_opts *o,
                          struct nono_restore_report *rep)
{
        struct nono_session s = {0};
        struct rb_plan p = {0};
        FILE *out = o->out ? o->out : stdout;
        uint64_t bytes = 0;
        void *jb = NULL;
        size_t jl = 0;
        int r;

        errbuf[0] = 0;
        memset(rep, 0, sizeof *rep);
        rb_timing(NULL);
        r = nono_session_get(st, id, &s);
        if (r == -ENOENT || r == -EEXIST) {
                rb_set_err(r == -ENOENT ? "no session '%s': see `nono rollback list`"
                                        : "'%s' matches several sessions: give more of the id",
                           id);
                return -ENOENT;
        }
        if (r < 0) {
                rb_set_err("cannot read session %s: %s", id, nono_store_errmsg());
                return r;
        }
        r = check_session(&s);
        if (r < 0)
                goto out;
        if (nono_journal_get(st, s.id, &jb, &jl) == 0) {
                free(jb);
                r = resume(st, &s, o, rep, out);
                goto out;
        }
        snprintf(p.session, sizeof p.session, "%s", s.id);
        p.roots = s.roots;
        for (p.n_roots = 0; s.roots && s.roots[p.n_roots]; p.n_roots++)
                ;
        r = rb_open_roots(&p);
        if (r >= 0)
                r = rb_plan_build(st, &s, o, &p, out);
        rb_timing("plan");
        if (r < 0)
                goto out;
        count(&p, rep);
        if (!s.end_ns || s.state == NONO_SESSION_CRASHED)
                fprintf(out,
                        "note: session %s ended without writing its final state (crashed): conflicts with "
                        "later changes cannot be detected\n",
                        s.id);
        if (p.n_conflicts && !o->force) {
                rep->conflicts = p.n_conflicts;
                rb_set_err(
                    "%zu path(s) changed after session %s ended (listed above): restore them one by one "
                    "with PATH arguments, or use --force to overwrite them (the restore itself can be "
                    "undone)",
                    p.n_conflicts, s.id);
                r = -ESTALE;
                goto out;
        }
        if (o->dry_run) {
                rb_plan_print(&p, out);
                goto out;
        }
        r = create_restore_session(st, &s, o, &p);
        rb_timing("session");
        if (r >= 0)
                r = record_pre(st, &p, &bytes);
        rb_timing("store sync");
        if (r >= 0)
                r = rb_journal_save(st, &p);
        rb_timing("journal");
        if (r < 0 && p.restore_id[0]) {
                /* Nothing was changed and nothing is journaled (a full store, say): the restore session
                 * would only show up as crashed. Best effort: with the disk full this may fail too. */
                nono_session_delete(st, p.restore_id);
                nono_store_sync(st);
                goto out;
        }
        if (r >= 0)
                r = rb_apply(st, &p, o->progress);
        rb_timing("apply+syncfs");
        if (r >= 0)
                r = finish(st, &p, &s, bytes);
        rb_timing("record post");
        if (r >= 0)
                memcpy(rep->restore_id, p.restore_id, sizeof rep->restore_id);
out:
        rb_plan_free(&p);
        nono_session_clear(&s);
        return r;
}
