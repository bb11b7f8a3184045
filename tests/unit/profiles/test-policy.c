/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-policy: nono_policy_resolve() on real directories: profile + flags become canonical grants and
 * denies; flags only add; missing flag paths, flag grants inside a deny group and invalid profiles are
 * refused with a message that names the problem and the fix.
 */
#include <cjson/cJSON.h>

#include "launcher/policy.h"
#include "test-common.h"

static char work[512];

static int setup(void **state)
{
        if (setup_env(state) < 0)
                return -1;
        snprintf(work, sizeof(work), "%s/work", tdir);
        return 0;
}

static const struct nono_grant *grant(const struct nono_policy *p, const char *path)
{
        for (size_t i = 0; i < p->n_grants; i++)
                if (!strcmp(p->grants[i].path, path))
                        return &p->grants[i];
        return NULL;
}

static const struct nono_deny *deny(const struct nono_policy *p, const char *pattern)
{
        for (size_t i = 0; i < p->n_denies; i++)
                if (!strcmp(p->denies[i].pattern, pattern))
                        return &p->denies[i];
        return NULL;
}

static bool has(char **v, const char *s)
{
        for (; v && *v; v++)
                if (!strcmp(*v, s))
                        return true;
        return false;
}

static int resolve(struct nono_policy_flags *f, struct nono_policy *p, char **err)
{
        if (!f->workdir)
                f->workdir = work;
        return nono_policy_resolve(f, p, err);
}

static void test_default(void **state)
{
        struct nono_policy_flags f = {0};
        struct nono_policy p;
        char *err = NULL, path[1024];
        const struct nono_grant *g;
        const struct nono_deny *d;

        assert_int_equal(resolve(&f, &p, &err), 0);
        assert_string_equal(p.profile, "default");
        assert_string_equal(p.workdir, work);
        g = grant(&p, work);
        assert_non_null(g);
        assert_int_equal(g->access, NONO_ACCESS_READ | NONO_ACCESS_WRITE | NONO_ACCESS_EXEC);
        assert_false(g->system);
        g = grant(&p, "/usr");
        assert_non_null(g);
        assert_true(g->system);
        assert_int_equal(g->access, NONO_ACCESS_READ | NONO_ACCESS_EXEC);
        /* no system grant is below another one (/bin -> /usr/bin on merged-/usr systems) */
        for (size_t i = 0; i < p.n_grants; i++)
                for (size_t j = 0; j < p.n_grants; j++) {
                        size_t n = strlen(p.grants[j].path);
                        if (i != j && p.grants[i].system && p.grants[j].system &&
                            !strncmp(p.grants[i].path, p.grants[j].path, n) && p.grants[i].path[n] == '/')
                                fail_msg("%s is below %s", p.grants[i].path, p.grants[j].path);
                }
        snprintf(path, sizeof(path), "%s/home/.ssh", tdir);
        d = deny(&p, path);
        assert_non_null(d);
        assert_string_equal(d->group, "credentials");
        snprintf(path, sizeof(path), "%s/home/.bashrc", tdir);
        d = deny(&p, path);
        assert_non_null(d);
        assert_int_equal(d->access, NONO_ACCESS_WRITE);
        assert_true(p.net_block);
        assert_false(p.allow_net);
        assert_false(p.rollback);
        assert_true(p.audit);
        assert_true(has(p.env_deny, "SSH_AUTH_SOCK"));
        /* profile paths that do not exist are left out ($HOME/.gitconfig here) */
        snprintf(path, sizeof(path), "%s/home/.gitconfig", tdir);
        assert_null(grant(&p, path));
        nono_policy_free(&p);
}

static void test_flags_add(void **state)
{
        char a[1024], r[1024], file[1024];
        char *allow[] = {a, file, NULL}, *read[] = {r, NULL}, *dom[] = {"extra.example", "pypi.org", NULL};
        struct nono_policy_flags f = {.profile = "python-dev",
                                      .allow = allow,
                                      .read = read,
                                      .allow_domain = dom,
                                      .rollback = true,
                                      .capability_elevation = true,
                                      .no_audit = true};
        struct nono_policy p;
        char *err = NULL;
        const struct nono_grant *g;

        mkdirs("data/rw");
        mkdirs("data/ro");
        write_file("data/one.txt", "x");
        snprintf(a, sizeof(a), "%s/data/rw/", tdir);
        snprintf(r, sizeof(r), "%s/data/../data/ro", tdir);
        snprintf(file, sizeof(file), "%s/data/one.txt", tdir);
        if (resolve(&f, &p, &err) < 0)
                fail_msg("%s", err);
        snprintf(a, sizeof(a), "%s/data/rw", tdir);
        snprintf(r, sizeof(r), "%s/data/ro", tdir);
        assert_non_null(g = grant(&p, a));
        assert_int_equal(g->access, NONO_ACCESS_READ | NONO_ACCESS_WRITE | NONO_ACCESS_EXEC);
        assert_false(g->optional);
        assert_non_null(g = grant(&p, r));
        assert_int_equal(g->access & NONO_ACCESS_WRITE, 0);
        assert_non_null(g = grant(&p, file));
        assert_true(g->is_file);
        assert_true(has(p.allow_domains, "pypi.org") && has(p.allow_domains, "extra.example"));
        for (size_t i = 0, n = 0; p.allow_domains[i]; i++)
                if (!strcmp(p.allow_domains[i], "pypi.org"))
                        assert_int_equal(++n, 1);
        assert_true(p.rollback);
        assert_true(p.capability_elevation);
        assert_false(p.audit);
        assert_true(p.net_block);
        nono_policy_free(&p);
}

