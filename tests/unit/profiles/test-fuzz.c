/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fuzz: random mutations of the built-in profiles (bytes flipped, deleted, duplicated) fed to the
 * position scanner and the whole checker. Properties: nothing crashes or leaks (run under ASan too); what
 * jsonpos accepts, cJSON accepts; every syntax error has a position inside the text; every diagnostic of a
 * loaded file names a line:column within the file. Seeds: NONO_TEST_SEEDS (default 200), printed on failure.
 */
#include <cjson/cJSON.h>

#include "launcher/jsonpos.h"
#include "launcher/profile.h"
#include "test-common.h"

static const char *const names[] = {"default.json", "python-dev.json",  "node-dev.json", "rust-dev.json",
                                    "go-dev.json",  "claude-code.json", "codex.json"};

static unsigned lines_of(const char *s, size_t n)
{
        unsigned l = 1;

        for (size_t i = 0; i < n; i++)
                l += s[i] == '\n';
        return l;
}

static char *mutate(const char *src, size_t len, size_t *out_len, unsigned *seed)
{
        char *b = malloc(len * 2 + 16);
        size_t n = len;
        int k = 1 + rand_r(seed) % 4;

        memcpy(b, src, len);
        while (k--) {
                size_t at = n ? (size_t)rand_r(seed) % n : 0;
                static const char tokens[] = "{}[],:\"\\ \n0-1.etfn/*$~";
                switch (rand_r(seed) % 3) {
                case 0: /* replace a byte */
                        if (n)
                                b[at] = tokens[rand_r(seed) % (sizeof(tokens) - 1)];
                        break;
                case 1: /* delete a byte */
                        if (n) {
                                memmove(b + at, b + at + 1, n - at - 1);
                                n--;
                        }
                        break;
                default: /* insert a byte */
                        memmove(b + at + 1, b + at, n - at);
                        b[at] = tokens[rand_r(seed) % (sizeof(tokens) - 1)];
                        n++;
                }
        }
        b[n] = 0;
        *out_len = n;
        return b;
}

static void test_mutations(void **state)
{
        const char *env = getenv("NONO_TEST_SEEDS");
        unsigned seeds = env ? (unsigned)atoi(env) : 200;
        struct nono_vars vars;
        char *err = NULL, wd[512];

        snprintf(wd, sizeof(wd), "%s/work", tdir);
        assert_int_equal(nono_vars_init(&vars, wd, &err), 0);
        mkdirs("cfg/nono/profiles");
        for (unsigned s = 1; s <= seeds; s++) {
                unsigned seed = s;
                const char *name = names[s % (sizeof(names) / sizeof(names[0]))];
                size_t len, n;
                const char *src = nono_profile_embedded(name, &len);
                char *text = mutate(src, len, &n, &seed), path[1024];
                struct jsonpos pos;
                struct jsonpos_error e = {0};
                struct nono_profile p;
                struct nono_diags d = {0};
                unsigned max_line = lines_of(text, n);
                FILE *f;
                int r = jsonpos_build(text, n, &pos, &e);

                if (r == 0) {
                        cJSON *j = cJSON_ParseWithLength(text, n);
                        if (!j)
                                fail_msg("seed %u: jsonpos accepts what cJSON rejects:\n%s", s, text);
                        cJSON_Delete(j);
                        jsonpos_free(&pos);
                } else if (r != -EINVAL || e.line < 1 || e.line > max_line || e.col < 1) {
                        fail_msg("seed %u: bad syntax error %d at %u:%u", s, r, e.line, e.col);
                }
                snprintf(path, sizeof(path), "%s/cfg/nono/profiles/fuzz.json", tdir);
                f = fopen(path, "w");
                assert_non_null(f);
                fwrite(text, 1, n, f);
                fclose(f);
                r = nono_profile_load("fuzz", &vars, NONO_PROFILE_CHECK_PATHS, &p, &d);
                if (r == 0)
                        nono_profile_free(&p);
                else if (r != -EINVAL || d.n_errors == 0)
                        fail_msg("seed %u: load returned %d with %zu errors", s, r, d.n_errors);
                for (size_t i = 0; i < d.n; i++)
                        if (d.v[i].file && strstr(d.v[i].file, "fuzz.json") &&
                            (d.v[i].line < 1 || d.v[i].line > max_line || d.v[i].col < 1))
                                fail_msg("seed %u: diagnostic without a place: %s", s, d.v[i].msg);
                nono_diags_free(&d);
                free(text);
        }
        nono_vars_free(&vars);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_mutations, setup_env, teardown_env),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
