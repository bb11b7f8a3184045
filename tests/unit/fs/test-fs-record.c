/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-record.c - what fs/ writes into the store: audit events (per-handle bytes at release, violations),
 * pre-images (nodes, path records, chunks, stash entries) and post-images. The write-ahead invariant under
 * SIGKILL is test-fs-crash.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, len), (ssize_t)len);
        close(fd);
}

static nono_store *open_store(void)
{
        nono_store *st = NULL;
        int r = nono_store_open(home, 0, &st);
        if (r < 0)
                fail_msg("store: %s", nono_store_errmsg());
        return st;
}

static void new_session(nono_store *st, const char *root, bool rollback, char id[NONO_SESSION_ID_LEN + 1])
{
        char *argv[] = {"test", NULL}, *roots[] = {(char *)root, NULL};
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        struct nono_session s = {.argv = argv,
                                 .cwd = "/",
                                 .policy_json = "{}",
                                 .roots = roots,
                                 .rollback = rollback,
                                 .start_ns = t.tv_sec * 1000000000LL + t.tv_nsec,
                                 .pid = getpid()};
        assert_int_equal(nono_session_create(st, &s), 0);
        memcpy(id, s.id, NONO_SESSION_ID_LEN + 1);
}

/* ---- events ---------------------------------------------------------------------------------------- */

struct evq {
        int opens_written, opens_read, renames, unlinks, violations, uncounted;
};

static int ev_cb(const struct nono_event *ev, void *u)
{
        struct evq *q = u;
        if (ev->type != NONO_EV_FILE)
                return 0;
        /* passthrough (fs/passthrough.c): no byte counts, but whether the file changed */
        bool unc = ev->flags & NONO_EVF_UNCOUNTED, changed = ev->flags & NONO_EVF_DATA_CHANGED;
        if (unc && !strcmp(ev->path, "f") && !ev->bytes_read && !ev->bytes_written)
                q->uncounted++;
        if ((ev->op == NONO_OP_CREATE || ev->op == NONO_OP_OPEN) && !strcmp(ev->path, "f") &&
            (unc ? changed : ev->bytes_written == 100))
                q->opens_written++;
        if (ev->op == NONO_OP_OPEN && !strcmp(ev->path, "f") && (unc ? !changed : ev->bytes_read == 100))
                q->opens_read++;
        if (ev->op == NONO_OP_RENAME && !strcmp(ev->path, "f") && ev->path2 && !strcmp(ev->path2, "g"))
                q->renames++;
        if (ev->op == NONO_OP_UNLINK && !strcmp(ev->path, "g") && ev->result == 0)
                q->unlinks++;
        if ((ev->flags & NONO_EVF_VIOLATION) && !strcmp(ev->path, "secret") && ev->result == EACCES)
                q->violations++;
        return 0;
}

/* Root of the initial user namespace: the kernel lets fs/ pass reads and writes through (passthrough.c). */
static bool passthrough_possible(void)
{
        char buf[64] = "";
        FILE *f = fopen("/proc/self/uid_map", "re");
        if (f) {
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = 0;
                fclose(f);
        }
        unsigned a = 1, b = 1, n = 0;
        return geteuid() == 0 && sscanf(buf, "%u %u %u", &a, &b, &n) == 3 && a == 0 && b == 0 &&
               n == 4294967295u;
}

