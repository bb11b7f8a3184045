/* SPDX-License-Identifier: Apache-2.0 */
/* test-netrules.c - the allow-list matcher, the address classifier and the hosts file of the proxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/netrules.h"

static nono_netrules *rules(const char *const *allow)
{
        nono_netrules *r = NULL;
        char *err = NULL;

        assert_int_equal(nono_netrules_new(allow, &r, &err), 0);
        assert_null(err);
        return r;
}

static struct sockaddr_storage addr(const char *s)
{
        struct sockaddr_storage ss = {0};

        if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
                ss.ss_family = AF_INET;
        else {
                assert_int_equal(inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
                ss.ss_family = AF_INET6;
        }
        return ss;
}

static enum nono_host_match match(const nono_netrules *r, const char *host)
{
        char buf[300];

        snprintf(buf, sizeof(buf), "%s", host);
        if (nono_host_normalize(buf) < 0)
                return (enum nono_host_match) - 1;
        return nono_netrules_match(r, buf);
}

static void test_exact_names(void **state)
{
        const char *allow[] = {"api.GitHub.com", "registry.npmjs.org.", NULL};
        nono_netrules *r = rules(allow);

        assert_int_equal(match(r, "api.github.com"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "API.GITHUB.COM"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "api.github.com."), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "registry.npmjs.org"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "github.com"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "x.api.github.com"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "api.github.com.evil.org"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "evilapi.github.com"), NONO_MATCH_NONE);
        nono_netrules_free(r);
}

static void test_wildcards(void **state)
{
        const char *allow[] = {"*.Example.com", NULL};
        nono_netrules *r = rules(allow);

        assert_int_equal(match(r, "a.example.com"), NONO_MATCH_WILDCARD);
        assert_int_equal(match(r, "a.b.EXAMPLE.com"), NONO_MATCH_WILDCARD);
        assert_int_equal(match(r, "example.com"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "badexample.com"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "example.com.evil.org"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "aexample.com"), NONO_MATCH_NONE);
        nono_netrules_free(r);

        const char *both[] = {"*.example.com", "example.com", NULL};
        r = rules(both);
        assert_int_equal(match(r, "example.com"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "www.example.com"), NONO_MATCH_WILDCARD);
        nono_netrules_free(r);
}

static void test_ip_literals(void **state)
{
        const char *allow[] = {"10.1.2.3", "[2001:db8::1]", "fd00::5", "example.com", NULL};
        nono_netrules *r = rules(allow);
        struct sockaddr_storage a;

        assert_int_equal(match(r, "10.1.2.3"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "10.1.2.4"), NONO_MATCH_NONE);
        assert_int_equal(match(r, "[2001:db8::1]"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "2001:DB8:0::1"), NONO_MATCH_EXACT);
        assert_int_equal(match(r, "fd00::5"), NONO_MATCH_EXACT);
        /* names never match address rules and the other way round */
        assert_int_equal(match(r, "127.0.0.1"), NONO_MATCH_NONE);
        a = addr("10.1.2.3");
        assert_true(nono_netrules_addr_granted(r, (struct sockaddr *)&a));
        a = addr("::ffff:10.1.2.3"); /* the same IPv4 address, mapped */
        assert_true(nono_netrules_addr_granted(r, (struct sockaddr *)&a));
        a = addr("10.1.2.4");
        assert_false(nono_netrules_addr_granted(r, (struct sockaddr *)&a));
        nono_netrules_free(r);
}

static void test_non_canonical_numbers_refused(void **state)
{
        const char *bad[] = {"127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "017700000001", NULL};
        char buf[64];

        for (size_t i = 0; bad[i]; i++) {
                snprintf(buf, sizeof(buf), "%s", bad[i]);
                assert_int_equal(nono_host_normalize(buf), -EINVAL);
        }
        snprintf(buf, sizeof(buf), "1password.com");
        assert_int_equal(nono_host_normalize(buf), 0);
        snprintf(buf, sizeof(buf), "a..b");
        assert_int_equal(nono_host_normalize(buf), -EINVAL);
        snprintf(buf, sizeof(buf), "evil.com/x");
        assert_int_equal(nono_host_normalize(buf), -EINVAL);
        snprintf(buf, sizeof(buf), "[::1]");
        assert_int_equal(nono_host_normalize(buf), 0);
        assert_string_equal(buf, "::1");
}

static void test_bad_rules(void **state)
{
        const char *bad[] = {"*",          "*.com",      "*example.com", "a.*.com", "http://x.com",
                             "x.com:443",  "x.com/path", "127.1",        "",        "exa mple.com",
                             "*.10.0.0.1", NULL};

        for (size_t i = 0; bad[i]; i++) {
                const char *one[] = {bad[i], NULL};
                nono_netrules *r = NULL;
                char *err = NULL;

                assert_int_equal(nono_netrules_new(one, &r, &err), -EINVAL);
                assert_non_null(err);
                assert_non_null(strstr(err, "--allow-domain"));
                free(err);
        }
}

static void test_classify(void **state)
{
        static const struct {
                const char *a;
                enum nono_addr_class c;
        } v[] = {
            {"8.8.8.8", NONO_ADDR_PUBLIC},
            {"127.0.0.1", NONO_ADDR_LOOPBACK},
            {"127.255.0.9", NONO_ADDR_LOOPBACK},
            {"10.0.0.1", NONO_ADDR_PRIVATE},
            {"172.16.0.1", NONO_ADDR_PRIVATE},
            {"172.31.255.255", NONO_ADDR_PRIVATE},
            {"172.32.0.1", NONO_ADDR_PUBLIC},
            {"192.168.1.1", NONO_ADDR_PRIVATE},
            {"169.254.1.1", NONO_ADDR_LINKLOCAL},
            {"169.254.169.254", NONO_ADDR_METADATA},
            {"169.254.170.2", NONO_ADDR_METADATA},
            {"100.100.100.200", NONO_ADDR_METADATA},
            {"100.64.0.1", NONO_ADDR_CGNAT},
            {"100.127.255.255", NONO_ADDR_CGNAT},
            {"100.128.0.1", NONO_ADDR_PUBLIC},
            {"0.0.0.0", NONO_ADDR_UNSPECIFIED},
            {"224.0.0.1", NONO_ADDR_MULTICAST},
            {"255.255.255.255", NONO_ADDR_MULTICAST},
            {"2606:4700::1", NONO_ADDR_PUBLIC},
            {"::1", NONO_ADDR_LOOPBACK},
            {"::", NONO_ADDR_UNSPECIFIED},
            {"fc00::1", NONO_ADDR_PRIVATE},
            {"fdff::1", NONO_ADDR_PRIVATE},
            {"fe80::1", NONO_ADDR_LINKLOCAL},
            {"ff02::1", NONO_ADDR_MULTICAST},
            {"fd00:ec2::254", NONO_ADDR_METADATA},
            {"::ffff:127.0.0.1", NONO_ADDR_LOOPBACK},
            {"::ffff:169.254.169.254", NONO_ADDR_METADATA},
            {"64:ff9b::a9fe:a9fe", NONO_ADDR_METADATA}, /* NAT64 of 169.254.169.254 */
            {"::10.0.0.1", NONO_ADDR_PRIVATE},
        };

        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                struct sockaddr_storage a = addr(v[i].a);
                if (nono_addr_classify((struct sockaddr *)&a) != v[i].c)
                        fail_msg("%s: class %d, expected %d", v[i].a,
                                 nono_addr_classify((struct sockaddr *)&a), v[i].c);
        }
}

