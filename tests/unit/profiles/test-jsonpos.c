/* SPDX-License-Identifier: Apache-2.0 */
/* test-jsonpos: positions of values and member names, syntax errors with their place, pointer escaping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "launcher/jsonpos.h"

static void at(const struct jsonpos *p, const char *ptr, bool key, unsigned line, unsigned col)
{
        unsigned l, c;

        jsonpos_lookup(p, ptr, key, &l, &c);
        if (l != line || c != col)
                fail_msg("%s%s: expected %u:%u, got %u:%u", ptr, key ? " (key)" : "", line, col, l, c);
}

static void test_positions(void **state)
{
        const char *text = "{\n"
                           "  \"a\": [1, \"x\",\n"
                           "        {\"b/c\": true, \"m~n\": null}],\n"
                           "\t\"\xc3\xa9t\xc3\xa9\": \"\xe2\x82\xac\", \"z\": -1.5e3\n"
                           "}\n";
        struct jsonpos p;
        struct jsonpos_error e;

        assert_int_equal(jsonpos_build(text, strlen(text), &p, &e), 0);
        at(&p, "", false, 1, 1);
        at(&p, "/a", false, 2, 8);
        at(&p, "/a", true, 2, 3);
        at(&p, "/a/0", false, 2, 9);
        at(&p, "/a/1", false, 2, 12);
        at(&p, "/a/2", false, 3, 9);
        at(&p, "/a/2/b~1c", true, 3, 10);
        at(&p, "/a/2/b~1c", false, 3, 17);
        at(&p, "/a/2/m~0n", false, 3, 30);
        /* columns count characters: "été" is 3 wide, the tab 1 */
        at(&p, "/\xc3\xa9t\xc3\xa9", true, 4, 2);
        at(&p, "/z", false, 4, 19);
        /* a missing member falls back to its nearest ancestor */
        at(&p, "/a/2/nope/deeper", false, 3, 9);
        assert_int_equal(p.n_dups, 0);
        jsonpos_free(&p);
}

static void test_syntax_errors(void **state)
{
        static const struct {
                const char *text;
                unsigned line, col;
                const char *msg;
        } cases[] = {
            {"{\"a\": [1, 2,]}", 1, 13, "trailing comma"},
            {"{\n  \"a\": 1,\n}", 3, 1, "trailing comma"},
            {"{\"a\" 1}", 1, 6, "expected ':'"},
            {"{\"a\": 1 \"b\": 2}", 1, 9, "expected ',' or '}'"},
            {"{a: 1}", 1, 2, "member name"},
            {"[1, 2", 1, 6, "expected ',' or ']'"},
            {"{\"a\": tru}", 1, 10, "invalid literal"},
            {"{\"a\": \"x\ny\"}", 1, 9, "control character"},
            {"{\"a\": \"\\q\"}", 1, 9, "invalid escape"},
            {"{\"a\": 01}", 1, 8, "expected ',' or '}'"},
            {"{\"a\": 1.}", 1, 9, "digits expected"},
            {"{} x", 1, 4, "after the end"},
            {"", 1, 1, "unexpected end"},
            {"{\"a\": \"unterminated", 1, 20, "unterminated string"},
            {"// comment\n{}", 1, 1, "expected a value"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct jsonpos p;
                struct jsonpos_error e = {0};

                if (jsonpos_build(cases[i].text, strlen(cases[i].text), &p, &e) != -EINVAL)
                        fail_msg("case %zu (%s) was accepted", i, cases[i].text);
                if (e.line != cases[i].line || e.col != cases[i].col || !strstr(e.msg, cases[i].msg))
                        fail_msg("case %zu (%s): got %u:%u %s, expected %u:%u %s", i, cases[i].text, e.line,
                                 e.col, e.msg, cases[i].line, cases[i].col, cases[i].msg);
        }
}

static void test_nul_and_bom(void **state)
{
        struct jsonpos p;
        struct jsonpos_error e;

        assert_int_equal(jsonpos_build("{}\0{}", 5, &p, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "NUL"));
        assert_int_equal(jsonpos_build("\xEF\xBB\xBF{\"a\":1}", 10, &p, &e), 0);
        at(&p, "/a", true, 1, 2);
        jsonpos_free(&p);
}

static void test_duplicates(void **state)
{
        const char *text = "{\"a\": 1, \"b\": {\"a\": 2}, \"a\": 3}";
        struct jsonpos p;
        struct jsonpos_error e;

        assert_int_equal(jsonpos_build(text, strlen(text), &p, &e), 0);
        assert_int_equal(p.n_dups, 1);
        assert_string_equal(p.dups[0].pointer, "/a");
        assert_int_equal(p.dups[0].key_col, 25);
        jsonpos_free(&p);
}

static void test_deep_nesting(void **state)
{
        size_t n = 100000;
        char *text = malloc(n);
        struct jsonpos p;
        struct jsonpos_error e;

        memset(text, '[', n);
        assert_int_equal(jsonpos_build(text, n, &p, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "too deep"));
        free(text);
}

static void test_pointer_join(void **state)
{
        char *a = json_pointer_join("/x", "a/b~c"), *b = json_pointer_index("/x", 12);

        assert_string_equal(a, "/x/a~1b~0c");
        assert_string_equal(b, "/x/12");
        free(a);
        free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_positions),    cmocka_unit_test(test_syntax_errors),
            cmocka_unit_test(test_nul_and_bom),  cmocka_unit_test(test_duplicates),
            cmocka_unit_test(test_deep_nesting), cmocka_unit_test(test_pointer_join),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
