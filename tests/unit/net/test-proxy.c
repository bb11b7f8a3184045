/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-proxy.c - the proxy library end to end in one process: a tiny origin server on 127.0.0.1, the proxy,
 * raw client sockets; and the `nono run` arrangement, where a child in its own user+network namespace makes
 * the listening socket and the parent serves it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/proxy.h"
#include "store/store.h"

/* ---- a one-response origin server ----------------------------------------------------------------- */

struct origin {
        int lfd;
        uint16_t port;
        pthread_t t;
        char last_req[4096];
};

static void *origin_main(void *arg)
{
        struct origin *o = arg;
        int fd;

        while ((fd = accept(o->lfd, NULL, NULL)) >= 0) {
                char buf[4096];
                size_t len = 0;
                ssize_t n;
                static const char resp[] =
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

                while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
                        len += (size_t)n;
                        buf[len] = 0;
                        if (strstr(buf, "\r\n\r\n"))
                                break;
                }
                buf[len] = 0;
                memcpy(o->last_req, buf, len + 1);
                (void)!write(fd, resp, sizeof(resp) - 1);
                close(fd);
        }
        return NULL;
}

static void origin_start(struct origin *o)
{
        memset(o, 0, sizeof(*o));
        o->lfd = nono_proxy_listen("127.0.0.1", 0, &o->port);
        assert_true(o->lfd >= 0);
        assert_int_equal(pthread_create(&o->t, NULL, origin_main, o), 0);
}

static void origin_stop(struct origin *o)
{
        shutdown(o->lfd, SHUT_RDWR);
        pthread_join(o->t, NULL);
        close(o->lfd);
}

/* ---- events --------------------------------------------------------------------------------------- */

struct events {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned n;
        char detail[16][1024];
        bool allowed[16];
        int result[16];
        struct nono_event ev[16]; /* as the launcher will store them (detail not kept) */
};

static void on_event(const struct nono_proxy_event *ev, void *userdata)
{
        struct events *e = userdata;

        pthread_mutex_lock(&e->lock);
        if (e->n < 16) {
                snprintf(e->detail[e->n], sizeof(e->detail[0]), "%s", ev->detail);
                e->allowed[e->n] = ev->allowed;
                e->result[e->n] = ev->result;
                nono_proxy_event_to_store(ev, &e->ev[e->n]);
                e->ev[e->n].detail = NULL;
        }
        e->n++;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
}

static void wait_events(struct events *e, unsigned n)
{
        pthread_mutex_lock(&e->lock);
        while (e->n < n)
                pthread_cond_wait(&e->cond, &e->lock);
        pthread_mutex_unlock(&e->lock);
}

/* ---- client --------------------------------------------------------------------------------------- */