static void events(bool no_passthrough)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1], buf[200];
        nono_store *st = open_store();
        struct nono_fs_rule rule = {"secret", NONO_DENY_READ};

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "secret"), "s", 1);
        new_session(st, m.back, false, id);
        struct nono_fs_config c = {.store = st,
                                   .session = id,
                                   .record = true,
                                   .rules = &rule,
                                   .n_rules = 1,
                                   .no_passthrough = no_passthrough};
        assert_int_equal(mnt_serve(&m, &c), 0);
        memset(buf, 'a', sizeof(buf));
        int fd = open(P(m.mp, "f"), O_CREAT | O_WRONLY, 0644);
        for (int k = 0; k < 10; k++)
                assert_int_equal(write(fd, buf, 10), 10);
        close(fd);
        fd = open(P(m.mp, "f"), O_RDONLY);
        assert_int_equal(read(fd, buf, sizeof(buf)), 100);
        close(fd);
        assert_int_equal(rename(P(m.mp, "f"), P(m.mp, "g")), 0);
        assert_int_equal(unlink(P(m.mp, "g")), 0);
        assert_int_equal(open(P(m.mp, "secret"), O_RDONLY), -1);
        mnt_unmount(&m); /* stop flushes every event */
        struct evq q = {0};
        assert_int_equal(nono_events_iterate(st, id, 1, ev_cb, &q), 0);
        assert_int_equal(q.opens_written, 1); /* one event per handle, bytes aggregated */
        assert_int_equal(q.opens_read, 1);
        assert_int_equal(q.renames, 1);
        assert_int_equal(q.unlinks, 1);
        assert_int_equal(q.violations, 1);
        assert_int_equal(q.uncounted, !no_passthrough && passthrough_possible() ? 2 : 0);
        nono_store_close(st);
        mnt_down(&m);
}

struct lsq {
        int sub, private_denied, other;
};

static int ls_cb(const struct nono_event *ev, void *u)
{
        struct lsq *q = u;
        if (ev->type != NONO_EV_FILE || ev->op != NONO_OP_READDIR)
                return 0;
        if (!strcmp(ev->path, "sub") && ev->result == 0)
                q->sub++;
        else if (!strcmp(ev->path, "private") && ev->result == EACCES && (ev->flags & NONO_EVF_VIOLATION))
                q->private_denied++;
        else
                q->other++;
        return 0;
}

static int count_entries(const char *path)
{
        DIR *d = opendir(path);
        int n = 0;
        if (!d)
                return -errno;
        errno = 0;
        while (readdir(d))
                n++;
        int e = errno;
        closedir(d);
        return e ? -e : n;
}

/* A directory listing is one event when fs/ reads it (the kernel opens directories itself and caches their
 * listings: ops-file.c "LISTINGS"); a second listing of the unchanged directory comes from that cache; a
 * change through the mount makes the next listing a read, and an event, again. A deny-read rule on a
 * directory refuses its listing with EACCES, recorded as a violation. */
static void t_listing_events(void **s)
{
        (void)s;
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1];
        nono_store *st = open_store();
        struct nono_fs_rule rule = {"private", NONO_DENY_READ};

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        assert_int_equal(mkdir(P(m.back, "sub"), 0755), 0);
        assert_int_equal(mkdir(P(m.back, "private"), 0755), 0);
        put(P(m.back, "sub/a"), "a", 1);
        put(P(m.back, "private/key"), "k", 1);
        new_session(st, m.back, false, id);
        struct nono_fs_config c = {.store = st, .session = id, .record = true, .rules = &rule, .n_rules = 1};
        assert_int_equal(mnt_serve(&m, &c), 0);
        assert_int_equal(count_entries(P(m.mp, "sub")), 3);
        assert_int_equal(count_entries(P(m.mp, "sub")), 3);
        put(P(m.mp, "sub/b"), "b", 1);
        assert_int_equal(count_entries(P(m.mp, "sub")), 4);
        assert_int_equal(count_entries(P(m.mp, "private")), -EACCES);
        mnt_unmount(&m);
        struct lsq q = {0};
        assert_int_equal(nono_events_iterate(st, id, 1, ls_cb, &q), 0);
        assert_int_equal(q.sub, 2);
        assert_int_equal(q.private_denied, 1);
        assert_int_equal(q.other, 0);
        nono_store_close(st);
        mnt_down(&m);
}

