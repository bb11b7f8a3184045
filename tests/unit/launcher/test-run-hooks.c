/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-run-hooks.c - the hooks through which the audit supervisor and the network proxy plug into
 * `nono run` (launcher/run.h): a seccomp listener for the agent's execs reaches the parent and sees every
 * execve; a socket listening inside the network namespace reaches the parent, and the agent can connect
 * to it (and only to it) through loopback.
 */
#include <errno.h>
#include <pthread.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/cli.h"
#include "launcher/run.h"

struct notify_state {
        int fd;
        int execs;
        pthread_t thread;
};

static void *notify_loop(void *arg)
{
        struct notify_state *s = arg;
        struct seccomp_notif *req;
        struct seccomp_notif_resp *resp;

        if (seccomp_notify_alloc(&req, &resp) < 0)
                return NULL;
        for (;;) {
                memset(req, 0, sizeof(*req));
                if (seccomp_notify_receive(s->fd, req) < 0)
                        break; /* every process of the filter is gone */
                s->execs++;
                memset(resp, 0, sizeof(*resp));
                resp->id = req->id;
                resp->flags = 1; /* SECCOMP_USER_NOTIF_FLAG_CONTINUE: logging only */
                if (seccomp_notify_respond(s->fd, resp) < 0 && errno != ENOENT)
                        break;
        }
        seccomp_notify_free(req, resp);
        return NULL;
}

static int on_notify(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct notify_state *s = userdata;

        s->fd = fd;
        reply->status = pthread_create(&s->thread, NULL, notify_loop, s) ? -EAGAIN : 0;
        return 0;
}

static void test_seccomp_notify_fd_reaches_parent(void **state)
{
        char dir[] = "/tmp/nono-test-hooks.XXXXXX";
        struct notify_state s = {.fd = -1};
        char *cmd[] = {"/bin/sh", "-c", "/bin/true; /bin/true; exit 5", NULL};

        assert_non_null(mkdtemp(dir));
        struct nono_policy_flags f = {.workdir = dir};
        struct nono_run_hooks h = {.userdata = &s, .seccomp_notify = on_notify};
        int st = nono_run(&f, cmd, &(struct nono_run_options){.hooks = &h});
        assert_int_equal(st, 5);
        assert_true(s.fd >= 0);
        pthread_join(s.thread, NULL);
        close(s.fd);
        assert_int_equal(s.execs, 3); /* sh itself, and two /bin/true */
        rmdir(dir);
}

struct proxy_state {
        int fd;
        char got[64];
        pthread_t thread;
};

static void *proxy_loop(void *arg)
{
        struct proxy_state *s = arg;
        int c = accept(s->fd, NULL, NULL);

        if (c >= 0) {
                ssize_t n = read(c, s->got, sizeof(s->got) - 1);
                if (n > 0)
                        s->got[n] = '\0';
                close(c);
        }
        return NULL;
}

static int on_proxy(void *userdata, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        struct proxy_state *s = userdata;

        s->fd = fd;
        reply->status = pthread_create(&s->thread, NULL, proxy_loop, s) ? -EAGAIN : 0;
        return 0;
}

static void test_proxy_listener_reaches_parent(void **state)
{
        char dir[] = "/tmp/nono-test-hooks.XXXXXX";
        struct proxy_state s = {.fd = -1};
        /* bash's /dev/tcp: the proxy port works, any other port is refused (Landlock) */
        char *cmd[] = {
            "/bin/bash", "-c",
            "echo hello-proxy > /dev/tcp/127.0.0.1/3128 && ! echo x 2>/dev/null > /dev/tcp/127.0.0.1/3129",
            NULL};

        assert_non_null(mkdtemp(dir));
        char *domains[] = {"example.com", NULL};
        struct nono_policy_flags f = {.workdir = dir, .allow_domain = domains};
        struct nono_run_hooks h = {.userdata = &s, .proxy_listener = on_proxy};
        int st = nono_run(&f, cmd, &(struct nono_run_options){.hooks = &h});
        assert_int_equal(st, 0);
        assert_true(s.fd >= 0);
        pthread_join(s.thread, NULL);
        close(s.fd);
        assert_string_equal(s.got, "hello-proxy\n");
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_seccomp_notify_fd_reaches_parent),
            cmocka_unit_test(test_proxy_listener_reaches_parent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