static void test_flag_errors(void **state)
{
        char missing[1024], ssh[1024], dir[1024];
        char *allow_missing[] = {missing, NULL}, *allow_ssh[] = {ssh, NULL}, *both[] = {dir, NULL};
        struct nono_policy_flags f = {.allow = allow_missing};
        struct nono_policy p;
        char *err = NULL;

        snprintf(missing, sizeof(missing), "%s/nope", tdir);
        assert_int_equal(resolve(&f, &p, &err), -ENOENT);
        assert_non_null(strstr(err, "does not exist"));
        assert_non_null(strstr(err, "--allow"));
        free(err);

        mkdirs("home/.ssh");
        snprintf(ssh, sizeof(ssh), "%s/home/.ssh", tdir);
        f = (struct nono_policy_flags){.read = allow_ssh};
        assert_int_equal(resolve(&f, &p, &err), -EPERM);
        assert_non_null(strstr(err, "deny group \"credentials\""));
        free(err);

        mkdirs("both");
        snprintf(dir, sizeof(dir), "%s/both", tdir);
        f = (struct nono_policy_flags){.allow = both, .read = both};
        assert_int_equal(resolve(&f, &p, &err), -EINVAL);
        assert_non_null(strstr(err, "both --allow and --read"));
        free(err);

        /* nono's own configuration is never grantable: a user profile there picks the next sandbox */
        mkdirs("cfg/nono/profiles");
        snprintf(dir, sizeof(dir), "%s/cfg/nono/profiles", tdir);
        f = (struct nono_policy_flags){.allow = both};
        assert_int_equal(resolve(&f, &p, &err), -EPERM);
        assert_non_null(strstr(err, "deny group \"nono\""));
        free(err);

        f = (struct nono_policy_flags){.profile = "no-such-profile"};
        assert_int_equal(resolve(&f, &p, &err), -ENOENT);
        assert_non_null(strstr(err, "no-such-profile"));
        free(err);

        f = (struct nono_policy_flags){.workdir = missing};
        assert_int_equal(nono_policy_resolve(&f, &p, &err), -ENOENT);
        assert_non_null(strstr(err, "--workdir"));
        free(err);
}

static void test_invalid_profile(void **state)
{
        struct nono_policy_flags f = {.profile = "mine"};
        struct nono_policy p;
        char *err = NULL;

        mkdirs("cfg/nono/profiles");
        write_file("cfg/nono/profiles/mine.json", "{\n  \"network\": {\"block\": \"no\"}\n}\n");
        assert_int_equal(resolve(&f, &p, &err), -EINVAL);
        assert_non_null(strstr(err, "mine.json:2:24: error: wrong type"));
        assert_non_null(strstr(err, "/network/block"));
        free(err);
}

static void test_profile_settings(void **state)
{
        struct nono_policy_flags f = {.profile = "mine"};
        struct nono_policy p;
        char *err = NULL, path[1024], real[1024];
        const struct nono_grant *g;

        mkdirs("cfg/nono/profiles");
        mkdirs("home/tools");
        mkdirs("real-secrets");
        snprintf(path, sizeof(path), "%s/real-secrets", tdir);
        snprintf(real, sizeof(real), "%s/home/.aws", tdir);
        assert_int_equal(symlink(path, real), 0);
        write_file("cfg/nono/profiles/mine.json",
                   "{\"filesystem\": {\"workdir\": \"read\", \"read\": [\"~/tools\"], \"deny\": "
                   "[\"$WORKDIR/**/.env\"]},"
                   " \"network\": {\"block\": false}, \"rollback\": {\"enabled\": true, \"exclude\": "
                   "[\"**/target\"]},"
                   " \"commands\": {\"deny\": [\"sudo\"]}, \"environment\": {\"set\": {\"A\": \"b\"}}}");
        if (resolve(&f, &p, &err) < 0)
                fail_msg("%s", err);
        assert_non_null(g = grant(&p, work));
        assert_int_equal(g->access, NONO_ACCESS_READ | NONO_ACCESS_EXEC);
        snprintf(path, sizeof(path), "%s/home/tools", tdir);
        assert_non_null(g = grant(&p, path));
        assert_true(g->optional);
        assert_true(p.allow_net);
        assert_false(p.net_block);
        assert_true(p.rollback);
        assert_true(has(p.rollback_exclude, "**/target"));
        assert_true(has(p.cmd_deny, "sudo"));
        assert_true(has(p.env_set, "A=b"));
        snprintf(path, sizeof(path), "%s/**/.env", work);
        assert_non_null(deny(&p, path));
        /* a symlinked ~/.aws is masked where it really is */
        snprintf(path, sizeof(path), "%s/real-secrets", tdir);
        assert_non_null(deny(&p, path));
        nono_policy_free(&p);
}