/* Bytes counted per handle (the daemon path) */
static void t_events(void **s)
{
        (void)s;
        events(true);
}

/* As fs/ runs by default: passed through where the kernel allows it (root), counted otherwise */
static void t_events_passthrough(void **s)
{
        (void)s;
        events(false);
}

/* ---- pre-images ---------------------------------------------------------------------------------- */

static uint64_t pre_of(nono_store *st, const char *id, const char *path)
{
        struct nono_path_rec r = {0};
        if (nono_path_get(st, id, 0, path, &r) < 0)
                fail_msg("no path record for '%s'", path);
        uint64_t n = r.pre_node;
        nono_path_rec_clear(&r);
        return n;
}

/* ---- passthrough (fs/passthrough.c) ------------------------------------------------------------------ */

/* n's whole object holds exactly orig. */
static void assert_object_is(nono_store *st, const struct nono_node *n, const char *orig, size_t size)
{
        void *b = NULL;
        size_t len = 0;
        assert_int_equal(nono_object_get_buf(st, &n->object, &b, &len), 0);
        assert_int_equal(len, size);
        assert_memory_equal(b, orig, size);
        free(b);
}

/* The original bytes of chunk 1 of path are in its pre-image (as a captured chunk or the whole file). */
static void assert_pre_chunk1(nono_store *st, const char *id, const char *path, const char *orig, size_t size)
{
        struct nono_node n = {0};
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, path), &n), 0);
        assert_int_equal(n.size, size);
        if (n.complete) {
                assert_object_is(st, &n, orig, size);
        } else {
                char chunk[NONO_CHUNK_SIZE];
                size_t len = 0;
                bool found = false;
                for (size_t k = 0; k < n.n_chunks; k++)
                        if (n.chunks[k].index == 1) {
                                assert_int_equal(
                                    nono_chunk_get(st, &n.chunks[k].digest, chunk, sizeof(chunk), &len), 0);
                                assert_memory_equal(chunk, orig + NONO_CHUNK_SIZE, NONO_CHUNK_SIZE);
                                found = true;
                        }
                assert_true(found);
        }
        nono_node_clear(&n);
}

/* The kernel takes an inode's opens in one mode at a time (all passed through, or none): a writer that owes
 * a pre-image while a reader is passed through, and a reader while such a writer is open, both open, see
 * each other's bytes, and the pre-image holds the original. As an unprivileged user the same runs through
 * the daemon (and must give the same results). */