static void test_addr_check(void **state)
{
        const char *allow[] = {"local.test", "*.wild.test", "10.9.9.9", NULL};
        nono_netrules *r = rules(allow);
        char why[256];
        struct sockaddr_storage a;

        a = addr("93.184.216.34");
        assert_true(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_WILDCARD, why, sizeof(why)));
        /* loopback through an exact name: yes; through a wildcard: no */
        a = addr("127.0.0.1");
        assert_true(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_EXACT, why, sizeof(why)));
        assert_false(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_WILDCARD, why, sizeof(why)));
        assert_non_null(strstr(why, "loopback"));
        /* a granted literal address is reachable through any granted name */
        a = addr("10.9.9.9");
        assert_true(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_WILDCARD, why, sizeof(why)));
        /* metadata: never through a name, even an exact one */
        a = addr("169.254.169.254");
        assert_false(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_EXACT, why, sizeof(why)));
        assert_non_null(strstr(why, "cloud metadata"));
        assert_non_null(strstr(why, "--allow-domain 169.254.169.254"));
        a = addr("fd00:ec2::254");
        assert_false(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_EXACT, why, sizeof(why)));
        nono_netrules_free(r);

        const char *meta[] = {"169.254.169.254", NULL};
        r = rules(meta);
        a = addr("169.254.169.254");
        assert_true(nono_addr_check(r, (struct sockaddr *)&a, NONO_MATCH_EXACT, why, sizeof(why)));
        nono_netrules_free(r);
}

static void test_hosts_file(void **state)
{
        char path[] = "/tmp/nono-test-hosts.XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        nono_hosts *h = NULL;
        char *err = NULL;
        struct sockaddr_storage out[4];

        fputs("# test resolver\n127.0.0.1 a.test B.Test\n::1 a.test\n169.254.169.254 meta.test # cloud\n\n",
              f);
        fclose(f);
        assert_int_equal(nono_hosts_load(path, &h, &err), 0);
        assert_int_equal(nono_hosts_lookup(h, "a.test", 8080, out, 4), 2);
        assert_int_equal(out[0].ss_family, AF_INET);
        assert_int_equal(ntohs(((struct sockaddr_in *)&out[0])->sin_port), 8080);
        assert_int_equal(out[1].ss_family, AF_INET6);
        assert_int_equal(nono_hosts_lookup(h, "b.test", 1, out, 4), 1);
        assert_int_equal(nono_hosts_lookup(h, "meta.test", 1, out, 4), 1);
        assert_int_equal(nono_addr_classify((struct sockaddr *)&out[0]), NONO_ADDR_METADATA);
        assert_int_equal(nono_hosts_lookup(h, "c.test", 1, out, 4), 0);
        nono_hosts_free(h);

        f = fopen(path, "w");
        fputs("not-an-address a.test\n", f);
        fclose(f);
        assert_int_equal(nono_hosts_load(path, &h, &err), -EINVAL);
        assert_non_null(strstr(err, ":1:"));
        free(err);
        unlink(path);
        assert_int_equal(nono_hosts_load(path, &h, &err), -ENOENT);
        free(err);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_exact_names), cmocka_unit_test(test_wildcards),
            cmocka_unit_test(test_ip_literals), cmocka_unit_test(test_non_canonical_numbers_refused),
            cmocka_unit_test(test_bad_rules),   cmocka_unit_test(test_classify),
            cmocka_unit_test(test_addr_check),  cmocka_unit_test(test_hosts_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
