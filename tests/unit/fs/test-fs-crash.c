/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-crash.c - the write-ahead invariant: whenever nono dies, the store holds every pre-image needed to
 * return the tree to its start state.
 *
 * A child process serves a fresh copy of a tree with pre-images on; the parent runs a fixed sequence of
 * operations of every kind through the mount. With NONO_FS_TEST_KILLPOINT=k the child SIGKILLs itself at the
 * k-th write-ahead point (just before and just after each durable sync in fs/cow.c), so every such instant
 * is hit without a clock. After each kill, the start state is rebuilt from the store, the stash and the live
 * tree only, by the rules documented at the top of fs/cow.c, and compared with a snapshot taken before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/fs-internal.h"
#include "harness.h"
#include "store/store.h"

static char home[512];

static const char *P(const char *d, const char *n)
{
        static __thread char buf[8][1024];
        static __thread int k;
        k = (k + 1) % 8;
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", d, n);
        return buf[k];
}

static void put(const char *path, const void *s, size_t len)
{
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd >= 0) {
                if (write(fd, s, len) < 0)
                        perror("write");
                close(fd);
        }
}

/* ---- the state of a tree ------------------------------------------------------------------------------ */

struct ent {
        char *path;
        uint32_t type, mode;
        char *data; /* file content or link target */
        size_t len;
        char *names; /* directories: sorted names, '\n' separated */
        char xattr[16];
        int64_t mtime;
};

struct tree {
        struct ent *v;
        size_t n;
};

static char *dir_names(const char *path)
{
        struct dirent **v;
        int n = scandir(path, &v, NULL, alphasort);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        for (int k = 0; k < n; k++) {
                if (strcmp(v[k]->d_name, ".") && strcmp(v[k]->d_name, "..") &&
                    strncmp(v[k]->d_name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX)))
                        fprintf(f, "%s\n", v[k]->d_name);
                free(v[k]);
        }
        free(v);
        fclose(f);
        return out;
}

static char *slurp(const char *path, size_t *len)
{
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return NULL;
        char *b = malloc((size_t)st.st_size + 1);
        *len = (size_t)pread(fd, b, (size_t)st.st_size, 0);
        close(fd);
        return b;
}

/* The live state of abs (relative name rel), as an entry. */
static int live_ent(const char *abs, const char *rel, struct ent *e)
{
        struct stat st;
        memset(e, 0, sizeof(*e));
        if (lstat(abs, &st) < 0)
                return -1;
        e->path = strdup(rel);
        e->type = S_ISREG(st.st_mode)   ? NONO_FT_FILE
                  : S_ISDIR(st.st_mode) ? NONO_FT_DIR
                  : S_ISLNK(st.st_mode) ? NONO_FT_SYMLINK
                                        : NONO_FT_FIFO;
        e->mode = S_ISLNK(st.st_mode) ? 0 : st.st_mode & 07777;
        e->mtime = S_ISDIR(st.st_mode) ? 0 : st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        if (S_ISREG(st.st_mode))
                e->data = slurp(abs, &e->len);
        else if (S_ISLNK(st.st_mode)) {
                e->data = calloc(1, 4096);
                e->len = (size_t)readlink(abs, e->data, 4095);
        } else if (S_ISDIR(st.st_mode))
                e->names = dir_names(abs);
        if (!S_ISLNK(st.st_mode))
                getxattr(abs, "user.k", e->xattr, sizeof(e->xattr) - 1);
        return 0;
}

static struct tree *walk_tree;
static size_t walk_base;

static int walk_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        const char *rel = p + walk_base;
        if (*rel == '/')
                rel++;
        if (strstr(p, NONO_STASH_PREFIX))
                return 0;
        walk_tree->v = realloc(walk_tree->v, (walk_tree->n + 1) * sizeof(struct ent));
        live_ent(p, rel, &walk_tree->v[walk_tree->n++]);
        return 0;
}

static void snapshot(const char *root, struct tree *t)
{
        memset(t, 0, sizeof(*t));
        walk_tree = t;
        walk_base = strlen(root);
        nftw(root, walk_one, 16, FTW_PHYS);
}