/* Waits (5 s at most) until fs has recorded `n` events in all. */
static void wait_events(nono_fs *fs, uint64_t n)
{
        struct nono_fs_stats k;
        for (int tries = 0; tries < 5000; tries++) {
                nono_fs_get_stats(fs, &k);
                if (k.events >= n)
                        return;
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        fail_msg("fs recorded %llu events, expected %llu", (unsigned long long)k.events,
                 (unsigned long long)n);
}

static void t_passthrough_modes(void **s)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1], got[8];
        nono_store *st = open_store();
        size_t size = 300 * 1024;
        char *orig = malloc(size), *back = malloc(size);
        for (size_t k = 0; k < size; k++)
                orig[k] = (char)(k * 13);

        (void)s;
        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "a"), orig, size);
        put(P(m.back, "b"), orig, size);
        new_session(st, m.back, true, id);
        struct nono_fs_config c = {.store = st, .session = id, .preimages = true, .record = true};
        assert_int_equal(mnt_serve(&m, &c), 0);

        bool pt = passthrough_possible();
        struct nono_fs_stats k0, k1, k2;
        nono_fs_get_stats(m.fs, &k0);
        /* a: a reader first, then a writer while it is open */
        int r = open(P(m.mp, "a"), O_RDONLY);
        assert_true(r >= 0);
        assert_int_equal(pread(r, got, 4, 70000), 4);
        assert_memory_equal(got, orig + 70000, 4);
        int w = open(P(m.mp, "a"), O_RDWR);
        assert_true(w >= 0);
        assert_int_equal(pwrite(w, "XXXX", 4, 70000), 4);
        assert_int_equal(pread(r, got, 4, 70000), 4);
        assert_memory_equal(got, "XXXX", 4);
        char *map = mmap(NULL, size, PROT_READ, MAP_SHARED, r, 0);
        assert_true(map != MAP_FAILED);
        assert_memory_equal(map + 70000, "XXXX", 4);
        munmap(map, size);
        close(w);
        close(r);
        nono_fs_get_stats(m.fs, &k1);
        assert_int_equal(k1.passthrough_opens - k0.passthrough_opens, pt ? 2 : 0); /* both passed through */

        /* b: a writer that owes a pre-image first, then a reader while it is open */
        w = open(P(m.mp, "b"), O_RDWR);
        assert_true(w >= 0);
        r = open(P(m.mp, "b"), O_RDONLY);
        assert_true(r >= 0);
        assert_int_equal(pwrite(w, "YYYY", 4, 70000), 4);
        assert_int_equal(pread(r, got, 4, 70000), 4);
        assert_memory_equal(got, "YYYY", 4);
        nono_fs_get_stats(m.fs, &k2);
        close(r);
        close(w);
        /* the kernel sends RELEASE without waiting for it: until both are served, b still has daemon handles
         * and a new open cannot be passed through. Their two open events are recorded at release. */
        wait_events(m.fs, k2.events + 2);
        nono_fs_get_stats(m.fs, &k2);
        assert_int_equal(k2.passthrough_opens, k1.passthrough_opens); /* both through the daemon */
        /* and read again alone (passed through): the whole file as written */
        r = open(P(m.mp, "b"), O_RDONLY);
        assert_true(r >= 0);
        assert_int_equal(read(r, back, size), (ssize_t)size);
        close(r);
        assert_memory_equal(back, orig, 70000);
        assert_memory_equal(back + 70000, "YYYY", 4);
        assert_memory_equal(back + 70004, orig + 70004, size - 70004);
        nono_fs_get_stats(m.fs, &k1);
        assert_int_equal(k1.passthrough_opens - k2.passthrough_opens, pt ? 1 : 0);
        mnt_unmount(&m);

        assert_pre_chunk1(st, id, "a", orig, size);
        assert_pre_chunk1(st, id, "b", orig, size);
        nono_store_close(st);
        mnt_down(&m);
        free(orig);
        free(back);
}

/* A big file that owes its pre-image is read through fs/, not passed through: a writer that comes while it
 * is open then captures the chunk it changes, not the whole file (which would stall it). */
