/* SPDX-License-Identifier: Apache-2.0 */
/* test-proxy-http.c - request-head parsing and rewriting, and the chunked-body scanner of the proxy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "launcher/netrules.h"
#include "launcher/proxy-http.h"

static int parse(const char *head, struct nono_http_req *r, char *why)
{
        size_t len = strlen(head);

        assert_int_equal(nono_http_head_len(head, len), len);
        return nono_http_parse(head, len, r, why, 256);
}

static void test_head_len(void **state)
{
        assert_int_equal(nono_http_head_len("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
        assert_int_equal(nono_http_head_len("GET / HTTP/1.1\r\n\r\nBODY", 22), 18);
        assert_int_equal(nono_http_head_len("GET / HTTP/1.1\n\nBODY", 20), 16);
}

static void test_connect(void **state)
{
        struct nono_http_req r;
        char why[256];

        assert_int_equal(parse("CONNECT Example.COM:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &r, why),
                         0);
        assert_true(r.connect);
        assert_string_equal(r.host, "example.com");
        assert_int_equal(r.port, 443);
        nono_http_req_clear(&r);

        assert_int_equal(parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", &r, why), 0);
        assert_string_equal(r.host, "::1");
        assert_int_equal(r.port, 8443);
        nono_http_req_clear(&r);

        assert_int_equal(parse("CONNECT example.com HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("CONNECT example.com:0 HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("CONNECT example.com:65536 HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("CONNECT 127.1:80 HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("CONNECT a b:80 HTTP/1.1\r\n\r\n", &r, why), 400);
}

static void test_absolute_uri_rewritten(void **state)
{
        struct nono_http_req r;
        char why[256];

        assert_int_equal(parse("GET http://Allowed.test:8080/a/b?c=d#frag HTTP/1.1\r\n"
                               "Host: evil.test\r\nUser-Agent: t\r\nProxy-Connection: keep-alive\r\n"
                               "Proxy-Authorization: Basic x\r\nConnection: keep-alive\r\n\r\n",
                               &r, why),
                         0);
        assert_false(r.connect);
        assert_string_equal(r.host, "allowed.test");
        assert_int_equal(r.port, 8080);
        assert_int_equal(r.body, NONO_BODY_NONE);
        /* Host comes from the checked URI, never from the client's Host header */
        assert_string_equal(r.out, "GET /a/b?c=d HTTP/1.1\r\nHost: allowed.test:8080\r\nUser-Agent: t\r\n"
                                   "Connection: close\r\n\r\n");
        nono_http_req_clear(&r);

        assert_int_equal(parse("HEAD http://x.test HTTP/1.0\r\n\r\n", &r, why), 0);
        assert_int_equal(r.port, 80);
        assert_string_equal(r.out, "HEAD / HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n");
        nono_http_req_clear(&r);

        assert_int_equal(parse("GET http://x.test?q HTTP/1.1\r\n\r\n", &r, why), 0);
        assert_string_equal(r.out, "GET /?q HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n");
        nono_http_req_clear(&r);

        assert_int_equal(parse("GET http://[::1]:81/ HTTP/1.1\r\n\r\n", &r, why), 0);
        assert_string_equal(r.out, "GET / HTTP/1.1\r\nHost: [::1]:81\r\nConnection: close\r\n\r\n");
        nono_http_req_clear(&r);
}