static void ent_clear(struct ent *e)
{
        free(e->path);
        free(e->data);
        free(e->names);
}

static void tree_free(struct tree *t)
{
        for (size_t k = 0; k < t->n; k++)
                ent_clear(&t->v[k]);
        free(t->v);
}

/* ---- rebuilding the start state from the records ----------------------------------------------------- */

struct ctx {
        nono_store *st;
        const char *id, *back, *stash1, *stash2;
        struct nono_path_rec *recs;
        size_t n;
};

static struct nono_path_rec *rec_of(struct ctx *c, const char *path)
{
        for (size_t k = 0; k < c->n; k++)
                if (!strcmp(c->recs[k].path, path))
                        return &c->recs[k];
        return NULL;
}

/* Where the object that was at start path `path` is in the live tree now (renamed directories followed
 * through the interim post records), as an absolute path. */
static char *live_path(struct ctx *c, const char *path)
{
        char *cur = strdup(path);
        for (size_t cut = 0; cut <= strlen(cur); cut++) {
                if (cur[cut] != '/' && cur[cut] != 0)
                        continue;
                char save = cur[cut];
                cur[cut] = 0;
                struct nono_path_rec *r = rec_of(c, cur);
                if (r && r->pre_node) {
                        for (size_t k = 0; k < c->n; k++) {
                                struct stat st;
                                if (c->recs[k].has_post && c->recs[k].post_node == r->pre_node &&
                                    strcmp(c->recs[k].path, cur) &&
                                    lstat(P(c->back, c->recs[k].path), &st) == 0) {
                                        char *n = NULL;
                                        cur[cut] = save;
                                        if (asprintf(&n, "%s%s", c->recs[k].path, cur + cut) < 0)
                                                abort();
                                        size_t nc = strlen(c->recs[k].path);
                                        free(cur);
                                        cur = n;
                                        cut = nc;
                                        save = cur[cut];
                                        break;
                                }
                        }
                }
                cur[cut] = save;
                if (!save)
                        break;
        }
        char *abs = NULL;
        if (asprintf(&abs, "%s%s%s", c->back, *cur ? "/" : "", cur) < 0)
                abort();
        free(cur);
        return abs;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rebuilds the start state of `path`; returns -1 when it was absent at start. */
static int rebuild(struct ctx *c, const char *path, struct ent *e)
{
        struct nono_path_rec *r = rec_of(c, path);
        memset(e, 0, sizeof(*e));
        if (r && !r->pre_node)
                return -1;
        char *live = live_path(c, path);
        if (!r) {
                int x = live_ent(live, path, e);
                free(live);
                return x;
        }
        struct nono_node n = {0};
        assert_int_equal(nono_node_get(c->st, c->id, r->pre_node, &n), 0);
        e->path = strdup(path);
        e->type = n.type;
        e->mode = n.type == NONO_FT_SYMLINK ? 0 : n.mode;
        e->mtime = n.type == NONO_FT_DIR ? 0 : n.mtime_ns;
        for (size_t k = 0; k < n.n_xattrs; k++)
                if (!strcmp(n.xattrs[k].name, "user.k"))
                        memcpy(e->xattr, n.xattrs[k].value, n.xattrs[k].len < 15 ? n.xattrs[k].len : 15);
        if (n.type == NONO_FT_SYMLINK) {
                e->data = strdup(n.link_target);
                e->len = strlen(n.link_target);
        } else if (n.type == NONO_FT_DIR) {
                size_t len = 0, cnt = 0;
                for (char **x = n.entries; x && *x; x++)
                        cnt++;
                qsort(n.entries, cnt, sizeof(char *), cmp_str);
                FILE *f = open_memstream(&e->names, &len);
                /* alphasort is strcoll; names here are ASCII so both agree */
                for (size_t k = 0; k < cnt; k++)
                        fprintf(f, "%s\n", n.entries[k]);
                fclose(f);
        } else if (n.type == NONO_FT_FILE) {
                e->len = n.size;
                e->data = calloc(1, n.size + 1);
                if (n.complete) {
                        void *b = NULL;
                        size_t len = 0;
                        assert_int_equal(nono_object_get_buf(c->st, &n.object, &b, &len), 0);
                        memcpy(e->data, b, len < n.size ? len : n.size);
                        free(b);
                } else {
                        char sp[1100];
                        size_t len = 0;
                        snprintf(sp, sizeof(sp), "%s/%llu", c->stash1, (unsigned long long)n.id);
                        char *base = slurp(sp, &len);
                        if (!base) {
                                snprintf(sp, sizeof(sp), "%s/%llu", c->stash2, (unsigned long long)n.id);
                                base = slurp(sp, &len);
                        }
                        if (!base)
                                base = slurp(live, &len);
                        if (base)
                                memcpy(e->data, base, len < n.size ? len : n.size);
                        free(base);
                        for (size_t k = 0; k < n.n_chunks; k++) {
                                char chunk[NONO_CHUNK_SIZE];
                                size_t cl = 0;
                                assert_int_equal(
                                    nono_chunk_get(c->st, &n.chunks[k].digest, chunk, sizeof(chunk), &cl), 0);
                                uint64_t off = n.chunks[k].index * NONO_CHUNK_SIZE;
                                if (off < n.size)
                                        memcpy(e->data + off, chunk, off + cl <= n.size ? cl : n.size - off);
                        }
                }
        }
        nono_node_clear(&n);
        free(live);
        return 0;
}

static bool ent_equal(const struct ent *a, const struct ent *b, char *why, size_t wl)
{
        if (a->type != b->type)
                return snprintf(why, wl, "type %u != %u", a->type, b->type), false;
        if (a->mode != b->mode)
                return snprintf(why, wl, "mode %o != %o", a->mode, b->mode), false;
        if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len)))
                return snprintf(why, wl, "content (%zu vs %zu bytes)", a->len, b->len), false;
        if ((a->names || b->names) && (!a->names || !b->names || strcmp(a->names, b->names)))
                return snprintf(why, wl, "names [%s] != [%s]", a->names ? a->names : "",
                                b->names ? b->names : ""),
                       false;
        if (strcmp(a->xattr, b->xattr))
                return snprintf(why, wl, "xattr '%s' != '%s'", a->xattr, b->xattr), false;
        if (a->mtime != b->mtime)
                return snprintf(why, wl, "mtime %lld != %lld", (long long)a->mtime, (long long)b->mtime),
                       false;
        return true;
}

