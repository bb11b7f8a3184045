/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-audit-supervisor - the exec and network audit against the real kernel: a child installs the notify
 * filter and execs /bin/true, a shell loop, connects to a local TCP port, sends UDP; the events must be in
 * the store with path, argv, pid and ppid, destination and family. Also: unix sockets are not recorded, the
 * deny filter's ERRNO still wins over NOTIFY, and a second listener on the same tree is refused with -EBUSY.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/supervisor.h"
#include "testlib.h"

struct fx {
        char dir[64];
        nono_store *st;
        struct nono_session s;
};

struct ev {
        struct nono_event e;
        char *path, *path2, *detail;
};

struct evlist {
        struct ev v[256];
        size_t n;
};

static int collect_cb(const struct nono_event *e, void *u)
{
        struct evlist *l = u;

        if (l->n == 256)
                return 1;
        struct ev *x = &l->v[l->n++];
        x->e = *e;
        x->path = e->path ? strdup(e->path) : NULL;
        x->path2 = e->path2 ? strdup(e->path2) : NULL;
        x->detail = e->detail ? strdup(e->detail) : NULL;
        return 0;
}

static void collect(struct fx *f, struct evlist *l)
{
        l->n = 0;
        assert_int_equal(nono_events_iterate(f->st, f->s.id, 1, collect_cb, l), 0);
}