static void test_refused_requests(void **state)
{
        struct nono_http_req r;
        char why[256];

        assert_int_equal(parse("GET /local HTTP/1.1\r\nHost: x\r\n\r\n", &r, why), 400);
        assert_non_null(strstr(why, "absolute"));
        assert_int_equal(parse("GET https://x.test/ HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_non_null(strstr(why, "CONNECT"));
        assert_int_equal(parse("GET http://allowed.test@evil.test/ HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("GET http://x.test/ HTTP/2\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("GET http://x.test/ HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &r, why), 400);
        assert_int_equal(
            parse("POST http://x.test/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &r, why),
            400);
        assert_int_equal(
            parse("POST http://x.test/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                  &r, why),
            400);
        assert_int_equal(parse("POST http://x.test/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &r, why),
                         501);
        assert_int_equal(parse("POST http://x.test/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("GET http://x.test:99999/ HTTP/1.1\r\n\r\n", &r, why), 400);
        assert_int_equal(parse("GET http://x.test/ HTTP/1.1\r\nBad Name: v\r\n\r\n", &r, why), 400);
        assert_null(strchr(why, '\n'));
}

static void test_bodies(void **state)
{
        struct nono_http_req r;
        char why[256];

        assert_int_equal(parse("POST http://x.test/ HTTP/1.1\r\ncontent-length: 12\r\n\r\n", &r, why), 0);
        assert_int_equal(r.body, NONO_BODY_LENGTH);
        assert_int_equal(r.content_length, 12);
        assert_non_null(strstr(r.out, "content-length: 12\r\n"));
        nono_http_req_clear(&r);

        assert_int_equal(parse("POST http://x.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r, why),
                         0);
        assert_int_equal(r.body, NONO_BODY_CHUNKED);
        nono_http_req_clear(&r);
}

static void test_response_rewrite(void **state)
{
        const char head[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
            "X-A: connection\r\n\r\n";
        char *out = NULL;
        size_t len = 0;
        int status = 0;

        assert_int_equal(nono_http_rewrite_response(head, sizeof(head) - 1, &out, &len, &status), 0);
        assert_int_equal(status, 200);
        assert_string_equal(
            out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: connection\r\nConnection: close\r\n\r\n");
        assert_int_equal(len, strlen(out));
        free(out);
        /* interim responses pass unchanged */
        assert_int_equal(nono_http_rewrite_response("HTTP/1.1 100 Continue\r\n\r\n", 25, &out, &len, &status),
                         0);
        assert_int_equal(status, 100);
        assert_string_equal(out, "HTTP/1.1 100 Continue\r\n\r\n");
        free(out);
        assert_int_equal(nono_http_rewrite_response("SSH-2.0-OpenSSH\r\n\r\n", 19, &out, &len, &status),
                         -EPROTO);
}

/* Random mutations of valid heads: the parser never reads out of bounds (ASan run), and whatever it accepts
 * is well formed: a host that normalises to itself, and an outgoing head whose every line ends in CRLF with
 * no other CR or LF, so nothing the client sent can become a second request or header. */
static void test_parse_random(void **state)
{
        static const char *const seeds[] = {
            "GET http://a.example.com:8080/x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
            "CONNECT a.example.com:443 HTTP/1.1\r\nHost: a.example.com:443\r\n\r\n",
            "POST http://[::1]:81/p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
        };
        static const char alphabet[] = "\r\n :/[]@?#.0123456789abcXYZ\t\x00\x7f\xff";
        const char *env = getenv("NONO_TEST_SEEDS");
        unsigned seeds_n = env ? (unsigned)atoi(env) * 40 : 2000;

        for (unsigned seed = 1; seed <= seeds_n; seed++) {
                char buf[512], why[256];
                struct nono_http_req r;
                size_t len;

                srand(seed);
                len = strlen(seeds[seed % 3]);
                memcpy(buf, seeds[seed % 3], len);
                for (int k = rand() % 4; k >= 0; k--) {
                        size_t at = (size_t)rand() % len;
                        switch (rand() % 3) {
                        case 0: /* replace */
                                buf[at] = alphabet[rand() % (sizeof(alphabet) - 1)];
                                break;
                        case 1: /* insert */
                                if (len < sizeof(buf) - 1) {
                                        memmove(buf + at + 1, buf + at, len - at);
                                        buf[at] = alphabet[rand() % (sizeof(alphabet) - 1)];
                                        len++;
                                }
                                break;
                        default: /* delete */
                                memmove(buf + at, buf + at + 1, len - at - 1);
                                len--;
                        }
                }
                size_t hl = nono_http_head_len(buf, len);
                if (!hl)
                        continue;
                int ret = nono_http_parse(buf, hl, &r, why, sizeof(why));
                if (ret) {
                        if (strchr(why, '\n') || strchr(why, '\r'))
                                fail_msg("seed %u: reason with a line break", seed);
                        continue;
                }
                char host[256];
                snprintf(host, sizeof(host), "%s", r.host);
                if (nono_host_normalize(host) < 0 || strcmp(host, r.host) || r.port == 0)
                        fail_msg("seed %u: accepted host '%s' port %u", seed, r.host, r.port);
                for (size_t i = 0; r.out && i < r.out_len; i++) {
                        bool crlf = r.out[i] == '\r' && i + 1 < r.out_len && r.out[i + 1] == '\n';
                        if (crlf) {
                                i++;
                                continue;
                        }
                        if (r.out[i] == '\r' || r.out[i] == '\n' || r.out[i] == '\0')
                                fail_msg("seed %u: bare CR/LF/NUL at %zu of the outgoing head: %s", seed, i,
                                         r.out);
                }
                if (r.out && (r.out_len < 4 || memcmp(r.out + r.out_len - 4, "\r\n\r\n", 4) ||
                              memmem(r.out, r.out_len - 2, "\r\n\r\n", 4)))
                        fail_msg("seed %u: the outgoing head has an empty line before its end", seed);
                nono_http_req_clear(&r);
        }
}

static size_t feed_all(const char *s, size_t len, size_t step, bool *done, bool *bad)
{
        struct nono_chunked c = {0};
        size_t used = 0;

        *done = false;
        while (used < len && !*done && !c.bad) {
                size_t n = len - used < step ? len - used : step;
                used += nono_chunked_feed(&c, s + used, n, done);
        }
        *bad = c.bad;
        return used;
}

static void test_chunked(void **state)
{
        const char body[] = "5\r\nhello\r\n1;ext=1\r\n \r\n0\r\nTrailer: x\r\n\r\n";
        const char smuggle[] = "3\r\nabc\r\n0\r\n\r\nGET http://evil.test/ HTTP/1.1\r\n\r\n";
        bool done, bad;

        for (size_t step = 1; step <= sizeof(body); step++) {
                assert_int_equal(feed_all(body, sizeof(body) - 1, step, &done, &bad), sizeof(body) - 1);
                assert_true(done);
                assert_false(bad);
        }
        /* the scanner stops at the end of the body: the smuggled request is not part of it */
        assert_int_equal(feed_all(smuggle, sizeof(smuggle) - 1, 1000, &done, &bad), 13);
        assert_true(done);
        feed_all("zz\r\n", 4, 4, &done, &bad);
        assert_true(bad);
        feed_all("3\r\nabcX\r\n", 9, 9, &done, &bad);
        assert_true(bad);
        feed_all("fffffffffffffffff\r\n", 19, 19, &done, &bad);
        assert_true(bad);
}

/* Random bodies, split at random points: the scanner must find the same end every time. */
static void test_chunked_random(void **state)
{
        const char *env = getenv("NONO_TEST_SEEDS");
        unsigned seeds = env ? (unsigned)atoi(env) : 50;

        for (unsigned seed = 1; seed <= seeds; seed++) {
                char buf[8192];
                size_t len = 0;
                bool done = false;
                struct nono_chunked c = {0};
                size_t used = 0;

                srand(seed);
                for (int k = rand() % 6; k >= 0; k--) {
                        unsigned n = (unsigned)rand() % 300 + (k ? 1 : 0);
                        if (!k)
                                n = 0;
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%x%s\r\n", n,
                                                rand() % 2 ? ";e" : "");
                        for (unsigned i = 0; i < n; i++)
                                buf[len++] = (char)(rand() % 256);
                        if (n)
                                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
                }
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\nEXTRA");
                while (!done && !c.bad && used < len) {
                        size_t n = (size_t)rand() % 64 + 1;
                        if (n > len - used)
                                n = len - used;
                        used += nono_chunked_feed(&c, buf + used, n, &done);
                }
                if (!done || c.bad || used != len - 5)
                        fail_msg("seed %u: done=%d bad=%d used=%zu expected %zu", seed, done, c.bad, used,
                                 len - 5);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_head_len),
            cmocka_unit_test(test_connect),
            cmocka_unit_test(test_absolute_uri_rewritten),
            cmocka_unit_test(test_refused_requests),
            cmocka_unit_test(test_bodies),
            cmocka_unit_test(test_chunked),
            cmocka_unit_test(test_chunked_random),
            cmocka_unit_test(test_response_rewrite),
            cmocka_unit_test(test_parse_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
