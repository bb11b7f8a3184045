/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sandbox-mech.c - the sandbox mechanisms one by one, each in a forked child so that the test process
 * stays unconfined: the seccomp filter, Landlock rules, and the fd channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/landlock.h"
#include "launcher/sandbox-chan.h"
#include "launcher/seccomp.h"

/* Runs fn in a child; returns its exit status (fn's return value). */
static int in_child(int (*fn)(void *), void *arg)
{
        int st;
        pid_t p = fork();

        if (p == 0)
                _exit(fn(arg));
        assert_true(p > 0);
        assert_int_equal(waitpid(p, &st, 0), p);
        assert_true(WIFEXITED(st));
        return WEXITSTATUS(st);
}

#define CHECK(cond, code)                                                                                    \
        do {                                                                                                 \
                if (!(cond)) {                                                                               \
                        fprintf(stderr, "check failed: %s (errno %d)\n", #cond, errno);                      \
                        return code;                                                                         \
                }                                                                                            \
        } while (0)

static int seccomp_child(void *arg)
{
        int nfd;

        CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, 10);
        CHECK(nono_seccomp_install(NULL, &nfd) == 0, 11);
        CHECK(nfd == -1, 12);
        CHECK(syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */) < 0 && errno == EPERM, 13);
        CHECK(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS, 14);
        CHECK(socket(AF_NETLINK, SOCK_RAW, 0) < 0 && errno == EAFNOSUPPORT, 15);
        CHECK(syscall(SYS_ioctl, 0, 0x5412ul /* TIOCSTI */, "x") < 0 && errno == EPERM, 16);
        CHECK(syscall(SYS_ioctl, 0, 0xffffffff00005412ul, "x") < 0 && errno == EPERM, 17);
        CHECK(syscall(SYS_io_uring_setup, 1, NULL) < 0 && errno == EPERM, 18);
        /* ordinary life goes on */
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(s >= 0, 19);
        close(s);
        s = socket(AF_INET6, SOCK_DGRAM, 0);
        CHECK(s >= 0, 20);
        close(s);
        pid_t p = fork();
        if (p == 0)
                _exit(0);
        CHECK(p > 0 && waitpid(p, NULL, 0) == p, 21);
        return 0;
}

static void test_seccomp_filter(void **state)
{
        assert_int_equal(in_child(seccomp_child, NULL), 0);
}

/* The programs linked in at build time are the ones libseccomp compiles from the rules now: the same
 * instructions, for the filter with and without the audit listener (and the filter tests above and the
 * e2e escape battery run the linked ones). */
static void test_seccomp_prebuilt_matches_live(void **state)
{
        for (int a = 0; a < 2; a++) {
                struct nono_seccomp_opts o = {.notify_exec = a};
                struct nono_seccomp_prog live, built;
                const struct nono_seccomp_prebuilt *pb = &nono_seccomp_prebuilt[a];

                assert_true(pb->deny_len > 0); /* linked, not the empty weak table */
                assert_int_equal(nono_seccomp_compile_live(&o, &live), 0);
                assert_int_equal(nono_seccomp_compile(&o, &built), 0);
                assert_int_equal(built.deny.len, live.deny.len);
                assert_memory_equal(built.deny.filter, live.deny.filter,
                                    live.deny.len * sizeof(struct sock_filter));
                assert_int_equal(built.notify.len, live.notify.len);
                if (a) {
                        assert_true(live.notify.len > 0);
                        assert_memory_equal(built.notify.filter, live.notify.filter,
                                            live.notify.len * sizeof(struct sock_filter));
                }
                nono_seccomp_prog_free(&live);
                nono_seccomp_prog_free(&built);
        }
}

static int landlock_child(void *arg)
{
        const char *dir = arg;
        char ro[512], rw[512], out[512];

        snprintf(ro, sizeof(ro), "%s/ro", dir);
        snprintf(rw, sizeof(rw), "%s/rw", dir);
        snprintf(out, sizeof(out), "%s/out", dir);
        struct nono_ll_rule rules[] = {{ro, NONO_LL_READ}, {rw, NONO_LL_READ | NONO_LL_WRITE}};
        struct nono_ll_config c = {.rules = rules, .n_rules = 2};
        int abi = nono_landlock_apply(&c);
        if (abi == 0)
                return 77; /* no Landlock */
        CHECK(abi > 0, 10);
        char p[600];
        snprintf(p, sizeof(p), "%s/f", ro);
        CHECK(open(p, O_RDONLY) >= 0, 11);
        CHECK(open(p, O_WRONLY) < 0 && errno == EACCES, 12);
        snprintf(p, sizeof(p), "%s/new", rw);
        CHECK(open(p, O_WRONLY | O_CREAT, 0644) >= 0, 13);
        snprintf(p, sizeof(p), "%s/f", out);
        CHECK(open(p, O_RDONLY) < 0 && errno == EACCES, 14);
        if (abi >= 4) {
                int s = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
                CHECK(s >= 0, 15);
                CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EACCES, 16);
        }
        return 0;
}

static void test_landlock_rules(void **state)
{
        char dir[] = "/tmp/nono-test-ll.XXXXXX", p[600];

        assert_non_null(mkdtemp(dir));
        for (const char *const *s = (const char *const[]){"ro", "rw", "out", NULL}; *s; s++) {
                snprintf(p, sizeof(p), "%s/%s", dir, *s);
                assert_int_equal(mkdir(p, 0755), 0);
                snprintf(p, sizeof(p), "%s/%s/f", dir, *s);
                int fd = open(p, O_WRONLY | O_CREAT, 0644);
                assert_true(fd >= 0);
                close(fd);
        }
        int r = in_child(landlock_child, dir);
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
        if (r == 77)
                skip();
        assert_int_equal(r, 0);
}

static void test_chan_passes_fds(void **state)
{
        int sp[2], fd, got;
        struct nono_chan_msg m = {.kind = NONO_CHAN_FUSE_FD, .index = 3, .arg = 7}, r;
        struct stat a, b;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        snprintf(m.data, sizeof(m.data), "hello");
        m.len = 6;
        assert_int_equal(nono_chan_send(sp[1], &m, fd), 0);
        assert_int_equal(nono_chan_recv(sp[0], &r, &got), 1);
        assert_int_equal(r.kind, NONO_CHAN_FUSE_FD);
        assert_int_equal(r.index, 3);
        assert_int_equal(r.arg, 7);
        assert_string_equal(r.data, "hello");
        assert_true(got >= 0 && got != fd);
        assert_int_equal(fstat(fd, &a), 0);
        assert_int_equal(fstat(got, &b), 0);
        assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
        assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
        close(got);
        close(fd);
        /* no fd attached; then EOF */
        m.len = 0;
        assert_int_equal(nono_chan_send(sp[1], &m, -1), 0);
        assert_int_equal(nono_chan_recv(sp[0], &r, &got), 1);
        assert_int_equal(got, -1);
        close(sp[1]);
        assert_int_equal(nono_chan_recv(sp[0], &r, &got), 0);
        close(sp[0]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_seccomp_filter),
            cmocka_unit_test(test_seccomp_prebuilt_matches_live),
            cmocka_unit_test(test_landlock_rules),
            cmocka_unit_test(test_chan_passes_fds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
