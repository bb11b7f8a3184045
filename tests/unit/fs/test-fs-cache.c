/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-cache.c - the kernel's page cache of files served through fs/ (fs/ops-file.c "CACHE"): what fs/
 * writes stays cached (a file written is read back without the daemon), and a file changed behind the mount
 * - by the user's editor while the agent runs - is seen at its next open through the mount: same size or not,
 * through read() and mmap, with the attributes that go with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct mnt M;

static void path(char *buf, size_t len, const char *dir, const char *name)
{
        snprintf(buf, len, "%s/%s", dir, name);
}

static void put(const char *p, const char *data, size_t len)
{
        int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

/* The whole file as read() through a fresh open; returns its length. */
static size_t get(const char *p, char *buf, size_t cap)
{
        int fd = open(p, O_RDONLY);
        assert_true(fd >= 0);
        size_t n = 0;
        ssize_t r;
        while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
                n += (size_t)r;
        assert_int_equal(close(fd), 0);
        return n;
}

/* Sets the mtime to t seconds, so a change made within the same clock tick still differs. */
static void set_mtime(const char *p, time_t t)
{
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = t, .tv_nsec = 0}};
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void t_outside_same_size(void **s)
{
        char m[600], b[600], buf[64];
        path(m, sizeof(m), M.mp, "same");
        path(b, sizeof(b), M.back, "same");
        put(m, "aaaaaaaa", 8);
        assert_int_equal(get(m, buf, sizeof(buf)), 8);
        assert_memory_equal(buf, "aaaaaaaa", 8);
        /* the kernel now holds the file's page; the user rewrites it behind the mount */
        put(b, "bbbbbbbb", 8);
        set_mtime(b, 1500000000);
        assert_int_equal(get(m, buf, sizeof(buf)), 8);
        assert_memory_equal(buf, "bbbbbbbb", 8);
        struct stat st;
        assert_int_equal(stat(m, &st), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1500000000);
}

static void t_outside_size_changes(void **s)
{
        char m[600], b[600], buf[256];
        struct stat st;
        path(m, sizeof(m), M.mp, "grow");
        path(b, sizeof(b), M.back, "grow");
        put(m, "short", 5);
        assert_int_equal(get(m, buf, sizeof(buf)), 5);
        put(b, "a much longer content than before", 33);
        set_mtime(b, 1500000001);
        assert_int_equal(get(m, buf, sizeof(buf)), 33);
        assert_memory_equal(buf, "a much longer content than before", 33);
        assert_int_equal(stat(m, &st), 0);
        assert_int_equal(st.st_size, 33);
        assert_int_equal(truncate(b, 3), 0);
        set_mtime(b, 1500000002);
        assert_int_equal(get(m, buf, sizeof(buf)), 3);
        assert_memory_equal(buf, "a m", 3);
        assert_int_equal(stat(m, &st), 0);
        assert_int_equal(st.st_size, 3);
}

/* An O_TRUNC open of a file changed behind the mount leaves exactly what is written after it. */
static void t_outside_then_trunc(void **s)
{
        char m[600], b[600], buf[64];
        path(m, sizeof(m), M.mp, "trunc");
        path(b, sizeof(b), M.back, "trunc");
        put(m, "0123456789", 10);
        assert_int_equal(get(m, buf, sizeof(buf)), 10);
        put(b, "abcdefghijklmnop", 16);
        set_mtime(b, 1500000004);
        int fd = open(m, O_RDWR | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "new", 3), 3);
        assert_int_equal(pread(fd, buf, sizeof(buf), 0), 3);
        assert_memory_equal(buf, "new", 3);
        assert_int_equal(close(fd), 0);
        assert_int_equal(get(m, buf, sizeof(buf)), 3);
        assert_memory_equal(buf, "new", 3);
        struct stat st;
        assert_int_equal(stat(m, &st), 0);
        assert_int_equal(st.st_size, 3);
}

static void t_outside_seen_by_mmap(void **s)
{
        char m[600], b[600], buf[8192];
        path(m, sizeof(m), M.mp, "mapped");
        path(b, sizeof(b), M.back, "mapped");
        memset(buf, 'x', sizeof(buf));
        put(m, buf, sizeof(buf));
        assert_int_equal(get(m, buf, sizeof(buf)), sizeof(buf));
        memset(buf, 'y', sizeof(buf));
        put(b, buf, sizeof(buf));
        set_mtime(b, 1500000003);
        int fd = open(m, O_RDONLY);
        assert_true(fd >= 0);
        char *p = mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, fd, 0);
        assert_true(p != MAP_FAILED);
        assert_memory_equal(p, buf, sizeof(buf));
        munmap(p, sizeof(buf));
        close(fd);
}