/* ---- the run --------------------------------------------------------------------------------------------
 */

#define BIG (300 * 1024)

static void make_tree(const char *b)
{
        char *big = malloc(BIG);
        for (int k = 0; k < BIG; k++)
                big[k] = (char)(k * 31 + 7);
        rm_rf(b);
        mkdir(b, 0755);
        put(P(b, "small.txt"), "small content", 13);
        setxattr(P(b, "small.txt"), "user.k", "v0", 2, 0);
        put(P(b, "big.bin"), big, BIG);
        put(P(b, "big2.bin"), big + 100, BIG - 100);
        put(P(b, "other.txt"), "other", 5);
        put(P(b, "a.txt"), "A", 1);
        put(P(b, "b.txt"), "B", 1);
        mkdir(P(b, "d"), 0755);
        put(P(b, "d/x"), "x", 1);
        put(P(b, "d/y"), "y", 1);
        put(P(b, "d/big3.bin"), big, BIG);
        put(P(b, "big4.bin"), big + 3, BIG - 3);
        mkdir(P(b, "emptydir"), 0700);
        symlink("target", P(b, "l"));
        struct timespec ts[2] = {{1000, 0}, {2000, 0}};
        const char *all[] = {"small.txt", "big.bin", "big2.bin", "big4.bin", "other.txt",
                             "a.txt",     "b.txt",   "d/x",      "d/y",      "d/big3.bin"};
        for (size_t k = 0; k < sizeof(all) / sizeof(*all); k++)
                utimensat(AT_FDCWD, P(b, all[k]), ts, 0);
        utimensat(AT_FDCWD, P(b, "l"), ts, AT_SYMLINK_NOFOLLOW);
        free(big);
}