/* Deny paths are resolved to where they really are, whatever else the profile lists and in whatever order
 * (the resolution remembers every prefix it tried, launcher/policy.c canon_lookup). */
static void deny_canonical(const char *order[], size_t n)
{
        struct nono_policy_flags f = {.profile = "canon"};
        struct nono_policy p;
        char *err = NULL, json[4096], path[1024];
        size_t len = 0;

        len += (size_t)snprintf(json + len, sizeof(json) - len, "{\"filesystem\": {\"deny\": [");
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(json + len, sizeof(json) - len, "%s\"%s\"", i ? ", " : "", order[i]);
        snprintf(json + len, sizeof(json) - len, "]}}");
        write_file("cfg/nono/profiles/canon.json", json);
        if (resolve(&f, &p, &err) < 0)
                fail_msg("%s", err);
        const char *want[] = {"elsewhere/sub/secret", "home/absent/a/b", "home/absent/c",  "elsewhere/f",
                              "home/dir/plain",       "elsewhere/g*",    "home/dir/x/**/k"};
        for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
                snprintf(path, sizeof(path), "%s/%s", tdir, want[i]);
                if (!deny(&p, path))
                        fail_msg("no deny %s (order starting with %s)", path, order[0]);
        }
        nono_policy_free(&p);
}

static void test_deny_canonical(void **state)
{
        char path[1024], link[1024];

        mkdirs("cfg/nono/profiles");
        mkdirs("home/dir/x");
        mkdirs("elsewhere/sub");
        write_file("elsewhere/f", "f");
        write_file("home/dir/plain", "p");
        snprintf(path, sizeof(path), "%s/elsewhere", tdir);
        snprintf(link, sizeof(link), "%s/home/link-dir", tdir);
        assert_int_equal(symlink(path, link), 0);
        snprintf(link, sizeof(link), "%s/home/dir/file-link", tdir);
        assert_int_equal(symlink("../../elsewhere/f", link), 0);
        const char *a[] = {"~/link-dir/sub/secret", "~/absent/a/b",  "~/absent/c",  "~/dir/file-link",
                           "~/dir/plain",           "~/link-dir/g*", "~/dir/x/**/k"};
        const char *b[] = {"~/dir/x/**/k", "~/link-dir/g*", "~/dir/plain",          "~/dir/file-link",
                           "~/absent/c",   "~/absent/a/b",  "~/link-dir/sub/secret"};
        deny_canonical(a, sizeof(a) / sizeof(*a));
        deny_canonical(b, sizeof(b) / sizeof(*b));
}

static void test_json(void **state)
{
        struct nono_policy_flags f = {.profile = "claude-code"};
        struct nono_policy p;
        char *err = NULL, *s;
        cJSON *o;

        assert_int_equal(resolve(&f, &p, &err), 0);
        s = nono_policy_to_json(&p);
        o = cJSON_Parse(s);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "profile")->valuestring, "claude-code");
        assert_true(cJSON_IsArray(cJSON_GetObjectItem(o, "grants")));
        assert_true(cJSON_IsArray(cJSON_GetObjectItem(o, "denies")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "network"), "block")));
        assert_non_null(strstr(s, "\"api.anthropic.com\""));
        cJSON_Delete(o);
        free(s);
        nono_policy_free(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_default, setup, teardown_env),
            cmocka_unit_test_setup_teardown(test_flags_add, setup, teardown_env),
            cmocka_unit_test_setup_teardown(test_flag_errors, setup, teardown_env),
            cmocka_unit_test_setup_teardown(test_invalid_profile, setup, teardown_env),
            cmocka_unit_test_setup_teardown(test_profile_settings, setup, teardown_env),
            cmocka_unit_test_setup_teardown(test_json, setup, teardown_env),
            cmocka_unit_test_setup_teardown(test_deny_canonical, setup, teardown_env),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