/* What fs/ itself wrote stays in the kernel's cache after close: reopening, stat'ing, reading and mapping the
 * file finds every page resident (before, each write made the kernel drop the file's pages, and the next read
 * went through the daemon). */
static void t_own_writes_stay_cached(void **s)
{
        enum { LEN = 4 << 20 };
        char m[600];
        char *buf = malloc(LEN), *back = malloc(LEN);
        assert_non_null(buf);
        assert_non_null(back);
        for (size_t k = 0; k < LEN; k++)
                buf[k] = (char)(k * 7);
        path(m, sizeof(m), M.mp, "own");
        put(m, buf, LEN);
        int fd = open(m, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "patch", 5, 4096), 5);
        memcpy(buf + 4096, "patch", 5);
        assert_int_equal(close(fd), 0);
        fd = open(m, O_RDONLY);
        assert_true(fd >= 0);
        /* a stat and a read are what made the kernel compare mtimes and drop the pages */
        struct stat st;
        char c;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, LEN);
        assert_int_equal(pread(fd, &c, 1, 0), 1);
        char *p = mmap(NULL, LEN, PROT_READ, MAP_SHARED, fd, 0);
        assert_true(p != MAP_FAILED);
        static unsigned char vec[LEN / 4096];
        assert_int_equal(mincore(p, LEN, vec), 0);
        size_t resident = 0;
        for (size_t k = 0; k < sizeof(vec); k++)
                resident += vec[k] & 1;
        assert_int_equal(resident, sizeof(vec));
        assert_memory_equal(p, buf, LEN);
        munmap(p, LEN);
        close(fd);
        /* and it is what the backing file holds */
        char b[600];
        path(b, sizeof(b), M.back, "own");
        assert_int_equal(get(b, back, LEN), LEN);
        assert_memory_equal(back, buf, LEN);
        free(buf);
        free(back);
}

/* Changes through the mount that the kernel makes to its own cache (truncate, punch, copy_file_range into
 * the file) read back as the backing file holds them, through another open and after reopening. */
static void t_own_changes_read_back(void **s)
{
        char m[600], b[600], buf[64], want[64];
        path(m, sizeof(m), M.mp, "changes");
        path(b, sizeof(b), M.back, "changes");
        put(m, "0123456789abcdef", 16);
        int fd = open(m, O_RDWR), fd2 = open(m, O_RDONLY);
        assert_true(fd >= 0 && fd2 >= 0);
        assert_int_equal(pread(fd2, buf, sizeof(buf), 0), 16);
        assert_int_equal(ftruncate(fd, 10), 0);
        assert_int_equal(pwrite(fd, "XY", 2, 12), 2);
        assert_int_equal(pread(fd2, buf, sizeof(buf), 0), 14);
        assert_memory_equal(buf, "0123456789\0\0XY", 14);
        assert_int_equal(close(fd), 0);
        assert_int_equal(close(fd2), 0);
        assert_int_equal(get(m, buf, sizeof(buf)), 14);
        assert_int_equal(get(b, want, sizeof(want)), 14);
        assert_memory_equal(buf, want, 14);
}

/* Writes larger than one request (max_write is 1 MiB less 4 KiB, fs.c) and unaligned ones land where they
 * should, and the attributes seen through the mount afterwards (size, blocks, mtime) are the backing file's.
 */
static void t_big_writes_and_attrs(void **s)
{
        enum { LEN = (5 << 19) + 100 };
        char m[600], b[600];
        char *buf = malloc(LEN), *got = malloc(LEN);
        assert_non_null(buf);
        assert_non_null(got);
        for (size_t k = 0; k < LEN; k++)
                buf[k] = (char)(k % 251);
        path(m, sizeof(m), M.mp, "big");
        path(b, sizeof(b), M.back, "big");
        int fd = open(m, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, 3), 3);                             /* unaligned start */
        assert_int_equal(write(fd, buf + 3, (1 << 20) + 7), (1 << 20) + 7); /* spans two requests */
        assert_int_equal(pwrite(fd, buf + (1 << 20) + 10, LEN - (1 << 20) - 10, (1 << 20) + 10),
                         LEN - (1 << 20) - 10);
        assert_int_equal(write(fd, "", 0), 0);
        assert_int_equal(fsync(fd), 0);
        assert_int_equal(close(fd), 0);
        struct stat sm, sb;
        assert_int_equal(stat(m, &sm), 0);
        assert_int_equal(stat(b, &sb), 0);
        assert_int_equal(sm.st_size, sb.st_size);
        assert_int_equal(sm.st_blocks, sb.st_blocks);
        assert_int_equal(sm.st_mtim.tv_sec, sb.st_mtim.tv_sec);
        assert_int_equal(sm.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
        assert_int_equal(get(b, got, LEN), LEN);
        assert_memory_equal(got, buf, LEN);
        assert_int_equal(get(m, got, LEN), LEN);
        assert_memory_equal(got, buf, LEN);
        free(buf);
        free(got);
}

