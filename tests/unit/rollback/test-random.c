/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-random.c - randomized fidelity of the rollback engine: random trees, random operation sequences
 * (writes, appends, truncates, small writes into big files, creates, unlinks, mkdir/rmdir, renames over
 * files, directory renames, exchange, hard links, symlinks, chmod, utimes, xattrs) recorded the way fs/
 * records them (model.c), then restore, then an exact comparison with the dump taken before. Seeds:
 * NONO_TEST_SEEDS (default 100); a failure prints its seed (NONO_TEST_SEED=N reruns just that one).
 *
 * A renamed directory's subtree is left alone afterwards: path records name paths at the session start,
 * and the model (unlike fs/) does not translate later paths back through directory renames.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>

#include "launcher/restore.h"
#include "model.h"

struct rnd {
        uint64_t s;
};

static uint32_t rn(struct rnd *r, uint32_t n)
{
        r->s ^= r->s << 13;
        r->s ^= r->s >> 7;
        r->s ^= r->s << 17;
        return n ? (uint32_t)(r->s % n) : 0;
}

struct world {
        char root[1024];
        char **frozen;
        size_t n_frozen;
        char *paths[512];
        size_t n_paths;
        struct model *m;
        struct rnd *r;
        unsigned counter;
};

static bool is_frozen(struct world *w, const char *rel)
{
        for (size_t i = 0; i < w->n_frozen; i++) {
                size_t l = strlen(w->frozen[i]);
                if (!strncmp(rel, w->frozen[i], l) && (!rel[l] || rel[l] == '/'))
                        return true;
        }
        return false;
}

static void scan(struct world *w, const char *rel)
{
        char p[4096];
        struct stat st;

        snprintf(p, sizeof p, "%s/%s", w->root, rel);
        if (lstat(p, &st) < 0)
                return;
        if (*rel && !is_frozen(w, rel) && w->n_paths < 512)
                w->paths[w->n_paths++] = strdup(rel);
        if (!S_ISDIR(st.st_mode))
                return;
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "%s", p);
        int fd = open(cmd, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        struct dirent *de;
        while ((de = readdir(d))) {
                char sub[4096];
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
                scan(w, sub);
        }
        closedir(d);
}

static void rescan(struct world *w)
{
        for (size_t i = 0; i < w->n_paths; i++)
                free(w->paths[i]);
        w->n_paths = 0;
        scan(w, "");
}

static const char *pick(struct world *w, mode_t type)
{
        char p[4096];
        struct stat st;
        for (int tries = 0; tries < 20 && w->n_paths; tries++) {
                const char *c = w->paths[rn(w->r, w->n_paths)];
                snprintf(p, sizeof p, "%s/%s", w->root, c);
                if (lstat(p, &st) == 0 && (!type || (st.st_mode & S_IFMT) == type))
                        return c;
        }
        return NULL;
}

/* a fresh name in a random (unfrozen) directory */
static void fresh(struct world *w, char *out)
{
        const char *d = rn(w->r, 3) ? pick(w, S_IFDIR) : NULL;
        snprintf(out, 4096, "%s%sn%u", d ? d : "", d ? "/" : "", w->counter++);
}

static void full(struct world *w, const char *rel, char *out)
{
        snprintf(out, 4096, "%s/%s", w->root, rel);
}

static void fill(struct rnd *r, char *buf, size_t n)
{
        for (size_t i = 0; i < n; i++)
                buf[i] = (char)('a' + rn(r, 26));
}

static void make_tree(struct world *w)
{
        char p[4096], name[4096];
        static char buf[300000];

        for (int i = 0; i < 12; i++) {
                rescan(w);
                fresh(w, name);
                full(w, name, p);
                switch (rn(w->r, 6)) {
                case 0:
                        mkdir(p, 0755);
                        break;
                case 1: {
                        size_t n = rn(w->r, 4) == 0 ? 70000 + rn(w->r, 200000) : rn(w->r, 300);
                        fill(w->r, buf, n);
                        int fd = open(p, O_CREAT | O_WRONLY, 0644);
                        if (write(fd, buf, n) < 0) {
                        }
                        close(fd);
                        setxattr(p, "user.a", "1", 1, 0);
                        break;
                }
                case 2:
                        symlink(rn(w->r, 2) ? "n0" : "../x", p);
                        break;
                default: {
                        size_t n = rn(w->r, 100);
                        fill(w->r, buf, n);
                        int fd = open(p, O_CREAT | O_WRONLY, 0600 + rn(w->r, 0100));
                        if (write(fd, buf, n) < 0) {
                        }
                        close(fd);
                }
                }
        }
        rescan(w);
        /* fixed times everywhere, so a restore that loses a time is caught */
        for (size_t i = 0; i < w->n_paths; i++) {
                struct timespec ts[2] = {{1500000000 + i, 7}, {1500000000 + i, 11}};
                full(w, w->paths[i], p);
                utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
        }
        struct timespec ts[2] = {{1500000000, 1}, {1500000000, 2}};
        utimensat(AT_FDCWD, w->root, ts, 0);
}