static void t_passthrough_big_reader(void **s)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1], got[4];
        nono_store *st = open_store();

        (void)s;
        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        int fd = open(P(m.back, "big"), O_CREAT | O_WRONLY, 0644);
        assert_int_equal(ftruncate(fd, 64LL << 20), 0); /* sparse, over the 8 MiB limit */
        close(fd);
        put(P(m.back, "small"), "0123456789", 10);
        new_session(st, m.back, true, id);
        struct nono_fs_config c = {.store = st, .session = id, .preimages = true};
        assert_int_equal(mnt_serve(&m, &c), 0);

        struct nono_fs_stats k0, k1, k2;
        nono_fs_get_stats(m.fs, &k0);
        int r = open(P(m.mp, "big"), O_RDONLY);
        assert_true(r >= 0);
        nono_fs_get_stats(m.fs, &k1);
        assert_int_equal(k1.passthrough_opens, k0.passthrough_opens);
        int w = open(P(m.mp, "big"), O_WRONLY);
        assert_true(w >= 0);
        assert_int_equal(pwrite(w, "data", 4, 32 << 20), 4);
        assert_int_equal(pread(r, got, 4, 32 << 20), 4);
        assert_memory_equal(got, "data", 4);
        close(w);
        close(r);
        nono_fs_get_stats(m.fs, &k2);
        assert_int_equal(k2.preimage_bytes - k1.preimage_bytes, NONO_CHUNK_SIZE);
        /* a small file that owes its pre-image is still passed through for reading (as root) */
        r = open(P(m.mp, "small"), O_RDONLY);
        assert_true(r >= 0);
        nono_fs_get_stats(m.fs, &k1);
        assert_int_equal(k1.passthrough_opens - k2.passthrough_opens, passthrough_possible() ? 1 : 0);
        /* it grows past the limit behind the mount while open: a second reader has to be passed through too
         * (the kernel takes no other way while the first is), and opens */
        assert_int_equal(truncate(P(m.back, "small"), 16 << 20), 0);
        int r2 = open(P(m.mp, "small"), O_RDONLY);
        assert_true(r2 >= 0);
        assert_int_equal(pread(r2, got, 4, 2), 4);
        assert_memory_equal(got, "2345", 4);
        nono_fs_get_stats(m.fs, &k2);
        assert_int_equal(k2.passthrough_opens - k1.passthrough_opens, passthrough_possible() ? 1 : 0);
        close(r2);
        close(r);
        mnt_unmount(&m);

        struct nono_node n = {0};
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "big"), &n), 0);
        assert_false(n.complete);
        assert_int_equal(n.n_chunks, 1);
        nono_node_clear(&n);
        nono_store_close(st);
        mnt_down(&m);
}