/* The kernel's readahead window of the mount: about 2 MiB when fs/ could raise it (root), so a cold
 * sequential read goes through fs/ a megabyte at a time, not 128 KiB. Unprivileged, sysfs is not writable:
 * the mount works with the kernel's default, which is not asserted here. */
static void t_readahead_window(void **s)
{
        struct stat st;
        char p[96], v[32] = {0};
        assert_int_equal(stat(M.mp, &st), 0);
        assert_int_equal(nono_fs_mount_dev(M.mp), st.st_dev); /* asked without a request, same answer */
        if (geteuid() != 0 || access("/sys/class/bdi", W_OK) != 0)
                skip();
        snprintf(p, sizeof(p), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        assert_non_null(fgets(v, sizeof(v), f));
        fclose(f);
        assert_true(atoi(v) >= 1024); /* two of the largest reads: 2 x max_write, 1 MiB at least */
}

static bool listed(const char *dir, const char *name)
{
        DIR *d = opendir(dir);
        bool found = false;
        if (!d)
                return false;
        for (struct dirent *e; !found && (e = readdir(d));)
                found = !strcmp(e->d_name, name);
        closedir(d);
        return found;
}

/* Waits for cond(arg) for at most 10 s (fs/ promises NONO_FS_FRESH, 1 s): polls every 20 ms. */
static bool within(bool (*cond)(const char *, const char *), const char *a, const char *b)
{
        struct timespec t0, now, tick = {0, 20 * 1000 * 1000};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
                if (cond(a, b))
                        return true;
                nanosleep(&tick, NULL);
                clock_gettime(CLOCK_MONOTONIC, &now);
        } while (now.tv_sec - t0.tv_sec < 10);
        return cond(a, b);
}

static bool exists(const char *p, const char *unused)
{
        struct stat st;
        (void)unused;
        return stat(p, &st) == 0;
}

/* Names created behind the mount show through it (fs-internal.h FRESHNESS): one the agent looked up while it
 * did not exist, and one in a directory whose listing the kernel had cached. */
static void t_outside_names_seen(void **s)
{
        char bd[600], md[600], bf[700], mf[700], bg[700];
        path(bd, sizeof(bd), M.back, "fresh");
        path(md, sizeof(md), M.mp, "fresh");
        assert_int_equal(mkdir(md, 0755), 0);
        path(mf, sizeof(mf), md, "later");
        path(bf, sizeof(bf), bd, "later");
        path(bg, sizeof(bg), bd, "listed-later");
        assert_false(exists(mf, NULL)); /* a negative entry now */
        assert_false(listed(md, "listed-later"));
        assert_false(listed(md, "listed-later")); /* from the kernel's cache */
        put(bf, "x", 1);
        put(bg, "y", 1);
        assert_true(within(exists, mf, NULL));
        assert_true(within(listed, md, "listed-later"));
        char buf[8];
        assert_int_equal(get(mf, buf, sizeof(buf)), 1);
}

/* A file replaced behind the mount by an editor's save (a new file renamed over the old one), or moved
 * away, is seen at the agent's next open, even though the agent had opened the old one (fs/inode.c
 * "REPLACED"); a file that keeps another hard link is still served by the name the kernel remembers. */