static void random_op(struct world *w)
{
        char p[4096], q[4096], name[4096];
        static char buf[70000];
        const char *a, *b;
        struct stat st;
        int fd;

        rescan(w);
        unsigned op = rn(w->r, 15);
        if (getenv("NONO_TEST_VERBOSE"))
                fprintf(stderr, "op %u\n", op);
        switch (op) {
        case 0: /* small write, maybe into a big file */
        case 1:
                if (!(a = pick(w, S_IFREG)))
                        return;
                full(w, a, p);
                stat(p, &st);
                {
                        off_t off = st.st_size ? rn(w->r, st.st_size) : 0;
                        size_t n = 1 + rn(w->r, 100);
                        if (st.st_size > 65536)
                                model_touch_blocks(w->m, a, off, n);
                        else
                                model_touch(w->m, a);
                        fill(w->r, buf, n);
                        fd = open(p, O_WRONLY);
                        if (pwrite(fd, buf, n, off) < 0) {
                        }
                        close(fd);
                }
                break;
        case 2: /* append */
                if (!(a = pick(w, S_IFREG)))
                        return;
                full(w, a, p);
                stat(p, &st);
                if (st.st_size > 65536)
                        model_touch_blocks(w->m, a, st.st_size, 10);
                else
                        model_touch(w->m, a);
                fd = open(p, O_WRONLY | O_APPEND);
                if (write(fd, "appended\n", 9) < 0) {
                }
                close(fd);
                break;
        case 3: /* truncate */
                if (!(a = pick(w, S_IFREG)))
                        return;
                full(w, a, p);
                stat(p, &st);
                {
                        off_t ns = st.st_size ? rn(w->r, st.st_size) : 5;
                        if (st.st_size > 65536)
                                model_touch_blocks(w->m, a, ns, st.st_size > ns ? st.st_size - ns : 1);
                        else
                                model_touch(w->m, a);
                        if (truncate(p, ns) < 0) {
                        }
                }
                break;
        case 4: /* create */
                fresh(w, name);
                model_touch(w->m, name);
                full(w, name, p);
                fd = open(p, O_CREAT | O_WRONLY, 0644);
                if (write(fd, "new\n", 4) < 0) {
                }
                close(fd);
                break;
        case 5: /* unlink */
                if (!(a = pick(w, 0)))
                        return;
                full(w, a, p);
                if (lstat(p, &st) < 0 || S_ISDIR(st.st_mode))
                        return;
                model_touch(w->m, a);
                unlink(p);
                break;
        case 6: /* mkdir / rmdir */
                if (rn(w->r, 2)) {
                        fresh(w, name);
                        model_touch(w->m, name);
                        full(w, name, p);
                        mkdir(p, 0755);
                } else if ((a = pick(w, S_IFDIR))) {
                        full(w, a, p);
                        model_touch(w->m, a);
                        rmdir(p); /* fails (and changes nothing) unless empty */
                }
                break;
        case 7: /* rename a file, maybe over another */
                if (!(a = pick(w, S_IFREG)))
                        return;
                b = rn(w->r, 2) ? pick(w, S_IFREG) : NULL;
                if (!b) {
                        fresh(w, name);
                        b = name;
                }
                if (!strcmp(a, b))
                        return;
                model_touch(w->m, a);
                model_touch(w->m, b);
                full(w, a, p);
                full(w, b, q);
                rename(p, q);
                break;
        case 8: /* rename a directory (then leave both places alone) */
                if (!(a = pick(w, S_IFDIR)))
                        return;
                for (size_t i = 0; i < w->n_frozen; i++) /* nor move a directory holding a frozen one */
                        if (!strncmp(w->frozen[i], a, strlen(a)) && w->frozen[i][strlen(a)] == '/')
                                return;
                fresh(w, name);
                if (!strncmp(name, a, strlen(a)) && name[strlen(a)] == '/')
                        return;
                model_touch(w->m, a);
                model_touch(w->m, name);
                full(w, a, p);
                full(w, name, q);
                if (rename(p, q) == 0) {
                        w->frozen = realloc(w->frozen, (w->n_frozen + 2) * sizeof *w->frozen);
                        w->frozen[w->n_frozen++] = strdup(a);
                        w->frozen[w->n_frozen++] = strdup(name);
                }
                break;
        case 9: /* exchange two non-directories */
                if (!(a = pick(w, S_IFREG)) || !(b = pick(w, S_IFLNK)))
                        if (!(b = pick(w, S_IFREG)))
                                return;
                if (!a || !strcmp(a, b))
                        return;
                model_touch(w->m, a);
                model_touch(w->m, b);
                full(w, a, p);
                full(w, b, q);
                renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_EXCHANGE);
                break;
        case 10: /* hard link */
                if (!(a = pick(w, S_IFREG)))
                        return;
                fresh(w, name);
                model_touch(w->m, a);
                model_touch(w->m, name);
                full(w, a, p);
                full(w, name, q);
                link(p, q);
                break;
        case 11: /* symlink */
                fresh(w, name);
                model_touch(w->m, name);
                full(w, name, p);
                symlink(rn(w->r, 2) ? "target" : "/etc/passwd", p);
                break;
        case 12: /* chmod */
                if (!(a = pick(w, 0)))
                        return;
                full(w, a, p);
                if (lstat(p, &st) < 0 || S_ISLNK(st.st_mode))
                        return;
                model_touch(w->m, a);
                chmod(p, S_ISDIR(st.st_mode) ? 0700 + rn(w->r, 077) : 0400 + rn(w->r, 0377));
                break;
        case 13: /* utimes */
                if (!(a = pick(w, 0)))
                        return;
                model_touch(w->m, a);
                full(w, a, p);
                {
                        struct timespec ts[2] = {{rn(w->r, 1000000), 0}, {rn(w->r, 1000000), 5}};
                        utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
                }
                break;
        case 14: /* xattr */
                if (!(a = pick(w, S_IFREG)))
                        return;
                model_touch(w->m, a);
                full(w, a, p);
                if (rn(w->r, 2))
                        setxattr(p, "user.b", "value", 5, 0);
                else
                        removexattr(p, "user.a");
                break;
        }
}