static void ops(const char *m)
{
        int fd;
        if ((fd = open(P(m, "small.txt"), O_WRONLY)) >= 0) {
                (void)!pwrite(fd, "X", 1, 0);
                close(fd);
        }
        if ((fd = open(P(m, "big.bin"), O_WRONLY)) >= 0) {
                (void)!pwrite(fd, "0123456789", 10, 70000);
                close(fd);
        }
        truncate(P(m, "big.bin"), 100000);
        chmod(P(m, "small.txt"), 0600);
        utimensat(AT_FDCWD, P(m, "other.txt"), NULL, 0);
        setxattr(P(m, "small.txt"), "user.k", "v1", 2, 0);
        unlink(P(m, "d/x"));
        mkdir(P(m, "newdir"), 0755);
        put(P(m, "newdir/f"), "new", 3);
        rename(P(m, "d"), P(m, "d2"));
        if ((fd = open(P(m, "d2/big3.bin"), O_WRONLY)) >= 0) {
                (void)!pwrite(fd, "in moved dir", 12, 200000);
                close(fd);
        }
        put(P(m, "d2/y"), "rewritten", 9);
        rename(P(m, "other.txt"), P(m, "small.txt"));
        unlink(P(m, "l"));
        symlink("new-target", P(m, "l"));
        link(P(m, "big2.bin"), P(m, "hard"));
        if ((fd = open(P(m, "hard"), O_WRONLY)) >= 0) {
                (void)!pwrite(fd, "via hard link", 13, 5);
                close(fd);
        }
        unlink(P(m, "big2.bin"));
        rmdir(P(m, "emptydir"));
        renameat2(AT_FDCWD, P(m, "a.txt"), AT_FDCWD, P(m, "b.txt"), RENAME_EXCHANGE);
        truncate(P(m, "d2/big3.bin"), 0);
        if ((fd = open(P(m, "big4.bin"), O_RDWR)) >= 0) {
                (void)!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 140000);
                (void)!fallocate(fd, FALLOC_FL_ZERO_RANGE, 200000, 5000);
                close(fd);
        }
}

/* Serves back at mp in a child with kill point k; runs the operations; returns how the child ended. */
static int run_once(const char *back, const char *mp, const char *id, unsigned long k)
{
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        if (pid == 0) {
                char kp[32];
                snprintf(kp, sizeof(kp), "%lu", k);
                setenv("NONO_FS_TEST_KILLPOINT", kp, 1);
                nono_store *st = NULL;
                nono_fs *fs = NULL;
                if (nono_store_open(home, 0, &st) < 0)
                        _exit(10);
                struct nono_fs_config c = {.root_fd = open(back, O_PATH),
                                           .root_path = back,
                                           .store = st,
                                           .session = id,
                                           .preimages = true};
                if (nono_fs_new(&c, &fs) < 0 || nono_fs_mount(fs, mp) < 0 || nono_fs_start(fs) < 0)
                        _exit(11);
                sigset_t set;
                sigemptyset(&set);
                sigaddset(&set, SIGTERM);
                sigprocmask(SIG_BLOCK, &set, NULL);
                (void)!write(pfd[1], "r", 1);
                int sig;
                sigwait(&set, &sig);
                nono_fs_stop(fs);
                nono_fs_free(fs);
                nono_store_close(st);
                _exit(0);
        }
        close(pfd[1]);
        char b;
        bool ready = read(pfd[0], &b, 1) == 1;
        close(pfd[0]);
        if (ready)
                ops(mp);
        kill(pid, SIGTERM);
        int ws = 0;
        waitpid(pid, &ws, 0);
        if (umount2(mp, MNT_DETACH) < 0) {
                char cmd[1200];
                snprintf(cmd, sizeof(cmd), "fusermount3 -u -q -z '%s' 2>/dev/null", mp);
                (void)!system(cmd);
        }
        return ws;
}

