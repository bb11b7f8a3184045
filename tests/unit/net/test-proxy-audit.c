/* SPDX-License-Identifier: Apache-2.0 */
/* test-proxy-audit.c - proxy attempts land in a session's audit trail in a real store: allowed and denied,
 * with the violation flag, the detail and the byte counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/proxy-audit.h"

static int dial(uint16_t port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

struct seen {
        unsigned n;
        struct nono_event ev[4];
        char detail[4][512];
};

static int collect(const struct nono_event *ev, void *userdata)
{
        struct seen *s = userdata;

        if (s->n < 4) {
                s->ev[s->n] = *ev;
                snprintf(s->detail[s->n], sizeof(s->detail[0]), "%s", ev->detail ? ev->detail : "");
        }
        s->n++;
        return 0;
}

static void test_events_in_store(void **state)
{
        char home[] = "/tmp/nono-test-proxy-audit.XXXXXX", *err = NULL, buf[512], cmd[128];
        char *argv[] = {"agent", NULL}, *roots[] = {NULL};
        struct nono_session sess = {.argv = argv, .cwd = "/", .policy_json = "{}", .roots = roots};
        struct nono_proxy_audit a = {0};
        nono_store *st = NULL;
        nono_proxy *p = NULL;
        uint16_t pport, oport;
        int ofd, fd, sfd;
        struct seen seen = {0};
        const char *allow[] = {"127.0.0.1", NULL};
        ssize_t n;
        size_t len;

        assert_non_null(mkdtemp(home));
        assert_int_equal(nono_store_open(home, 0, &st), 0);
        assert_int_equal(nono_session_create(st, &sess), 0);
        a.store = st;
        memcpy(a.session, sess.id, sizeof(a.session));

        struct nono_proxy_config cfg = {.allow = allow, .on_event = nono_proxy_audit_event, .userdata = &a};
        assert_int_equal(nono_proxy_new(&cfg, &p, &err), 0);
        fd = nono_proxy_listen("127.0.0.1", 0, &pport);
        assert_true(fd >= 0);
        assert_int_equal(nono_proxy_take_listener(p, fd), 0);
        ofd = nono_proxy_listen("127.0.0.1", 0, &oport);
        assert_true(ofd >= 0);

        /* allowed: a tunnel that carries 2 bytes each way */
        fd = dial(pport);
        snprintf(cmd, sizeof(cmd), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\nup", oport);
        assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
        sfd = accept(ofd, NULL, NULL);
        assert_true(sfd >= 0);
        len = 0; /* read what came through before closing: closing with unread data would reset */
        while (len < 2 && (n = read(sfd, buf + len, 2 - len)) > 0)
                len += (size_t)n;
        assert_int_equal(len, 2);
        assert_memory_equal(buf, "up", 2);
        assert_int_equal(write(sfd, "dn", 2), 2);
        close(sfd);
        len = 0;
        while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)n;
        buf[len] = 0;
        assert_non_null(strstr(buf, "200 Connection established\r\n\r\ndn"));
        close(fd);

        /* denied */
        fd = dial(pport);
        snprintf(cmd, sizeof(cmd), "GET http://evil.test/ HTTP/1.1\r\n\r\n");
        assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        close(fd);

        nono_proxy_free(p); /* every attempt reported */
        close(ofd);
        assert_int_equal(a.error, 0);
        assert_int_equal(a.appended, 2);
        assert_int_equal(nono_store_sync(st), 0);
        assert_int_equal(nono_events_iterate(st, sess.id, 1, collect, &seen), 0);
        assert_int_equal(seen.n, 2);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(seen.ev[i].type, NONO_EV_NET);
                assert_int_equal(seen.ev[i].op, NONO_OP_PROXY);
        }
        /* order: the denial is reported at once, the tunnel when it ended; find each */
        int t = strstr(seen.detail[0], "CONNECT") ? 0 : 1, d = 1 - t;
        snprintf(cmd, sizeof(cmd), "127.0.0.1:%u CONNECT resolved=127.0.0.1 allow up=2 down=2", oport);
        assert_string_equal(seen.detail[t], cmd);
        assert_int_equal(seen.ev[t].flags, 0);
        assert_int_equal(seen.ev[t].result, 0);
        assert_int_equal(seen.ev[t].bytes_read, 2);
        assert_int_equal(seen.ev[t].bytes_written, 2);
        assert_int_equal(seen.ev[t].oflags, AF_INET);
        assert_non_null(
            strstr(seen.detail[d], "evil.test:80 GET resolved=- deny up=0 down=0 reason=evil.test is not"));
        assert_int_equal(seen.ev[d].flags, NONO_EVF_VIOLATION);
        assert_int_equal(seen.ev[d].result, EACCES);

        nono_store_close(st);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
        assert_int_equal(system(cmd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_events_in_store),
        };
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