static void t_preimages(void **s)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1];
        nono_store *st = open_store();
        size_t big = 300 * 1024;
        char *orig = malloc(big);
        for (size_t k = 0; k < big; k++)
                orig[k] = (char)(k * 7);

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "big"), orig, big);
        put(P(m.back, "small"), "small file", 10);
        setxattr(P(m.back, "small"), "user.k", "v", 1, 0);
        mkdir(P(m.back, "d"), 0750);
        put(P(m.back, "d/x"), "x", 1);
        put(P(m.back, "d/y"), "y", 1);
        symlink("target", P(m.back, "l"));
        /* a sparse 1 GiB file: a small write into it must capture one chunk, not the file */
        int fd = open(P(m.back, "huge"), O_CREAT | O_WRONLY, 0644);
        assert_int_equal(ftruncate(fd, 1LL << 30), 0);
        close(fd);
        new_session(st, m.back, true, id);
        struct nono_fs_config c = {.store = st, .session = id, .preimages = true};
        assert_int_equal(mnt_serve(&m, &c), 0);

        fd = open(P(m.mp, "big"), O_WRONLY);
        assert_int_equal(pwrite(fd, "XXXX", 4, 70000), 4);
        close(fd);
        struct nono_fs_stats before, after;
        nono_fs_get_stats(m.fs, &before);
        fd = open(P(m.mp, "huge"), O_WRONLY);
        assert_int_equal(pwrite(fd, "hello", 5, 512 << 20), 5);
        close(fd);
        nono_fs_get_stats(m.fs, &after);
        assert_int_equal(after.preimage_bytes - before.preimage_bytes, NONO_CHUNK_SIZE);
        assert_int_equal(truncate(P(m.mp, "small"), 2), 0);
        assert_int_equal(chmod(P(m.mp, "d"), 0700), 0);
        assert_int_equal(unlink(P(m.mp, "d/x")), 0);
        put(P(m.mp, "d/new"), "n", 1);
        assert_int_equal(rename(P(m.mp, "small"), P(m.mp, "d/moved")), 0);
        assert_int_equal(unlink(P(m.mp, "l")), 0);
        assert_int_equal(symlink("other", P(m.mp, "l")), 0);
        mnt_unmount(&m);

        struct nono_node n = {0};
        /* big: chunk 1 captured with the original bytes, nothing else */
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "big"), &n), 0);
        assert_int_equal(n.type, NONO_FT_FILE);
        assert_int_equal(n.size, big);
        assert_false(n.complete);
        assert_int_equal(n.n_chunks, 1);
        assert_int_equal(n.chunks[0].index, 1);
        char chunk[NONO_CHUNK_SIZE];
        size_t len = 0;
        assert_int_equal(nono_chunk_get(st, &n.chunks[0].digest, chunk, sizeof(chunk), &len), 0);
        assert_int_equal(len, NONO_CHUNK_SIZE);
        assert_memory_equal(chunk, orig + NONO_CHUNK_SIZE, NONO_CHUNK_SIZE);
        nono_node_clear(&n);
        /* small: complete, with its xattr */
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "small"), &n), 0);
        assert_true(n.complete);
        void *b = NULL;
        assert_int_equal(nono_object_get_buf(st, &n.object, &b, &len), 0);
        assert_int_equal(len, 10);
        assert_memory_equal(b, "small file", 10);
        free(b);
        assert_int_equal(n.n_xattrs, 1);
        assert_string_equal(n.xattrs[0].name, "user.k");
        nono_node_clear(&n);
        /* d: a directory with its names and mode at start */
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "d"), &n), 0);
        assert_int_equal(n.type, NONO_FT_DIR);
        assert_int_equal(n.mode, 0750);
        int names = 0;
        for (char **e = n.entries; e && *e; e++)
                names += !strcmp(*e, "x") || !strcmp(*e, "y");
        assert_int_equal(names, 2);
        nono_node_clear(&n);
        assert_true(pre_of(st, id, "d/x") != 0);
        assert_int_equal(pre_of(st, id, "d/new"), 0);
        assert_int_equal(pre_of(st, id, "d/moved"), 0);
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "l"), &n), 0);
        assert_int_equal(n.type, NONO_FT_SYMLINK);
        assert_string_equal(n.link_target, "target");
        nono_node_clear(&n);
        /* post-images */
        struct nono_path_rec r = {0};
        assert_int_equal(nono_path_get(st, id, 0, "small", &r), 0);
        assert_true(r.has_post);
        assert_int_equal(r.post_type, NONO_FT_ABSENT);
        nono_path_rec_clear(&r);
        assert_int_equal(nono_path_get(st, id, 0, "d/moved", &r), 0);
        assert_true(r.has_post);
        assert_int_equal(r.post_type, NONO_FT_FILE);
        assert_true(r.post_has_digest);
        assert_int_equal(r.post_node, pre_of(st, id, "small"));
        nono_path_rec_clear(&r);
        assert_int_equal(nono_path_get(st, id, 0, "l", &r), 0);
        assert_string_equal(r.post_link_target, "other");
        nono_path_rec_clear(&r);
        free(orig);
        nono_store_close(st);
        mnt_down(&m);
}

/* Unlinking a big, partly captured file costs a link, and the background ingest makes its node complete. */
/* A file with two names, changed through one: fs/ links its inode into its stash (so restore can reach the
 * name in a directory the session never saw), and the agent must still see the link counts it would see
 * without fs/: 2 while both names exist, 1 after one is removed. */
static void t_stash_link_hidden(void **s)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1];
        struct stat st;
        nono_store *st_ = open_store();

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "a"), "x", 1);
        mkdir(P(m.back, "d"), 0755);
        assert_int_equal(link(P(m.back, "a"), P(m.back, "d/b")), 0);
        new_session(st_, m.back, true, id);
        struct nono_fs_config c = {.store = st_, .session = id, .preimages = true};
        assert_int_equal(mnt_serve(&m, &c), 0);

        int fd = open(P(m.mp, "a"), O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "y", 1), 1);
        assert_int_equal(close(fd), 0);
        assert_int_equal(stat(P(m.back, "a"), &st), 0);
        assert_int_equal(st.st_nlink, 3); /* a, d/b and fs/'s stash name: the case under test happened */
        /* d/b is looked up for the first time now: its attributes come fresh from fs/ */
        assert_int_equal(stat(P(m.mp, "d/b"), &st), 0);
        assert_int_equal(st.st_nlink, 2);
        assert_int_equal(st.st_size, 2);
        assert_int_equal(unlink(P(m.mp, "d/b")), 0);
        assert_int_equal(stat(P(m.mp, "a"), &st), 0);
        assert_int_equal(st.st_nlink, 1);
        mnt_unmount(&m);
        nono_store_close(st_);
        mnt_down(&m);
}