static int dial(uint16_t port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

/* Sends req, reads until EOF. */
static void exchange(uint16_t port, const char *req, char *out, size_t cap)
{
        int fd = dial(port);
        size_t len = 0;
        ssize_t n;

        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        while (len < cap - 1 && (n = read(fd, out + len, cap - 1 - len)) > 0)
                len += (size_t)n;
        out[len] = 0;
        close(fd);
}

struct fixture {
        struct origin o;
        struct events e;
        nono_proxy *p;
        uint16_t port;
        char hosts[64];
};

static void fixture_start(struct fixture *f, const char *const *allow)
{
        char *err = NULL;
        int fd;
        FILE *h;

        memset(f, 0, sizeof(*f));
        pthread_mutex_init(&f->e.lock, NULL);
        pthread_cond_init(&f->e.cond, NULL);
        origin_start(&f->o);
        snprintf(f->hosts, sizeof(f->hosts), "/tmp/nono-test-proxy-hosts.XXXXXX");
        fd = mkstemp(f->hosts);
        h = fdopen(fd, "w");
        fputs("127.0.0.1 local.test a.wild.test\n169.254.169.254 meta.test\n", h);
        fclose(h);
        struct nono_proxy_config cfg = {
            .allow = allow, .hosts_file = f->hosts, .on_event = on_event, .userdata = &f->e};
        assert_int_equal(nono_proxy_new(&cfg, &f->p, &err), 0);
        fd = nono_proxy_listen("127.0.0.1", 0, &f->port);
        assert_true(fd >= 0);
        assert_int_equal(nono_proxy_add_listener(f->p, fd), 0);
        assert_int_equal(nono_proxy_start(f->p), 0);
}

static void fixture_stop(struct fixture *f)
{
        nono_proxy_free(f->p);
        origin_stop(&f->o);
        unlink(f->hosts);
}

static void test_forward_and_deny(void **state)
{
        const char *allow[] = {"local.test", "meta.test", "*.wild.test", NULL};
        struct fixture f;
        char req[512], out[4096];

        fixture_start(&f, allow);

        snprintf(req, sizeof(req), "GET http://LOCAL.test:%u/x HTTP/1.1\r\nHost: evil.test\r\n\r\n",
                 f.o.port);
        exchange(f.port, req, out, sizeof(out));
        assert_non_null(strstr(out, "200 OK"));
        assert_non_null(strstr(out, "hello"));
        snprintf(req, sizeof(req), "Host: local.test:%u\r\n", f.o.port);
        assert_non_null(strstr(f.o.last_req, req));
        assert_null(strstr(f.o.last_req, "evil.test"));
        wait_events(&f.e, 1);
        assert_true(f.e.allowed[0]);
        assert_int_equal(f.e.result[0], 0);
        assert_non_null(strstr(f.e.detail[0], "GET resolved=127.0.0.1 allow"));

        snprintf(req, sizeof(req), "GET http://evil.test:%u/ HTTP/1.1\r\n\r\n", f.o.port);
        exchange(f.port, req, out, sizeof(out));
        assert_non_null(strstr(out, "403 Forbidden"));
        assert_non_null(strstr(out, "X-Nono-Deny-Reason: evil.test is not in the allow list"));
        wait_events(&f.e, 2);
        assert_false(f.e.allowed[1]);
        assert_int_equal(f.e.result[1], EACCES);
        assert_int_equal(f.e.ev[1].flags, NONO_EVF_VIOLATION);
        assert_int_equal(f.e.ev[1].result, EACCES);
        assert_int_equal(f.e.ev[1].op, NONO_OP_PROXY);

        /* metadata behind a granted name */
        exchange(f.port, "CONNECT meta.test:80 HTTP/1.1\r\n\r\n", out, sizeof(out));
        assert_non_null(strstr(out, "403 Forbidden"));
        assert_non_null(strstr(out, "cloud metadata"));
        /* loopback behind a wildcard */
        snprintf(req, sizeof(req), "CONNECT a.wild.test:%u HTTP/1.1\r\n\r\n", f.o.port);
        exchange(f.port, req, out, sizeof(out));
        assert_non_null(strstr(out, "403 Forbidden"));
        assert_non_null(strstr(out, "loopback"));
        /* garbage */
        exchange(f.port, "HELLO\r\n\r\n", out, sizeof(out));
        assert_non_null(strstr(out, "400 Bad Request"));
        wait_events(&f.e, 5);
        fixture_stop(&f);
}

static void test_connect_tunnel(void **state)
{
        const char *allow[] = {"local.test", NULL};
        struct fixture f;
        char req[512], out[4096];
        int fd;
        size_t len = 0;
        ssize_t n;

        fixture_start(&f, allow);
        fd = dial(f.port);
        snprintf(req, sizeof(req), "CONNECT local.test:%u HTTP/1.1\r\n\r\nGET /t HTTP/1.1\r\nHost: x\r\n\r\n",
                 f.o.port);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        while (len < sizeof(out) - 1 && (n = read(fd, out + len, sizeof(out) - 1 - len)) > 0)
                len += (size_t)n;
        out[len] = 0;
        close(fd);
        if (strncmp(out, "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK", 54))
                fail_msg("unexpected answer: %s", out);
        /* bytes sent right after CONNECT went through the tunnel untouched */
        assert_non_null(strstr(f.o.last_req, "GET /t HTTP/1.1\r\nHost: x\r\n"));
        wait_events(&f.e, 1);
        assert_non_null(strstr(f.e.detail[0], "local.test:"));
        assert_non_null(strstr(f.e.detail[0], " CONNECT resolved=127.0.0.1 allow up=28 down=62"));
        fixture_stop(&f);
}

/* stop() ends a tunnel that is still open and reports it before returning. */
static void test_stop_ends_open_tunnel(void **state)
{
        const char *allow[] = {"127.0.0.1", NULL};
        struct fixture f;
        char req[128], out[128];
        int fd;

        fixture_start(&f, allow);
        fd = dial(f.port);
        /* the origin waits for a full head that never comes: the tunnel stays open */
        snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", f.o.port);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        assert_true(read(fd, out, sizeof(out)) > 0);
        assert_int_equal(f.e.n, 0);
        nono_proxy_stop(f.p);
        assert_int_equal(f.e.n, 1);
        assert_true(f.e.allowed[0]);
        close(fd);
        fixture_stop(&f);
}

static void test_env(void **state)
{
        char **env = calloc(3, sizeof(char *));

        env[0] = strdup("PATH=/bin");
        env[1] = strdup("http_proxy=http://attacker:1");
        assert_int_equal(nono_proxy_env(4321, &env), 0);
        size_t n = 0;
        bool saw_no_proxy = false;
        for (; env[n]; n++) {
                if (!strncmp(env[n], "http_proxy=", 11))
                        assert_string_equal(env[n], "http_proxy=http://127.0.0.1:4321");
                if (!strcmp(env[n], "NO_PROXY=localhost,127.0.0.1,::1"))
                        saw_no_proxy = true;
        }
        assert_int_equal(n, 9); /* PATH + 6 proxy variables + 2 no_proxy */
        assert_true(saw_no_proxy);
        assert_string_equal(env[0], "PATH=/bin");
        for (size_t i = 0; env[i]; i++)
                free(env[i]);
        free(env);
}

/* ---- the nono run arrangement --------------------------------------------------------------------- */

static int send_fd(int sock, int fd)
{
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        char b = 'x';
        struct iovec iov = {.iov_base = &b, .iov_len = 1};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
        char cbuf[CMSG_SPACE(sizeof(int))];
        char b;
        struct iovec iov = {.iov_base = &b, .iov_len = 1};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *c;
        int fd;

        if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1 || !(c = CMSG_FIRSTHDR(&m)) ||
            c->cmsg_type != SCM_RIGHTS)
                return -1;
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        return fd;
}

