/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-fdbudget.c - fs/ serves trees with more files than RLIMIT_NOFILE allows fds (fs/evict.c).
 *
 * The daemon runs in this process, so the test lowers its own RLIMIT_NOFILE (soft and hard: fs/ raises the
 * soft limit to the hard one when serving starts) to 512 and stats and opens ~3,000 files through the mount,
 * in the root and in subdirectories, twice. Without the budget every opened inode keeps an fd and the opens
 * fail with EMFILE after ~500; with it every one succeeds, reports the real file's inode, and the process's
 * fds stay under 70% of the limit plus the few the mount itself needs. A directory swapped for a symlink
 * after its entry was dropped comes back as the symlink (a fresh no-follow lookup), never as the old
 * directory.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define LIMIT   512
#define NDIRS   15
#define PER_DIR 100
#define NROOT   1500
#define SLACK   40 /* fds that are not inodes: stdio, /dev/fuse clones of the workers, eventfds */

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        for (struct dirent *e; (e = readdir(d));) {
                char p[300], t[64] = "";
                if (e->d_name[0] == '.')
                        continue;
                /* the watch thread's epoll instance lives as long as the process (fs/watch.c) */
                snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
                if (readlink(p, t, sizeof(t) - 1) > 0 && !strcmp(t, "anon_inode:[eventpoll]"))
                        continue;
                n++;
        }
        closedir(d);
        return n - 1; /* the DIR itself */
}

static void make_tree(const char *back)
{
        char p[1024];

        for (int d = 0; d < NDIRS; d++) {
                snprintf(p, sizeof(p), "%s/d%02d", back, d);
                assert_int_equal(mkdir(p, 0755), 0);
                for (int k = 0; k < PER_DIR; k++) {
                        snprintf(p, sizeof(p), "%s/d%02d/f%03d", back, d, k);
                        assert_int_equal(mknod(p, S_IFREG | 0644, 0), 0);
                }
        }
        for (int k = 0; k < NROOT; k++) {
                snprintf(p, sizeof(p), "%s/f%05d", back, k);
                assert_int_equal(mknod(p, S_IFREG | 0644, 0), 0);
        }
}

/* Stats every file through the mount and compares it with the real one; with use, also opens it (which
 * gives its inode an fd in fs/; a stat alone does not). Returns the peak fd count. */
static int walk(const struct mnt *m, bool use)
{
        char rel[32], b[1024];
        struct stat sa, sb;
        int peak = 0;

        for (int n = 0; n < NDIRS * PER_DIR + NROOT; n++) {
                if (n < NDIRS * PER_DIR)
                        snprintf(rel, sizeof(rel), "d%02d/f%03d", n / PER_DIR, n % PER_DIR);
                else
                        snprintf(rel, sizeof(rel), "f%05d", n - NDIRS * PER_DIR);
                snprintf(b, sizeof(b), "%s/%s", m->mp, rel);
                if (stat(b, &sa) != 0)
                        fail_msg("stat %s through the mount: %s (file %d of %d)", rel, strerror(errno), n,
                                 NDIRS * PER_DIR + NROOT);
                if (use) {
                        int fd = open(b, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                fail_msg("open %s through the mount: %s (file %d)", rel, strerror(errno), n);
                        close(fd);
                }
                snprintf(b, sizeof(b), "%s/%s", m->back, rel);
                assert_int_equal(stat(b, &sb), 0);
                assert_int_equal(sa.st_ino, sb.st_ino);
                assert_true(S_ISREG(sa.st_mode));
                if (n % 100 == 0) {
                        int c = count_fds();
                        peak = c > peak ? c : peak;
                }
        }
        return peak;
}

static void test_more_files_than_fds(void **state)
{
        (void)state;
        struct mnt m;
        int before = count_fds();

        assert_int_equal(mnt_up(&m, NULL), 0);
        make_tree(m.back);

        int peak1 = walk(&m, true);
        int peak2 = walk(&m, true); /* dropped names come back by lookup */
        printf("# fds before mount %d, peak %d then %d (limit %d)\n", before, peak1, peak2, LIMIT);
        assert_true(peak1 < LIMIT * 70 / 100 + SLACK);
        assert_true(peak2 < LIMIT * 70 / 100 + SLACK);

        /* d00 was used first: its entry has been dropped, so a symlink swapped in is seen as one */
        char p[1024], q[1024];
        struct stat st;
        snprintf(p, sizeof(p), "%s/d00", m.back);
        snprintf(q, sizeof(q), "%s/d00.old", m.back);
        assert_int_equal(rename(p, q), 0);
        assert_int_equal(symlink("/etc", p), 0);
        snprintf(p, sizeof(p), "%s/d00", m.mp);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISLNK(st.st_mode));

        mnt_down(&m);
        assert_int_equal(count_fds(), before); /* every inode fd closed */
}

/* A file the kernel only stats costs fs/ no fd (fs/inode.c): 3,000 stats, twice, stay far under the budget's
 * marks, so nothing is dropped and the second pass finds every name cached. */
static void test_stat_costs_no_fd(void **state)
{
        (void)state;
        struct mnt m;
        int before = count_fds();

        assert_int_equal(mnt_up(&m, NULL), 0);
        make_tree(m.back);
        int peak1 = walk(&m, false);
        int peak2 = walk(&m, false);
        printf("# stat only: fds before mount %d, peak %d then %d (limit %d)\n", before, peak1, peak2, LIMIT);
        assert_true(peak1 < before + NDIRS + SLACK);
        assert_true(peak2 < before + NDIRS + SLACK);
        mnt_down(&m);
        assert_int_equal(count_fds(), before);
}

/* The fds are the process's: two mounts served by one process share the budget (the sandbox serves every
 * allowed root from one process). Each budget alone would allow 70% of the limit. */
static void test_two_mounts_share(void **state)
{
        (void)state;
        struct mnt m[2];
        char p[1024];
        struct stat st;
        int peak = 0;

        for (int k = 0; k < 2; k++) {
                assert_int_equal(mnt_up(&m[k], NULL), 0);
                for (int f = 0; f < 1500; f++) {
                        snprintf(p, sizeof(p), "%s/f%05d", m[k].back, f);
                        assert_int_equal(mknod(p, S_IFREG | 0644, 0), 0);
                }
        }
        for (int f = 0; f < 1500; f++)
                for (int k = 0; k < 2; k++) {
                        snprintf(p, sizeof(p), "%s/f%05d", m[k].mp, f);
                        if (stat(p, &st) != 0)
                                fail_msg("stat %s: %s", p, strerror(errno));
                        int fd = open(p, O_RDONLY | O_CLOEXEC); /* an fd in fs/ (a stat costs none) */
                        if (fd < 0)
                                fail_msg("open %s: %s", p, strerror(errno));
                        close(fd);
                        if (f % 100 == 0) {
                                int c = count_fds();
                                peak = c > peak ? c : peak;
                        }
                }
        printf("# two mounts: peak %d fds (limit %d)\n", peak, LIMIT);
        assert_true(peak < LIMIT * 70 / 100 + SLACK);
        mnt_down(&m[1]);
        mnt_down(&m[0]);
}

int main(void)
{
        struct rlimit rl = {LIMIT, LIMIT};

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                perror("setrlimit");
                return 1;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_more_files_than_fds),
            cmocka_unit_test(test_stat_costs_no_fd),
            cmocka_unit_test(test_two_mounts_share),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