static void t_crash(void **s)
{
        char base[600], back[700], mp[700], stash1[800], stash2[800];
        const char *tmp = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/nono-fs-crash.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(base));
        snprintf(back, sizeof(back), "%s/back", base);
        snprintf(mp, sizeof(mp), "%s/mnt", base);
        mkdir(mp, 0755);
        unsigned long kills = 0, step = 1;
        const char *seeds = getenv("NONO_TEST_SEEDS");
        if (seeds && atoi(seeds) > 0 && atoi(seeds) < 3)
                step = 3; /* a quick run: every third point */
        for (unsigned long k = 1;; k += step) {
                nono_store *st = NULL;
                char id[NONO_SESSION_ID_LEN + 1];
                make_tree(back);
                struct tree before;
                snapshot(back, &before);
                assert_int_equal(nono_store_open(home, 0, &st), 0);
                char *argv[] = {"t", NULL}, *roots[] = {back, NULL};
                struct nono_session ses = {.argv = argv,
                                           .cwd = "/",
                                           .policy_json = "{}",
                                           .roots = roots,
                                           .rollback = true,
                                           .pid = getpid()};
                assert_int_equal(nono_session_create(st, &ses), 0);
                memcpy(id, ses.id, sizeof(id));
                nono_store_close(st);

                int ws = run_once(back, mp, id, k);
                bool killed = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
                if (!killed && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
                        fail_msg("kill point %lu: the daemon failed (status 0x%x)", k, ws);

                assert_int_equal(nono_store_open(home, 0, &st), 0);
                struct ctx c = {.st = st, .id = id, .back = back, .stash1 = stash1, .stash2 = stash2};
                snprintf(stash1, sizeof(stash1), "%s/" NONO_STASH_PREFIX "%s.0", base, id);
                snprintf(stash2, sizeof(stash2), "%s/" NONO_STASH_PREFIX "%s.0", back, id);
                assert_int_equal(nono_path_list(st, id, &c.recs, &c.n), 0);
                for (size_t e = 0; e < before.n; e++) {
                        struct ent got;
                        char why[256];
                        if (rebuild(&c, before.v[e].path, &got) < 0)
                                fail_msg("kill point %lu: '%s' existed at start but is recorded absent", k,
                                         before.v[e].path);
                        if (!ent_equal(&before.v[e], &got, why, sizeof(why)))
                                fail_msg("kill point %lu: '%s' cannot be restored: %s", k, before.v[e].path,
                                         why);
                        ent_clear(&got);
                }
                /* everything there now that was not there at start is known to restore as created: it has a
                 * record, or the nearest directory that existed at start has a node (its names at start) */
                struct tree after;
                snapshot(back, &after);
                for (size_t e = 0; e < after.n; e++) {
                        char *p = strdup(after.v[e].path);
                        bool known = false;
                        for (;;) {
                                bool existed = false;
                                for (size_t b = 0; b < before.n && !existed; b++)
                                        existed = !strcmp(before.v[b].path, p);
                                struct nono_path_rec *r = rec_of(&c, p);
                                if (r && (!existed || r->pre_node)) {
                                        known = true;
                                        break;
                                }
                                if (existed) {
                                        known = !strcmp(p, after.v[e].path); /* an untouched name */
                                        break;
                                }
                                char *sl = strrchr(p, '/');
                                if (sl)
                                        *sl = 0;
                                else if (*p)
                                        *p = 0;
                                else
                                        break;
                        }
                        free(p);
                        if (!known)
                                fail_msg("kill point %lu: '%s' appeared without a record", k,
                                         after.v[e].path);
                }
                tree_free(&after);
                nono_path_list_free(c.recs, c.n);
                nono_session_delete(st, id);
                nono_store_close(st);
                tree_free(&before);
                rm_rf(stash1);
                if (killed)
                        kills++;
                else
                        break; /* k is past the last point: the sequence ran to the end */
        }
        fprintf(stderr, "# %lu kill points checked\n", kills);
        assert_true(kills >= 20);
        rm_rf(base);
}

static int setup(void **s)
{
        return store_home_up(home, sizeof(home), "store");
}

static int teardown(void **s)
{
        rm_rf(home);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_crash),
        };
        return cmocka_run_group_tests_name("fs-crash", tests, setup, teardown);
}