static int lo_up(void)
{
        struct ifreq ifr = {0};
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int r;

        snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
        r = ioctl(s, SIOCGIFFLAGS, &ifr);
        ifr.ifr_flags |= IFF_UP;
        if (r == 0)
                r = ioctl(s, SIOCSIFFLAGS, &ifr);
        close(s);
        return r;
}

/* The child: new user + network namespace, loopback up, listener made and handed over, then a request
 * through it. Exit status: 0 ok, 77 namespaces unavailable, else the failing step. */
static int netns_child(int sock, uint16_t origin_port)
{
        uint16_t port = NONO_PROXY_PORT; /* the namespace is new: the fixed port is free */
        int lfd, fd;
        char req[256], out[1024];
        size_t len = 0;
        ssize_t n;
        struct sockaddr_in sa = {.sin_family = AF_INET};

        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
                return 77;
        if (lo_up() < 0)
                return 2;
        lfd = nono_proxy_listener_create(&port);
        if (lfd < 0 || port != NONO_PROXY_PORT || send_fd(sock, lfd) < 0 ||
            write(sock, &port, sizeof(port)) != sizeof(port))
                return 3;
        close(lfd);
        /* the origin on the host's loopback is not reachable from here directly */
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons(origin_port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return 4;
        close(fd);
        /* ... but through the proxy it is */
        sa.sin_port = htons(port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return 5;
        snprintf(req, sizeof(req), "GET http://local.test:%u/ HTTP/1.1\r\n\r\n", origin_port);
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
                return 6;
        while (len < sizeof(out) - 1 && (n = read(fd, out + len, sizeof(out) - 1 - len)) > 0)
                len += (size_t)n;
        out[len] = 0;
        return strstr(out, "hello") ? 0 : 7;
}

static void test_listener_in_netns(void **state)
{
        const char *allow[] = {"local.test", NULL};
        struct origin o;
        struct events e = {.n = 0};
        nono_proxy *p = NULL;
        char *err = NULL, hosts[] = "/tmp/nono-test-proxy-hosts.XXXXXX";
        int sv[2], fd, st;
        uint16_t port;
        pid_t pid;
        FILE *h;

        pthread_mutex_init(&e.lock, NULL);
        pthread_cond_init(&e.cond, NULL);
        origin_start(&o);
        h = fdopen(mkstemp(hosts), "w");
        fputs("127.0.0.1 local.test\n", h);
        fclose(h);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                _exit(netns_child(sv[1], o.port));
        }
        close(sv[1]);
        fd = recv_fd(sv[0]);
        if (fd < 0) {
                waitpid(pid, &st, 0);
                origin_stop(&o);
                unlink(hosts);
                if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
                        skip(); /* no unprivileged user namespaces here */
                fail_msg("child failed before handing over the listener (status %d)", st);
        }
        assert_int_equal(read(sv[0], &port, sizeof(port)), sizeof(port));
        struct nono_proxy_config cfg = {
            .allow = allow, .hosts_file = hosts, .on_event = on_event, .userdata = &e};
        assert_int_equal(nono_proxy_new(&cfg, &p, &err), 0);
        assert_int_equal(port, NONO_PROXY_PORT);
        assert_int_equal(nono_proxy_take_listener(p, fd), 0);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        wait_events(&e, 1);
        assert_non_null(strstr(e.detail[0], "local.test:"));
        assert_true(e.allowed[0]);
        assert_int_equal(e.ev[0].type, NONO_EV_NET);
        assert_int_equal(e.ev[0].op, NONO_OP_PROXY);
        assert_int_equal(e.ev[0].oflags, AF_INET);
        assert_int_equal(e.ev[0].flags, 0);
        assert_int_equal(e.ev[0].bytes_read, 62);
        nono_proxy_free(p);
        close(sv[0]);
        origin_stop(&o);
        unlink(hosts);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_forward_and_deny),      cmocka_unit_test(test_connect_tunnel),
            cmocka_unit_test(test_stop_ends_open_tunnel), cmocka_unit_test(test_env),
            cmocka_unit_test(test_listener_in_netns),
        };
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