static void evlist_free(struct evlist *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].path);
                free(l->v[i].path2);
                free(l->v[i].detail);
        }
        l->n = 0;
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        char buf[128];
        char *argv[] = {"supervised", NULL};

        snprintf(f->dir, sizeof(f->dir), "%s/nono-sup-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        snprintf(buf, sizeof(buf), "%s/home", f->dir);
        setenv("NONO_HOME", buf, 1);
        assert_int_equal(nono_store_open(NULL, 0, &f->st), 0);
        assert_int_equal(tl_session_create(f->st, argv, &f->s), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char cmd[128];

        nono_session_clear(&f->s);
        nono_store_close(f->st);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* Runs argv (or fn) under a supervisor writing to the store; returns the exit status. */
static int supervise(struct fx *f, bool deny_connect, char *const *argv, int (*fn)(void *), void *arg)
{
        nono_supervisor *sup;
        int fd, status;
        pid_t pid = tl_spawn(NONO_SUP_DEFAULT, deny_connect, argv, fn, arg, &fd);

        assert_true(pid > 0);
        assert_int_equal(nono_supervisor_start(fd, f->st, f->s.id, &sup), 0);
        status = tl_wait(pid);
        assert_int_equal(nono_supervisor_stop(sup), 0);
        return status;
}

static bool argv_is(const char *json, const char *const *want)
{
        cJSON *a = cJSON_Parse(json), *it;
        size_t i = 0;
        bool ok = cJSON_IsArray(a);

        cJSON_ArrayForEach(it, a)
        {
                if (!want[i] || !cJSON_IsString(it) || strcmp(it->valuestring, want[i]))
                        ok = false;
                if (want[i])
                        i++;
        }
        ok = ok && !want[i];
        cJSON_Delete(a);
        return ok;
}

static void test_exec_true(void **state)
{
        struct fx *f = *state;
        char *argv[] = {"/bin/true", "--one", "two words", NULL};
        struct evlist l;

        assert_int_equal(supervise(f, false, argv, NULL, NULL), 0);
        collect(f, &l);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.v[0].e.type, NONO_EV_EXEC);
        assert_int_equal(l.v[0].e.op, NONO_OP_EXEC);
        assert_string_equal(l.v[0].path, "/bin/true");
        assert_true(argv_is(l.v[0].detail, (const char *const[]){"/bin/true", "--one", "two words", NULL}));
        assert_int_equal(l.v[0].e.ppid, getpid());
        assert_int_equal(l.v[0].e.uid, getuid());
        evlist_free(&l);
}

static void test_shell_loop(void **state)
{
        struct fx *f = *state;
        char *argv[] = {"/bin/sh", "-c", "for i in 1 2 3; do /bin/true loop$i; done; /bin/sh -c 'exit 7'",
                        NULL};
        struct evlist l;
        uint32_t shpid = 0;
        int loops = 0;

        assert_int_equal(supervise(f, false, argv, NULL, NULL), 7);
        collect(f, &l);
        assert_int_equal(l.n, 5); /* sh, true x3, sh */
        for (size_t i = 0; i < l.n; i++) {
                assert_int_equal(l.v[i].e.type, NONO_EV_EXEC);
                if (i == 0) {
                        assert_string_equal(l.v[i].path, "/bin/sh");
                        shpid = l.v[i].e.pid;
                        continue;
                }
                assert_int_equal(l.v[i].e.ppid, shpid); /* children of the outer shell */
                if (!strcmp(l.v[i].path, "/bin/true")) {
                        char arg[16];
                        snprintf(arg, sizeof(arg), "loop%d", ++loops);
                        assert_true(argv_is(l.v[i].detail, (const char *const[]){"/bin/true", arg, NULL}));
                }
        }
        assert_int_equal(loops, 3);
        assert_string_equal(l.v[4].path, "/bin/sh");
        evlist_free(&l);
}

static void test_path_search_collapses(void **state)
{
        struct fx *f = *state;
        /* env(1) searches PATH with execvp: one execve per PATH entry until one works */
        char *argv[] = {"/usr/bin/env", "PATH=/nonexistent1:/nonexistent2:/usr/bin:/bin", "true", "x", NULL};
        struct evlist l;

        assert_int_equal(supervise(f, false, argv, NULL, NULL), 0);
        collect(f, &l);
        assert_int_equal(l.n, 2); /* env, then one event for the three attempts at true */
        assert_string_equal(l.v[0].path, "/usr/bin/env");
        assert_null(l.v[0].path2);
        assert_string_equal(l.v[1].path, "/usr/bin/true");
        assert_true(argv_is(l.v[1].detail, (const char *const[]){"true", "x", NULL}));
        assert_non_null(l.v[1].path2);
        assert_string_equal(l.v[1].path2, "/nonexistent1/true:/nonexistent2/true");
        assert_int_equal(l.v[1].e.pid, l.v[0].e.pid); /* execvp replaces env in the same process */
        evlist_free(&l);
}

struct netarg {
        uint16_t tcp_port, udp_port;
        int expect_errno; /* of connect */
};

static int net_child(void *p)
{
        struct netarg *a = p;
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/nonexistent/socket"};
        int s = socket(AF_INET, SOCK_STREAM, 0), u, x, r;

        in.sin_port = htons(a->tcp_port);
        r = connect(s, (struct sockaddr *)&in, sizeof(in));
        if (a->expect_errno ? !(r < 0 && errno == a->expect_errno) : r < 0)
                return 10;
        u = socket(AF_INET, SOCK_DGRAM, 0);
        in.sin_port = htons(a->udp_port);
        for (int i = 0; i < 3; i++) /* one event: repeats to one destination collapse */
                if (sendto(u, "x", 1, 0, (struct sockaddr *)&in, sizeof(in)) != 1)
                        return 11;
        x = socket(AF_UNIX, SOCK_STREAM, 0);
        (void)!connect(x, (struct sockaddr *)&un, sizeof(un)); /* fails; never recorded */
        return 0;
}

static uint16_t bound_port(int type, int *fd)
{
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(in);

        *fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        assert_true(*fd >= 0);
        assert_int_equal(bind(*fd, (struct sockaddr *)&in, sizeof(in)), 0);
        if (type == SOCK_STREAM)
                assert_int_equal(listen(*fd, 4), 0);
        assert_int_equal(getsockname(*fd, (struct sockaddr *)&in, &len), 0);
        return ntohs(in.sin_port);
}

static void test_network(void **state)
{
        struct fx *f = *state;
        struct netarg a = {0};
        struct evlist l;
        char want[32];
        int tfd, ufd;

        a.tcp_port = bound_port(SOCK_STREAM, &tfd);
        a.udp_port = bound_port(SOCK_DGRAM, &ufd);
        assert_int_equal(supervise(f, false, NULL, net_child, &a), 0);
        collect(f, &l);
        assert_int_equal(l.n, 2);
        assert_int_equal(l.v[0].e.type, NONO_EV_NET);
        assert_int_equal(l.v[0].e.op, NONO_OP_CONNECT);
        assert_int_equal(l.v[0].e.oflags, AF_INET);
        snprintf(want, sizeof(want), "127.0.0.1:%u", a.tcp_port);
        assert_string_equal(l.v[0].detail, want);
        assert_int_equal(l.v[1].e.op, NONO_OP_SENDTO);
        snprintf(want, sizeof(want), "127.0.0.1:%u", a.udp_port);
        assert_string_equal(l.v[1].detail, want);
        evlist_free(&l);
        close(tfd);
        close(ufd);
}

static void test_deny_filter_wins(void **state)
{
        struct fx *f = *state;
        struct netarg a = {.expect_errno = EACCES};
        struct evlist l;
        int tfd, ufd;

        a.tcp_port = bound_port(SOCK_STREAM, &tfd);
        a.udp_port = bound_port(SOCK_DGRAM, &ufd);
        /* the deny filter answers connect() with EACCES: the child sees EACCES, we see nothing of it */
        assert_int_equal(supervise(f, true, NULL, net_child, &a), 0);
        collect(f, &l);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.v[0].e.op, NONO_OP_SENDTO);
        evlist_free(&l);
        close(tfd);
        close(ufd);
}