static void t_stash_ingest(void **s)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1];
        nono_store *st = open_store();
        size_t big = 1 << 20;
        char *orig = malloc(big);
        for (size_t k = 0; k < big; k++)
                orig[k] = (char)(k * 13 + 1);

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "big"), orig, big);
        new_session(st, m.back, true, id);
        struct nono_fs_config c = {.store = st, .session = id, .preimages = true};
        assert_int_equal(mnt_serve(&m, &c), 0);
        int fd = open(P(m.mp, "big"), O_WRONLY);
        assert_int_equal(pwrite(fd, "changed", 7, 3), 7);
        close(fd);
        assert_int_equal(unlink(P(m.mp, "big")), 0);
        mnt_unmount(&m); /* waits for the ingest */
        struct nono_node n = {0};
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "big"), &n), 0);
        assert_true(n.complete);
        assert_object_is(st, &n, orig, big);
        nono_node_clear(&n);
        /* the stash entry is gone once ingested, and so is its directory (beside the root) at the session
         * end */
        char stash[1024];
        struct stat sst;
        snprintf(stash, sizeof(stash), "%s/" NONO_STASH_PREFIX "%s.0", m.base, id);
        assert_int_equal(lstat(stash, &sst), -1);
        assert_int_equal(errno, ENOENT);
        free(orig);
        nono_store_close(st);
        mnt_down(&m);
}

/* Truncating a big file copies it into the stash first (one copy, no hashing in the agent's path); the
 * node ends complete with the original content. */
static void t_truncate_big(void **s)
{
        struct mnt m;
        char id[NONO_SESSION_ID_LEN + 1];
        nono_store *st = open_store();
        size_t big = 10u << 20;
        char *orig = malloc(big);
        for (size_t k = 0; k < big; k++)
                orig[k] = (char)(k * 5 + 3);

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "big"), orig, big);
        new_session(st, m.back, true, id);
        struct nono_fs_config c = {.store = st, .session = id, .preimages = true};
        assert_int_equal(mnt_serve(&m, &c), 0);
        int fd = open(P(m.mp, "big"), O_WRONLY);
        assert_int_equal(pwrite(fd, "first", 5, 1000), 5);
        close(fd);
        fd = open(P(m.mp, "big"), O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "new", 3), 3);
        close(fd);
        mnt_unmount(&m);
        struct nono_node n = {0};
        assert_int_equal(nono_node_get(st, id, pre_of(st, id, "big"), &n), 0);
        assert_true(n.complete);
        assert_object_is(st, &n, orig, big);
        nono_node_clear(&n);
        free(orig);
        nono_store_close(st);
        mnt_down(&m);
}

struct per_root {
        uint64_t n[2];
};

static int root_cb(const struct nono_event *ev, void *u)
{
        struct per_root *q = u;
        if (ev->type == NONO_EV_FILE && ev->root < 2)
                q->n[ev->root]++;
        return 0;
}

/* One flusher serves every recording root of the process: events of two roots served at once reach the
 * store while both are still mounted (the flusher's timer, not their stop, writes them). */
