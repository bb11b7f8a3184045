/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-policy.c - what fs/ adds on top of the backing filesystem: deny rules (read and write), read-only
 * roots, glob semantics, fs/'s hidden stash names, a root that is a single file, and that a symlink swapped in
 * by a racing thread never lets an operation escape the root.
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

#include "fs/fs-internal.h"
#include "harness.h"

static const char *P(const char *d, const char *n)
{
        static __thread char buf[8][1024];
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

static void t_glob(void **s)
{
        assert_true(glob_match("*.pem", "a.pem"));
        assert_false(glob_match("*.pem", "d/a.pem"));
        assert_true(glob_match("**/*.pem", "d/e/a.pem"));
        assert_true(glob_match("**/*.pem", "a.pem"));
        assert_true(glob_match(".git/hooks/**", ".git/hooks/pre-commit"));
        assert_false(glob_match(".git/hooks/**", ".git/config"));
        assert_true(glob_match("a?c", "abc"));
        assert_false(glob_match("a?c", "a/c"));
        struct nono_fs_rule r[] = {{".env", NONO_DENY_READ}, {".git/hooks/**", NONO_DENY_WRITE},
                                   {"**/*.pem", NONO_DENY_READ | NONO_DENY_WRITE}, {"secrets", NONO_DENY_READ}};
        assert_int_equal(rules_match(r, 4, ".env"), NONO_DENY_READ);
        assert_int_equal(rules_match(r, 4, "sub/dir/.env"), NONO_DENY_READ);
        assert_int_equal(rules_match(r, 4, ".envrc"), 0);
        assert_int_equal(rules_match(r, 4, ".git/hooks/x"), NONO_DENY_WRITE);
        assert_int_equal(rules_match(r, 4, ".git/config"), 0);
        assert_int_equal(rules_match(r, 4, "k/key.pem"), NONO_DENY_READ | NONO_DENY_WRITE);
        assert_int_equal(rules_match(r, 4, "secrets/deep/file"), NONO_DENY_READ);
        /* renaming an ancestor of a possible match would launder it */
        assert_int_equal(rules_below(r, 4, ".git"), NONO_DENY_WRITE);
        assert_int_equal(rules_below(r, 4, ".git/hooks"), NONO_DENY_WRITE);
        assert_int_equal(rules_below(r, 4, "src"), 0);
}

static void t_deny(void **s)
{
        struct mnt m;
        struct nono_fs_rule r[] = {{".env", NONO_DENY_READ}, {".git/hooks/**", NONO_DENY_WRITE},
                                   {"**/*.pem", NONO_DENY_READ | NONO_DENY_WRITE}};
        struct nono_fs_config c = {.rules = r, .n_rules = 3};
        char buf[64];

        /* the backing tree exists before the mount, as a user's project does */
        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        mkdir(P(m.back, ".git"), 0755);
        mkdir(P(m.back, ".git/hooks"), 0755);
        mkdir(P(m.back, "k"), 0755);
        put(P(m.back, ".env"), "SECRET=1");
        put(P(m.back, ".git/hooks/pre-commit"), "#!/bin/sh\n");
        put(P(m.back, "k/key.pem"), "KEY");
        put(P(m.back, "ok"), "fine");
        assert_int_equal(mnt_serve(&m, &c), 0);

        /* deny read */
        assert_int_equal(open(P(m.mp, ".env"), O_RDONLY), -1);
        assert_int_equal(errno, EACCES);
        int fd = open(P(m.mp, ".env"), O_WRONLY | O_APPEND);
        assert_true(fd >= 0); /* write-only is not a read */
        close(fd);
        assert_int_equal(link(P(m.mp, ".env"), P(m.mp, "laundered")), -1);
        assert_int_equal(errno, EACCES);
        assert_int_equal(rename(P(m.mp, ".env"), P(m.mp, "renamed")), -1);
        assert_int_equal(errno, EACCES);
        /* deny write */
        assert_int_equal(open(P(m.mp, ".git/hooks/pre-commit"), O_WRONLY), -1);
        assert_int_equal(errno, EACCES);
        fd = open(P(m.mp, ".git/hooks/pre-commit"), O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, 3), 3);
        close(fd);
        assert_int_equal(open(P(m.mp, ".git/hooks/new"), O_CREAT | O_WRONLY, 0755), -1);
        assert_int_equal(errno, EACCES);
        assert_int_equal(unlink(P(m.mp, ".git/hooks/pre-commit")), -1);
        assert_int_equal(chmod(P(m.mp, ".git/hooks/pre-commit"), 0777), -1);
        assert_int_equal(errno, EACCES);
        assert_int_equal(rename(P(m.mp, ".git/hooks"), P(m.mp, ".git/h2")), -1);
        assert_int_equal(errno, EACCES);
        assert_int_equal(rename(P(m.mp, ".git"), P(m.mp, "g2")), -1);
        assert_int_equal(errno, EACCES);
        mkdir(P(m.mp, "evil"), 0755);
        put(P(m.mp, "evil/pre-commit"), "#!/bin/sh\nevil\n");
        assert_int_equal(rename(P(m.mp, "evil/pre-commit"), P(m.mp, ".git/hooks/pre-commit")), -1);
        assert_int_equal(errno, EACCES);
        /* both */
        assert_int_equal(open(P(m.mp, "k/key.pem"), O_RDONLY), -1);
        assert_int_equal(open(P(m.mp, "k/new.pem"), O_CREAT | O_WRONLY, 0600), -1);
        assert_int_equal(errno, EACCES);
        assert_int_equal(rename(P(m.mp, "k"), P(m.mp, "k2")), 0); /* unanchored rule follows the file */
        assert_int_equal(open(P(m.mp, "k2/key.pem"), O_RDONLY), -1);
        /* nothing else is affected */
        fd = open(P(m.mp, "ok"), O_RDWR);
        assert_true(fd >= 0);
        close(fd);
        struct nono_fs_stats st;
        nono_fs_get_stats(m.fs, &st);
        assert_true(st.violations >= 12);
        /* the real files are untouched */
        fd = open(P(m.back, ".git/hooks/pre-commit"), O_RDONLY);
        memset(buf, 0, sizeof(buf));
        assert_int_equal(read(fd, buf, sizeof(buf)), 10);
        close(fd);
        mnt_down(&m);
}