static int seeds(void)
{
        const char *s = getenv("NONO_TEST_SEEDS");
        return s && atoi(s) > 0 ? atoi(s) : 100;
}

static void test_random_sessions(void **state)
{
        const char *one = getenv("NONO_TEST_SEED");
        int first = one ? atoi(one) : 1, last = one ? atoi(one) : seeds();
        char *home = scratch_dir("rhome");
        nono_store *st;

        assert_int_equal(nono_store_open(home, 0, &st), 0);
        for (int seed = first; seed <= last; seed++) {
                struct rnd r = {.s = 0x9E3779B97F4A7C15ull * (uint64_t)seed + 1};
                struct world w = {.r = &r};
                struct model m;
                char *root = scratch_dir("rroot"), *before, *after;
                struct nono_restore_report rep;
                struct nono_restore_opts o = {.out = stderr};

                snprintf(w.root, sizeof w.root, "%s", root);
                make_tree(&w);
                before = tree_dump(root, true);
                model_begin(&m, st, root);
                w.m = &m;
                for (int i = 0, n = 5 + rn(&r, 40); i < n; i++)
                        random_op(&w);
                model_end(&m, false);
                int rc = nono_restore(st, m.sid, &o, &rep);
                after = tree_dump(root, true);
                if (rc < 0 || strcmp(before, after)) {
                        fprintf(stderr, "seed %d failed (rerun: NONO_TEST_SEED=%d): %s\n", seed, seed,
                                rc < 0 ? nono_restore_errmsg() : "tree differs");
                        dump_diff(before, after);
                        fail_msg("seed %d", seed);
                }
                free(before);
                free(after);
                model_free(&m);
                for (size_t i = 0; i < w.n_paths; i++)
                        free(w.paths[i]);
                for (size_t i = 0; i < w.n_frozen; i++)
                        free(w.frozen[i]);
                free(w.frozen);
                rm_rf(root);
                free(root);
        }
        nono_store_close(st);
        rm_rf(home);
        free(home);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_random_sessions),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