static void t_two_roots_flushed_while_serving(void **s)
{
        struct mnt a, b;
        char id[NONO_SESSION_ID_LEN + 1];
        nono_store *st = open_store();
        struct per_root q = {0};

        (void)s;
        assert_int_equal(mnt_up(&a, NULL), 0);
        assert_int_equal(mnt_up(&b, NULL), 0);
        mnt_unmount(&a);
        mnt_unmount(&b);
        new_session(st, a.back, false, id);
        struct nono_fs_config c0 = {.store = st, .session = id, .record = true, .root_id = 0};
        struct nono_fs_config c1 = {.store = st, .session = id, .record = true, .root_id = 1};
        assert_int_equal(mnt_serve(&a, &c0), 0);
        assert_int_equal(mnt_serve(&b, &c1), 0);
        put(P(a.mp, "f"), "root zero", 9);
        put(P(b.mp, "f"), "root one", 8);
        for (int tries = 0; tries < 10000 && (!q.n[0] || !q.n[1]); tries++) {
                q = (struct per_root){0};
                assert_int_equal(nono_events_iterate(st, id, 1, root_cb, &q), 0);
                if (!q.n[0] || !q.n[1])
                        nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        assert_true(q.n[0] >= 1);
        assert_true(q.n[1] >= 1);
        mnt_unmount(&a);
        mnt_unmount(&b);
        nono_store_close(st);
        mnt_down(&a);
        mnt_down(&b);
}

/* One session, two roots, each with its own nono_fs: their records do not collide. */
static void t_two_roots(void **s)
{
        struct mnt a, b;
        char id[NONO_SESSION_ID_LEN + 1];
        nono_store *st = open_store();

        assert_int_equal(mnt_up(&a, NULL), 0);
        assert_int_equal(mnt_up(&b, NULL), 0);
        mnt_unmount(&a);
        mnt_unmount(&b);
        put(P(a.back, "f"), "root zero", 9);
        put(P(b.back, "f"), "root one", 8);
        new_session(st, a.back, true, id);
        struct nono_fs_config c0 = {.store = st, .session = id, .preimages = true, .root_id = 0};
        struct nono_fs_config c1 = {.store = st, .session = id, .preimages = true, .root_id = 1};
        assert_int_equal(mnt_serve(&a, &c0), 0);
        assert_int_equal(mnt_serve(&b, &c1), 0);
        assert_int_equal(truncate(P(a.mp, "f"), 0), 0);
        assert_int_equal(truncate(P(b.mp, "f"), 0), 0);
        mnt_unmount(&a);
        mnt_unmount(&b);
        struct nono_path_rec r0 = {0}, r1 = {0};
        assert_int_equal(nono_path_get(st, id, 0, "f", &r0), 0);
        assert_int_equal(nono_path_get(st, id, 1, "f", &r1), 0);
        assert_true(r0.pre_node != r1.pre_node);
        struct nono_node n = {0};
        void *buf = NULL;
        size_t len = 0;
        assert_int_equal(nono_node_get(st, id, r1.pre_node, &n), 0);
        assert_int_equal(nono_object_get_buf(st, &n.object, &buf, &len), 0);
        assert_int_equal(len, 8);
        assert_memory_equal(buf, "root one", 8);
        free(buf);
        nono_node_clear(&n);
        nono_path_rec_clear(&r0);
        nono_path_rec_clear(&r1);
        nono_store_close(st);
        mnt_down(&a);
        mnt_down(&b);
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
            cmocka_unit_test(t_events),
            cmocka_unit_test(t_listing_events),
            cmocka_unit_test(t_events_passthrough),
            cmocka_unit_test(t_passthrough_modes),
            cmocka_unit_test(t_passthrough_big_reader),
            cmocka_unit_test(t_preimages),
            cmocka_unit_test(t_stash_ingest),
            cmocka_unit_test(t_truncate_big),
            cmocka_unit_test(t_two_roots),
            cmocka_unit_test(t_two_roots_flushed_while_serving),
            cmocka_unit_test(t_stash_link_hidden),
        };
        return cmocka_run_group_tests_name("fs-record", tests, setup, teardown);
}
