/* SPDX-License-Identifier: Apache-2.0 */
/* test-env.c - environment scrubbing (launcher/env.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "launcher/env.h"
#include "launcher/policy.h"

static const char *get(char **env, const char *name)
{
        size_t n = strlen(name);

        for (size_t i = 0; env[i]; i++)
                if (!strncmp(env[i], name, n) && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

static void test_dangerous_removed(void **state)
{
        char *in[] = {"LD_PRELOAD=/x.so", "LD_AUDIT=/a",
                      "BASH_ENV=/rc",     "ENV=/rc",
                      "PROMPT_COMMAND=x", "BASH_FUNC_ls%%=() { :; }",
                      "GLIBC_TUNABLES=x", "SHELLOPTS=xtrace",
                      "PS4=$(x)",         "PATH=/usr/bin",
                      "HOME=/h",          "LANG=C.UTF-8",
                      "TMPDIR=/host/tmp", NULL};
        char **out = nono_env_build(in, NULL);

        assert_non_null(out);
        for (const char *const *v =
                 (const char *const[]){"LD_PRELOAD", "LD_AUDIT", "BASH_ENV", "ENV", "PROMPT_COMMAND",
                                       "BASH_FUNC_ls%%", "GLIBC_TUNABLES", "SHELLOPTS", "PS4", NULL};
             *v; v++)
                assert_null(get(out, *v));
        assert_string_equal(get(out, "PATH"), "/usr/bin");
        assert_string_equal(get(out, "HOME"), "/h");
        assert_string_equal(get(out, "LANG"), "C.UTF-8");
        assert_string_equal(get(out, "TMPDIR"), "/tmp");
        nono_env_free(out);
}

static void test_policy_lists(void **state)
{
        char *in[] = {"AWS_SECRET_ACCESS_KEY=s", "GITHUB_TOKEN=t", "EDITOR=vi", "FOO=old", NULL};
        char *deny[] = {"AWS_*", NULL}, *set[] = {"FOO=new", "BAR=1", NULL}, *empty[] = {NULL};
        struct nono_policy p = {.env_allow = empty, .env_deny = deny, .env_set = set};
        char **out = nono_env_build(in, &p);

        assert_null(get(out, "AWS_SECRET_ACCESS_KEY"));
        assert_string_equal(get(out, "GITHUB_TOKEN"), "t");
        assert_string_equal(get(out, "FOO"), "new");
        assert_string_equal(get(out, "BAR"), "1");
        nono_env_free(out);

        char *allow[] = {"EDITOR", NULL};
        p.env_allow = allow;
        p.env_deny = empty;
        p.env_set = empty;
        out = nono_env_build(in, &p);
        assert_string_equal(get(out, "EDITOR"), "vi");
        assert_null(get(out, "GITHUB_TOKEN"));
        nono_env_free(out);
}

static void test_malformed_skipped(void **state)
{
        char *in[] = {"NOEQUALS", "=value", "OK=1", NULL};
        char **out = nono_env_build(in, NULL);

        assert_string_equal(get(out, "OK"), "1");
        for (size_t i = 0; out[i]; i++)
                assert_non_null(strchr(out[i], '=')), assert_true(out[i][0] != '=');
        nono_env_free(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dangerous_removed),
            cmocka_unit_test(test_policy_lists),
            cmocka_unit_test(test_malformed_skipped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