static void t_read_only(void **s)
{
        struct mnt m;
        struct nono_fs_config c = {.read_only = true};
        char buf[8];

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        put(P(m.back, "f"), "data");
        mkdir(P(m.back, "d"), 0755);
        assert_int_equal(mnt_serve(&m, &c), 0);
        int fd = open(P(m.mp, "f"), O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, 4), 4);
        close(fd);
        assert_int_equal(open(P(m.mp, "f"), O_WRONLY), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(open(P(m.mp, "f"), O_RDONLY | O_TRUNC), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(open(P(m.mp, "new"), O_CREAT | O_WRONLY, 0644), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(mkdir(P(m.mp, "d2"), 0755), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(unlink(P(m.mp, "f")), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(rmdir(P(m.mp, "d")), -1);
        assert_int_equal(rename(P(m.mp, "f"), P(m.mp, "g")), -1);
        assert_int_equal(chmod(P(m.mp, "f"), 0600), -1);
        assert_int_equal(errno, EROFS);
        assert_int_equal(truncate(P(m.mp, "f"), 0), -1);
        assert_int_equal(symlink("f", P(m.mp, "l")), -1);
        assert_int_equal(setxattr(P(m.mp, "f"), "user.x", "1", 1, 0), -1);
        assert_int_equal(errno, EROFS);
        struct nono_fs_stats st;
        nono_fs_get_stats(m.fs, &st);
        assert_true(st.violations >= 10);
        mnt_down(&m);
}

/* fs/'s reserved names are invisible and cannot be created. */
static void t_hidden_stash(void **s)
{
        struct mnt m;
        struct stat st;

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        mkdir(P(m.back, NONO_STASH_PREFIX "x.0"), 0700);
        put(P(m.back, NONO_STASH_PREFIX "x.0/1"), "stashed");
        assert_int_equal(mnt_serve(&m, NULL), 0);
        assert_int_equal(stat(P(m.mp, NONO_STASH_PREFIX "x.0"), &st), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(open(P(m.mp, NONO_STASH_PREFIX "x.0/1"), O_RDONLY), -1);
        assert_int_equal(mkdir(P(m.mp, NONO_STASH_PREFIX "y"), 0700), -1);
        assert_int_equal(errno, EACCES);
        put(P(m.mp, "plain"), "x");
        assert_int_equal(rename(P(m.mp, "plain"), P(m.mp, NONO_STASH_PREFIX "x.0")), -1);
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "ls -a %s | grep -c nono-stash", m.mp);
        FILE *f = popen(cmd, "r");
        char out[16] = "";
        assert_non_null(fgets(out, sizeof(out), f));
        pclose(f);
        assert_string_equal(out, "0\n");
        mnt_down(&m);
}

/* A root that is one file, served at a mountpoint that is a file. */
static void t_file_root(void **s)
{
        struct mnt m;
        char buf[32] = {0};

        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        char back[700], mp[700];
        snprintf(back, sizeof(back), "%s/single", m.back);
        snprintf(mp, sizeof(mp), "%s/single-mp", m.base);
        put(back, "one file");
        put(mp, "");
        struct nono_fs_config c = {.root_fd = open(back, O_PATH | O_CLOEXEC), .root_path = back};
        nono_fs *fs;
        assert_int_equal(nono_fs_new(&c, &fs), 0);
        close(c.root_fd);
        assert_int_equal(nono_fs_mount(fs, mp), 0);
        assert_int_equal(nono_fs_start(fs), 0);
        int fd = open(mp, O_RDWR | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "!", 1), 1);
        assert_int_equal(pread(fd, buf, sizeof(buf), 0), 9);
        assert_string_equal(buf, "one file!");
        close(fd);
        nono_fs_stop(fs);
        nono_fs_free(fs);
        mnt_down(&m);
}

/* A racing thread keeps swapping a directory and a symlink to outside the root; operations through the
 * mount must never touch the outside. */
struct race {
        const char *back, *outside;
        volatile int stop;
};

static void *swapper(void *arg)
{
        struct race *r = arg;
        char a[700], b[700], tmp[700];
        snprintf(a, sizeof(a), "%s/sw", r->back);
        snprintf(b, sizeof(b), "%s/sw-dir", r->back);
        snprintf(tmp, sizeof(tmp), "%s/sw-link", r->back);
        unlink(tmp);
        symlink(r->outside, tmp);
        while (!r->stop) {
                renameat2(AT_FDCWD, tmp, AT_FDCWD, a, RENAME_EXCHANGE); /* a becomes the symlink */
                renameat2(AT_FDCWD, tmp, AT_FDCWD, a, RENAME_EXCHANGE); /* a becomes the dir again */
        }
        return NULL;
}

static void t_symlink_race(void **s)
{
        struct mnt m;
        struct race r = {0};
        char outside[700], p[700];

        /* The kernel resolves a symlink met on the mount itself, in the caller's namespace (in a sandbox, the
         * agent's view). A relative "../outside" leaves the backing root but, seen from the mountpoint two
         * levels deeper, points at nothing: so only fs/ following it could reach the outside directory. */
        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        snprintf(m.mp, sizeof(m.mp), "%s/deep/mnt", m.base);
        mkdir(P(m.base, "deep"), 0755);
        mkdir(m.mp, 0755);
        assert_int_equal(mnt_serve(&m, NULL), 0);
        snprintf(outside, sizeof(outside), "%s/outside", m.base);
        mkdir(outside, 0755);
        put(P(outside, "victim"), "untouched");
        mkdir(P(m.back, "sw"), 0755);
        put(P(m.back, "sw/victim"), "inside");
        r.back = m.back;
        r.outside = "../outside";
        pthread_t th;
        pthread_create(&th, NULL, swapper, &r);
        int iters = getenv("NONO_TEST_SEEDS") ? atoi(getenv("NONO_TEST_SEEDS")) * 200 : 2000;
        for (int k = 0; k < iters; k++) {
                snprintf(p, sizeof(p), "%s/sw/victim", m.mp);
                int fd = open(p, O_WRONLY | O_TRUNC);
                if (fd >= 0) {
                        (void)!write(fd, "through", 7);
                        close(fd);
                }
                snprintf(p, sizeof(p), "%s/sw/created-%d", m.mp, k);
                fd = open(p, O_CREAT | O_WRONLY, 0644);
                if (fd >= 0)
                        close(fd);
                unlink(p);
                snprintf(p, sizeof(p), "%s/sw/victim", m.mp);
                chmod(p, 0600);
                setxattr(p, "user.x", "1", 1, 0);
                /* the kernel may follow the symlink itself (it is the agent's view); fs/ never does */
        }
        r.stop = 1;
        pthread_join(th, NULL);
        char buf[32] = {0};
        int fd = open(P(outside, "victim"), O_RDONLY);
        assert_int_equal(read(fd, buf, sizeof(buf)), 9);
        close(fd);
        assert_string_equal(buf, "untouched");
        struct stat st;
        assert_int_equal(stat(P(outside, "victim"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        /* nothing was created outside */
        char cmd[800];
        snprintf(cmd, sizeof(cmd), "ls %s | wc -l", outside);
        FILE *f = popen(cmd, "r");
        char out[16] = "";
        assert_non_null(fgets(out, sizeof(out), f));
        pclose(f);
        assert_string_equal(out, "1\n");
        mnt_down(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(t_glob),         cmocka_unit_test(t_deny),      cmocka_unit_test(t_read_only),
                cmocka_unit_test(t_hidden_stash), cmocka_unit_test(t_file_root), cmocka_unit_test(t_symlink_race),
        };
        return cmocka_run_group_tests_name("fs-policy", tests, NULL, NULL);
}
