/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-fdless.c - files the kernel only looked up hold no fd in fs/ (fs/inode.c): what needs one later
 * gets it through the file's binding, and only if the same object is still there.
 *
 * Each case first stats a file through the mount (so fs/ knows it without an fd), then does what needs the
 * object itself: open, chmod, xattrs, link, readlink, rename and unlink (its own and other names), a rename
 * racing an fstat of an O_PATH fd, and a name swapped behind the mount (never taken for the old object).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "harness.h"

static const char *P(const char *d, const char *n)
{
        static __thread char buf[8][512];
        static __thread int k;
        k = (k + 1) % 8;
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", d, n);
        return buf[k];
}

static void put(const char *path, const char *s)
{
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
        close(fd);
}

static ino_t ino_of(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                fail_msg("lstat %s: %s", path, strerror(errno));
        return st.st_ino;
}

/* Everything that needs the object after a stat-only lookup works on the right object. */
static void t_use_after_stat(void **s)
{
        struct mnt m;
        char buf[64];
        struct stat st;

        assert_int_equal(mnt_up(&m, NULL), 0);
        put(P(m.back, "a"), "hello");
        put(P(m.back, "x"), "xattr");
        assert_int_equal(symlink("target", P(m.back, "l")), 0);
        assert_int_equal(ino_of(P(m.mp, "a")), ino_of(P(m.back, "a")));
        assert_int_equal(ino_of(P(m.mp, "x")), ino_of(P(m.back, "x")));
        assert_int_equal(ino_of(P(m.mp, "l")), ino_of(P(m.back, "l")));

        int fd = open(P(m.mp, "a"), O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf)), 5);
        close(fd);
        assert_int_equal(chmod(P(m.mp, "a"), 0600), 0);
        assert_int_equal(lstat(P(m.back, "a"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(readlink(P(m.mp, "l"), buf, sizeof(buf)), 6);
        assert_memory_equal(buf, "target", 6);
        if (setxattr(P(m.mp, "x"), "user.k", "v", 1, 0) == 0) { /* the backing fs may lack user xattrs */
                assert_int_equal(getxattr(P(m.back, "x"), "user.k", buf, sizeof(buf)), 1);
                assert_int_equal(getxattr(P(m.mp, "x"), "user.k", buf, sizeof(buf)), 1);
        }
        assert_int_equal(link(P(m.mp, "a"), P(m.mp, "a2")), 0);
        assert_int_equal(ino_of(P(m.back, "a2")), ino_of(P(m.back, "a")));
        mnt_down(&m);
}

/* A file with two names, known by its first: the first name goes (through the mount) and the object stays
 * reachable by the second, also for requests that need its fd. Likewise for a rename over it and of it. */
static void t_names_change(void **s)
{
        struct mnt m;
        struct stat st;

        assert_int_equal(mnt_up(&m, NULL), 0);
        put(P(m.back, "one"), "1");
        assert_int_equal(link(P(m.back, "one"), P(m.back, "two")), 0);
        put(P(m.back, "r"), "r");
        ino_t i = ino_of(P(m.mp, "one"));
        assert_int_equal(ino_of(P(m.mp, "r")), ino_of(P(m.back, "r")));
        int o = open(P(m.mp, "two"), O_PATH); /* the same inode, no OPEN sent */
        assert_true(o >= 0);
        assert_int_equal(unlink(P(m.mp, "one")), 0);
        assert_int_equal(fstat(o, &st), 0);
        assert_int_equal(st.st_ino, i);
        assert_int_equal(st.st_nlink, 1);
        assert_int_equal(chmod(P(m.mp, "two"), 0640), 0);
        assert_int_equal(lstat(P(m.back, "two"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        close(o);

        assert_int_equal(rename(P(m.mp, "r"), P(m.mp, "r2")), 0);
        assert_int_equal(chmod(P(m.mp, "r2"), 0604), 0);
        assert_int_equal(lstat(P(m.back, "r2"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0604);
        assert_int_equal(rename(P(m.mp, "two"), P(m.mp, "r2")), 0); /* over a known file */
        assert_int_equal(ino_of(P(m.mp, "r2")), i);
        assert_int_equal(chmod(P(m.mp, "r2"), 0600), 0);
        assert_int_equal(lstat(P(m.back, "r2"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        mnt_down(&m);
}

/* A name swapped behind the mount after a stat-only lookup: fs/ never operates on the object now at the name
 * as if it were the one the kernel knows. A chmod through an fd pinning the old object fails with ESTALE
 * (natively it would reach the old object; fs/ can no longer) and changes nothing; a chmod by name gets
 * ESTALE first, on which the kernel looks the name up again and retries, so it reaches the object now at the
 * name, as it would natively, and the old object (still in the tree under another name) is untouched. */
static void t_swapped_behind(void **s)
{
        struct mnt m;
        struct stat st;

        assert_int_equal(mnt_up(&m, NULL), 0);
        put(P(m.back, "v"), "victim");
        assert_int_equal(ino_of(P(m.mp, "v")), ino_of(P(m.back, "v")));
        int o = open(P(m.mp, "v"), O_PATH); /* pins the kernel's inode: no retry can leave it */
        assert_true(o >= 0);
        assert_int_equal(rename(P(m.back, "v"), P(m.back, "v.old")), 0);
        put(P(m.back, "v"), "other");
        char pp[64];
        snprintf(pp, sizeof(pp), "/proc/self/fd/%d", o);
        assert_int_equal(chmod(pp, 0600), -1); /* the old object cannot be reached by the name any more */
        assert_int_equal(errno, ESTALE);
        assert_int_equal(lstat(P(m.back, "v"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        close(o);
        assert_int_equal(chmod(P(m.mp, "v"), 0600), 0);
        assert_int_equal(lstat(P(m.back, "v"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(ino_of(P(m.mp, "v")), st.st_ino);
        assert_int_equal(lstat(P(m.back, "v.old"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        mnt_down(&m);
}

#define NRACE 200

struct racer {
        struct mnt *m;
        int fds[NRACE];
        volatile int stop;
        int errors;
};

static void *fstat_loop(void *arg)
{
        struct racer *r = arg;
        struct stat st;

        while (!r->stop)
                for (int k = 0; k < NRACE; k++)
                        if (fstat(r->fds[k], &st) < 0)
                                r->errors++;
        return NULL;
}

/* Renames through the mount race fstat()s of O_PATH fds (GETATTR of files fs/ knows without an fd): the
 * rename gives the file its fd before its binding changes, so no fstat ever fails. */
static void t_rename_races_getattr(void **s)
{
        struct mnt m;
        struct racer r = {.m = &m};
        char a[32], b[32];
        pthread_t t;

        assert_int_equal(mnt_up(&m, NULL), 0);
        for (int k = 0; k < NRACE; k++) {
                snprintf(a, sizeof(a), "f%03d", k);
                put(P(m.back, a), "x");
                r.fds[k] = open(P(m.mp, a), O_PATH);
                assert_true(r.fds[k] >= 0);
        }
        assert_int_equal(pthread_create(&t, NULL, fstat_loop, &r), 0);
        for (int k = 0; k < NRACE; k++) {
                snprintf(a, sizeof(a), "f%03d", k);
                snprintf(b, sizeof(b), "g%03d", k);
                assert_int_equal(rename(P(m.mp, a), P(m.mp, b)), 0);
        }
        r.stop = 1;
        pthread_join(t, NULL);
        assert_int_equal(r.errors, 0);
        for (int k = 0; k < NRACE; k++)
                close(r.fds[k]);
        mnt_down(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_use_after_stat),
            cmocka_unit_test(t_names_change),
            cmocka_unit_test(t_swapped_behind),
            cmocka_unit_test(t_rename_races_getattr),
        };
        return cmocka_run_group_tests_name("fs-fdless", tests, NULL, NULL);
}