static void t_outside_replaced(void **s)
{
        char bf[600], mf[600], bt[600], bm[600], mm[600], bl[600], bl2[600], ml[600], buf[16];
        path(bf, sizeof(bf), M.back, "edited.c");
        path(mf, sizeof(mf), M.mp, "edited.c");
        path(bt, sizeof(bt), M.back, ".edited.c.swp");
        put(mf, "v1", 2);
        assert_int_equal(get(mf, buf, sizeof(buf)), 2);
        assert_memory_equal(buf, "v1", 2);
        put(bt, "v2-saved", 8);
        assert_int_equal(rename(bt, bf), 0);
        assert_int_equal(get(mf, buf, sizeof(buf)), 8);
        assert_memory_equal(buf, "v2-saved", 8);
        struct stat st;
        assert_int_equal(stat(mf, &st), 0);
        assert_int_equal(st.st_size, 8);
        /* moved away behind the mount: the old name is gone through it too, the new one is there */
        path(bm, sizeof(bm), M.back, "moved.c");
        path(mm, sizeof(mm), M.mp, "moved.c");
        assert_int_equal(rename(bf, bm), 0);
        assert_int_equal(open(mf, O_RDONLY), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(get(mm, buf, sizeof(buf)), 8);
        /* two links, one replaced behind the mount: the other still reads the file it names */
        path(bl, sizeof(bl), M.back, "linked");
        path(bl2, sizeof(bl2), M.back, "linked2");
        path(ml, sizeof(ml), M.mp, "linked");
        put(bl, "old", 3);
        assert_int_equal(link(bl, bl2), 0);
        assert_int_equal(get(ml, buf, sizeof(buf)), 3);
        put(bt, "newer", 5);
        assert_int_equal(rename(bt, bl2), 0);
        assert_int_equal(get(ml, buf, sizeof(buf)), 3);
        assert_memory_equal(buf, "old", 3);
}

/* A file renamed behind the mount and opened by its new name before the watcher has seen the rename (here:
 * no watcher at all), whether fs/ holds an fd of it (created through the mount) or not (created behind it
 * and only looked up): the open finds it (it failed with ESTALE when the watcher came late). */
static void t_renamed_before_the_watcher(void **s)
{
        struct mnt m;
        char a[600], b[600], ma[600], mb[600], buf[16];
        struct stat st;

        setenv("NONO_FS_NO_WATCH", "1", 1);
        assert_int_equal(mnt_up(&m, NULL), 0);
        unsetenv("NONO_FS_NO_WATCH");
        for (int k = 0; k < 2; k++) {
                path(a, sizeof(a), m.back, k ? "behind-a" : "through-a");
                path(b, sizeof(b), m.back, k ? "behind-b" : "through-b");
                path(ma, sizeof(ma), m.mp, k ? "behind-a" : "through-a");
                path(mb, sizeof(mb), m.mp, k ? "behind-b" : "through-b");
                put(k ? a : ma, "content", 7);
                assert_int_equal(stat(ma, &st), 0); /* the kernel knows it by its first name */
                assert_int_equal(st.st_size, 7);
                assert_int_equal(rename(a, b), 0);
                assert_int_equal(get(mb, buf, sizeof(buf)), 7);
                assert_memory_equal(buf, "content", 7);
                assert_int_equal(stat(mb, &st), 0);
                assert_int_equal(st.st_size, 7);
        }
        mnt_down(&m);
}

static bool size_is(const char *p, const char *want)
{
        struct stat st;
        return stat(p, &st) == 0 && st.st_size == atoll(want);
}

static bool mode_is(const char *p, const char *want)
{
        struct stat st;
        return stat(p, &st) == 0 && (long)(st.st_mode & 07777) == strtol(want, NULL, 8);
}

static bool missing(const char *p, const char *unused)
{
        struct stat st;
        (void)unused;
        return stat(p, &st) < 0 && errno == ENOENT;
}

/* Changes behind the mount to files the kernel knows show in stat() through it (fs/watch.c): a file edited
 * in place (what make and git status look at), one chmod'ed, one removed. */
static void t_outside_watched(void **s)
{
        char bf[600], mf[600], bg[600], mg[600], buf[32];
        struct stat st;
        path(bf, sizeof(bf), M.back, "watched.c");
        path(mf, sizeof(mf), M.mp, "watched.c");
        path(bg, sizeof(bg), M.back, "removed.c");
        path(mg, sizeof(mg), M.mp, "removed.c");
        put(mf, "v1", 2);
        put(mg, "r", 1);
        assert_int_equal(get(mf, buf, sizeof(buf)), 2);
        assert_int_equal(stat(mf, &st), 0);
        assert_int_equal(st.st_size, 2);
        assert_int_equal(stat(mg, &st), 0);
        int fd = open(bf, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, " and more", 9), 9);
        assert_int_equal(close(fd), 0);
        assert_true(within(size_is, mf, "11"));
        assert_int_equal(chmod(bf, 0600), 0);
        assert_true(within(mode_is, mf, "600"));
        assert_int_equal(unlink(bg), 0);
        assert_true(within(missing, mg, NULL));
        assert_int_equal(get(mf, buf, sizeof(buf)), 11);
        assert_memory_equal(buf, "v1 and more", 11);
}

static int setup(void **s)
{
        return mnt_up(&M, NULL) == 0 ? 0 : -1;
}

static int teardown(void **s)
{
        mnt_down(&M);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_outside_same_size),     cmocka_unit_test(t_outside_size_changes),
            cmocka_unit_test(t_outside_seen_by_mmap),  cmocka_unit_test(t_own_writes_stay_cached),
            cmocka_unit_test(t_own_changes_read_back), cmocka_unit_test(t_outside_then_trunc),
            cmocka_unit_test(t_big_writes_and_attrs),  cmocka_unit_test(t_readahead_window),
            cmocka_unit_test(t_outside_names_seen),    cmocka_unit_test(t_outside_replaced),
            cmocka_unit_test(t_outside_watched),       cmocka_unit_test(t_renamed_before_the_watcher),
        };
        return cmocka_run_group_tests_name("fs-cache", tests, setup, teardown);
}