static int sendmsg_child(void *p)
{
        struct netarg *a = p;
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct iovec io = {"x", 1};
        struct msghdr m = {.msg_name = &in, .msg_namelen = sizeof(in), .msg_iov = &io, .msg_iovlen = 1};
        int u = socket(AF_INET, SOCK_DGRAM, 0);

        in.sin_port = htons(a->udp_port);
        return sendmsg(u, &m, 0) == 1 ? 0 : 60;
}

static void test_sendmsg_option(void **state)
{
        struct fx *f = *state;
        struct netarg a = {0};
        nono_supervisor *sup;
        struct evlist l;
        char want[32];
        int ufd, fd;
        pid_t pid;

        a.udp_port = bound_port(SOCK_DGRAM, &ufd);
        /* the handoff itself is a sendmsg on the exempt socket: it does not wait for a supervisor */
        pid = tl_spawn(NONO_SUP_DEFAULT | NONO_SUP_SENDMSG, false, NULL, sendmsg_child, &a, &fd);
        assert_true(pid > 0);
        assert_int_equal(nono_supervisor_start(fd, f->st, f->s.id, &sup), 0);
        assert_int_equal(tl_wait(pid), 0);
        assert_int_equal(nono_supervisor_stop(sup), 0);
        collect(f, &l);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.v[0].e.op, NONO_OP_SENDTO);
        snprintf(want, sizeof(want), "127.0.0.1:%u", a.udp_port);
        assert_string_equal(l.v[0].detail, want);
        evlist_free(&l);
        close(ufd);
}

static int nested_child(void *p)
{
        (void)p;
        int r = nono_supervisor_install_filter(NONO_SUP_DEFAULT, -1);
        return r == -EBUSY ? 0 : 30;
}

static void test_second_listener_refused(void **state)
{
        struct fx *f = *state;

        assert_int_equal(supervise(f, false, NULL, nested_child, NULL), 0);
}

static int deny_child(void *p)
{
        const int deny[] = {__NR_getpriority};

        (void)p;
        /* the outer supervisor already listens on this tree: a nested listener is refused */
        return nono_supervisor_install_filter_deny(NONO_SUP_EXEC, -1, deny, 1) == -EBUSY ? 0 : 41;
}

static int getprio_child(void *p)
{
        (void)p;
        errno = 0;
        long r = syscall(SYS_getpriority, PRIO_PROCESS, 0);
        return r == -1 && errno == EPERM ? 0 : 50;
}

static void test_deny_and_record(void **state)
{
        struct fx *f = *state;
        nono_supervisor *sup;
        struct evlist l;
        int fd;
        const int deny[] = {__NR_getpriority};
        pid_t pid = tl_spawn_deny(deny, 1, getprio_child, NULL, &fd);

        assert_true(pid > 0);
        assert_int_equal(nono_supervisor_start(fd, f->st, f->s.id, &sup), 0);
        assert_int_equal(tl_wait(pid), 0); /* the child saw EPERM */
        assert_int_equal(nono_supervisor_stop(sup), 0);
        collect(f, &l);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.v[0].e.op, NONO_OP_SYSCALL);
        assert_true(l.v[0].e.flags & NONO_EVF_VIOLATION);
        assert_int_equal(l.v[0].e.result, EPERM);
        assert_string_equal(l.v[0].path, "getpriority");
        evlist_free(&l);
        assert_int_equal(supervise(f, false, NULL, deny_child, NULL), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_exec_true, setup, teardown),
            cmocka_unit_test_setup_teardown(test_shell_loop, setup, teardown),
            cmocka_unit_test_setup_teardown(test_path_search_collapses, setup, teardown),
            cmocka_unit_test_setup_teardown(test_network, setup, teardown),
            cmocka_unit_test_setup_teardown(test_deny_filter_wins, setup, teardown),
            cmocka_unit_test_setup_teardown(test_second_listener_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_deny_and_record, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sendmsg_option, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
