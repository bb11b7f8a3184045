/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-profile: loading, checking and merging profiles. Each broken profile must be reported with the
 * right file, line, column and JSON pointer; merging must follow "lists add, scalars override"; no chain
 * of profiles can drop a deny group.
 */
#include "launcher/policy.h"
#include "launcher/profile.h"
#include "test-common.h"

static struct nono_vars vars;

static int setup(void **state)
{
        char wd[1024], *err = NULL;

        if (setup_env(state) < 0)
                return -1;
        snprintf(wd, sizeof(wd), "%s/work", tdir);
        if (nono_vars_init(&vars, wd, &err) < 0) {
                free(err);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        nono_vars_free(&vars);
        return teardown_env(state);
}

static void print_diags(const struct nono_diags *d)
{
        nono_diags_print(d, stderr);
}

/* Asserts that d holds an error at file (suffix), line:col, pointer, whose message contains msg. */
static void expect_error(const struct nono_diags *d, const char *file, unsigned line, unsigned col,
                         const char *pointer, const char *msg)
{
        for (size_t i = 0; i < d->n; i++) {
                const struct nono_diag *g = &d->v[i];
                size_t fl = g->file ? strlen(g->file) : 0;
                if (g->severity != NONO_DIAG_ERROR || !strstr(g->msg, msg))
                        continue;
                if (file && (fl < strlen(file) || strcmp(g->file + fl - strlen(file), file)))
                        continue;
                if (g->line == line && g->col == col &&
                    ((!pointer && !g->pointer) || (pointer && g->pointer && !strcmp(pointer, g->pointer))))
                        return;
        }
        print_diags(d);
        fail_msg("no error \"%s\" at %s:%u:%u %s", msg, file, line, col, pointer ? pointer : "(none)");
}

static bool has_str(char **v, const char *s)
{
        for (; v && *v; v++)
                if (!strcmp(*v, s))
                        return true;
        return false;
}

static const struct nono_profile_deny *find_deny(const struct nono_profile *p, const char *path)
{
        for (size_t i = 0; i < p->n_deny; i++)
                if (!strcmp(p->deny[i].path, path))
                        return &p->deny[i];
        return NULL;
}

static void test_builtins_load(void **state)
{
        static const char *const names[] = {"default", "python-dev",  "node-dev", "rust-dev",
                                            "go-dev",  "claude-code", "codex"};
        char ssh[1024];

        snprintf(ssh, sizeof(ssh), "%s/home/.ssh", tdir);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct nono_profile p;
                struct nono_diags d = {0};
                const struct nono_profile_deny *dn;

                if (nono_profile_load(names[i], &vars, NONO_PROFILE_CHECK_PATHS, &p, &d) != 0) {
                        print_diags(&d);
                        fail_msg("built-in %s does not load", names[i]);
                }
                assert_int_equal(d.n_errors, 0);
                assert_string_equal(p.name, names[i]);
                assert_string_equal(p.origin, "built-in");
                assert_true(p.net_block);
                assert_true(has_str(p.system, "/usr"));
                dn = find_deny(&p, ssh);
                assert_non_null(dn);
                assert_string_equal(dn->group, "credentials");
                assert_int_equal(dn->access, NONO_ACCESS_READ | NONO_ACCESS_WRITE);
                nono_profile_free(&p);
                nono_diags_free(&d);
        }
}

static void test_merge_left_to_right(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};
        char path[1024];

        write_user("base1", "{\"filesystem\": {\"allow\": [\"$HOME/a\"], \"workdir\": \"read\"},"
                            " \"network\": {\"allow_domain\": [\"one.example\"]},"
                            " \"environment\": {\"set\": {\"X\": \"1\", \"Y\": \"base1\"}}}");
        write_user("base2",
                   "{\"filesystem\": {\"read\": [\"~/b\"], \"workdir\": \"readwrite\"},"
                   " \"network\": {\"allow_domain\": [\"two.example\", \"one.example\"], \"block\": false},"
                   " \"environment\": {\"set\": {\"Y\": \"base2\"}}}");
        write_user("child", "{\"extends\": [\"base1\", \"base2\"], \"network\": {\"block\": true},"
                            " \"filesystem\": {\"allow\": [\"${WORKDIR}/sub/\"]},"
                            " \"security\": {\"capability_elevation\": true}}");
        assert_int_equal(nono_profile_load("child", &vars, 0, &p, &d), 0);
        assert_string_equal(p.origin, "user");
        assert_true(has_str(p.extends, "base1") && has_str(p.extends, "base2"));
        snprintf(path, sizeof(path), "%s/home/a", tdir);
        assert_true(has_str(p.allow, path));
        snprintf(path, sizeof(path), "%s/home/b", tdir);
        assert_true(has_str(p.read, path));
        snprintf(path, sizeof(path), "%s/work/sub", tdir); /* variable expanded, trailing '/' dropped */
        assert_true(has_str(p.allow, path));
        assert_int_equal(p.workdir, NONO_WORKDIR_READWRITE); /* base2 overrides base1 */
        assert_true(p.net_block);                            /* child overrides base2 */
        assert_true(p.capability_elevation);
        assert_true(has_str(p.allow_domain, "one.example") && has_str(p.allow_domain, "two.example"));
        assert_null(p.allow_domain[2]); /* union, no duplicate */
        assert_true(has_str(p.env_set, "X=1"));
        assert_true(has_str(p.env_set, "Y=base2"));
        assert_false(has_str(p.env_set, "Y=base1"));
        /* the deny groups are there although no file in the chain names them */
        assert_true(p.n_deny > 20);
        nono_profile_free(&p);
        nono_diags_free(&d);
}

static void test_env_set_override_chain(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};
        size_t n = 0;

        write_user("e1", "{\"environment\": {\"set\": {\"Y\": \"1\", \"Z\": \"z\"}}}");
        write_user("e2", "{\"extends\": \"e1\", \"environment\": {\"set\": {\"Y\": \"2\"}}}");
        write_user("e3", "{\"extends\": \"e2\", \"environment\": {\"set\": {\"Y\": \"1\"}}}");
        assert_int_equal(nono_profile_load("e3", &vars, 0, &p, &d), 0);
        for (char **kv = p.env_set; *kv; kv++)
                n += !strncmp(*kv, "Y=", 2);
        assert_int_equal(n, 1);
        assert_true(has_str(p.env_set, "Y=1"));
        assert_true(has_str(p.env_set, "Z=z"));
        nono_profile_free(&p);
        nono_diags_free(&d);
}

static void test_schema_errors(void **state)
{
        static const struct {
                const char *text;
                unsigned line, col;
                const char *pointer, *msg;
        } cases[] = {
            {"{\n  \"filesytem\": {}\n}", 2, 3, "/filesytem", "unknown key \"filesytem\""},
            {"{\"network\": {\"block\": \"yes\"}}", 1, 23, "/network/block", "expected true or false"},
            {"{\"filesystem\": {\"allow\": \"/x\"}}", 1, 26, "/filesystem/allow", "expected a list"},
            {"{\"filesystem\": {\"allow\": [\"/a\", 3]}}", 1, 33, "/filesystem/allow/1", "expected a string"},
            {"{\"filesystem\": {\"read\": [\"rel/x\"]}}", 1, 26, "/filesystem/read/0", "is relative"},
            {"{\"filesystem\": {\"read\": [\"/a/*\"]}}", 1, 26, "/filesystem/read/0", "glob"},
            {"{\"filesystem\": {\"read\": [\"$HOME/$NOPE\"]}}", 1, 26, "/filesystem/read/0",
             "unknown variable"},
            {"{\"filesystem\": {\"workdir\": \"rw\"}}", 1, 28, "/filesystem/workdir", "is not \"readwrite\""},
            {"{\"filesystem\": {\"deny\": [{\"access\": \"write\"}]}}", 1, 26, "/filesystem/deny/0",
             "needs \"path\""},
            {"{\"filesystem\": {\"deny_groups\": {\"credentials\": false}}}", 1, 48,
             "/filesystem/deny_groups/credentials", "cannot be removed"},
            {"{\"filesystem\": {\"deny_groups\": {\"passwords\": true}}}", 1, 33,
             "/filesystem/deny_groups/passwords", "unknown key"},
            {"{\"network\": {\"allow_domain\": [\"bad domain\"]}}", 1, 31, "/network/allow_domain/0",
             "not a host name"},
            {"{\"environment\": {\"set\": {\"LD_PRELOAD\": \"/x\"}}}", 1, 26, "/environment/set/LD_PRELOAD",
             "cannot be set"},
            {"{\"commands\": {\"allow\": [\"bin/git\"]}}", 1, 25, "/commands/allow/0", "bare name"},
            {"{\"rollback\": {\"exclude\": [\"a\", \"a\"]}}", 1, 32, "/rollback/exclude/1", "listed twice"},
            {"{\"name\": \"other\"}", 1, 10, "/name", "does not match the file name"},
            {"{\"a\": 1, \"a\": 2}", 1, 10, "/a", "duplicate key"},
            {"[]", 1, 1, "", "a profile is a JSON object"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct nono_profile p;
                struct nono_diags d = {0};

                write_user("broken", cases[i].text);
                if (nono_profile_load("broken", &vars, 0, &p, &d) != -EINVAL)
                        fail_msg("case %zu (%s) was accepted", i, cases[i].text);
                expect_error(&d, "/broken.json", cases[i].line, cases[i].col, cases[i].pointer, cases[i].msg);
                nono_diags_free(&d);
        }
}

static void test_syntax_error_position(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};

        write_user("syntax", "{\n  \"description\": \"x\",\n  \"extends\": \"default\",\n}\n");
        assert_int_equal(nono_profile_load("syntax", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/syntax.json", 4, 1, NULL, "trailing comma");
        nono_diags_free(&d);
}

static void test_extends_errors(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};

        write_user("cyc-a", "{\"extends\": \"cyc-b\"}");
        write_user("cyc-b", "{\n\"extends\": [\"default\", \"cyc-a\"]}");
        assert_int_equal(nono_profile_load("cyc-a", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/cyc-b.json", 2, 24, "/extends/1", "extends cycle: cyc-a -> cyc-b -> cyc-a");
        nono_diags_free(&d);

        write_user("self", "{\"extends\": \"self\"}");
        assert_int_equal(nono_profile_load("self", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/self.json", 1, 13, "/extends", "extends cycle: self -> self");
        nono_diags_free(&d);

        write_user("orphan", "{\"extends\": [\"default\", \"no-such-base\"]}");
        assert_int_equal(nono_profile_load("orphan", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/orphan.json", 1, 25, "/extends/1", "\"no-such-base\": no such profile");
        nono_diags_free(&d);

        /* an error in a base is reported in the base's file */
        write_user("badbase", "{\"network\": {\"block\": 1}}");
        write_user("usesbad", "{\"extends\": \"badbase\"}");
        assert_int_equal(nono_profile_load("usesbad", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/badbase.json", 1, 23, "/network/block", "expected true or false");
        nono_diags_free(&d);

        assert_int_equal(nono_profile_load("does-not-exist", &vars, 0, &p, &d), -ENOENT);
        nono_diags_free(&d);
}

static void test_contradictions(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};

        write_user("rw", "{\"filesystem\": {\"read\": [\"$HOME/p\"]},\n \"extends\": \"rwbase\"}");
        write_user("rwbase", "{\"filesystem\": {\"allow\": [\"~/p/\"]}}");
        assert_int_equal(nono_profile_load("rw", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/rwbase.json", 1, 27, "/filesystem/allow/0", "is read-only");
        nono_diags_free(&d);

        write_user("lift", "{\"filesystem\": {\"read\": [\"$HOME/.aws/config\"]}}");
        assert_int_equal(nono_profile_load("lift", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/lift.json", 1, 26, "/filesystem/read/0", "deny group \"credentials\"");
        nono_diags_free(&d);

        /* shell_configs only denies writing: reading ~/.bashrc is fine, writing it is not */
        write_user("rc", "{\"filesystem\": {\"read\": [\"$HOME/.bashrc\"]}}");
        assert_int_equal(nono_profile_load("rc", &vars, 0, &p, &d), 0);
        nono_profile_free(&p);
        write_user("rc", "{\"filesystem\": {\"allow\": [\"$HOME/.bashrc\"]}}");
        assert_int_equal(nono_profile_load("rc", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/rc.json", 1, 27, "/filesystem/allow/0", "deny group \"shell_configs\"");
        nono_diags_free(&d);

        write_user("cmd", "{\"commands\": {\"allow\": [\"curl\"], \"deny\": [\"curl\"]}}");
        assert_int_equal(nono_profile_load("cmd", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/cmd.json", 1, 25, "/commands/allow/0", "both allowed and denied");
        nono_diags_free(&d);

        write_user("envc", "{\"extends\": \"default\", \"environment\": {\"set\": {\"GH_TOKEN\": \"x\"}}}");
        assert_int_equal(nono_profile_load("envc", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/envc.json", 1, 60, "/environment/set/GH_TOKEN", "denied by environment.deny");
        nono_diags_free(&d);
}

static void test_deny_group_additions(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};
        char path[1024];
        const struct nono_profile_deny *dn;

        write_user("more", "{\"filesystem\": {\"deny_groups\": {\"credentials\": [\"$HOME/.secret-*\"], "
                           "\"shell_configs\": true}, \"deny\": [\"$WORKDIR/.env\", "
                           "{\"path\": \"$WORKDIR/vendor\", \"access\": \"write\"}]}}");
        assert_int_equal(nono_profile_load("more", &vars, 0, &p, &d), 0);
        snprintf(path, sizeof(path), "%s/home/.secret-*", tdir);
        assert_non_null(dn = find_deny(&p, path));
        assert_string_equal(dn->group, "credentials");
        snprintf(path, sizeof(path), "%s/work/.env", tdir);
        assert_non_null(dn = find_deny(&p, path));
        assert_null(dn->group);
        assert_int_equal(dn->access, NONO_ACCESS_READ | NONO_ACCESS_WRITE);
        snprintf(path, sizeof(path), "%s/work/vendor", tdir);
        assert_non_null(dn = find_deny(&p, path));
        assert_int_equal(dn->access, NONO_ACCESS_WRITE);
        snprintf(path, sizeof(path), "%s/home/.bashrc", tdir);
        assert_non_null(dn = find_deny(&p, path));
        assert_int_equal(dn->access, NONO_ACCESS_WRITE);
        nono_profile_free(&p);
        nono_diags_free(&d);
}

static void test_override(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};
        char path[1024];

        write_user("python-dev", "{\"description\": \"mine\"}");
        assert_int_equal(nono_profile_load("python-dev", &vars, 0, &p, &d), -EINVAL);
        expect_error(&d, "/python-dev.json", 1, 1, "", "add \"override\": true");
        nono_diags_free(&d);

        /* with override, it replaces the built-in; extending its own name means the built-in */
        write_user("python-dev",
                   "{\"override\": true, \"description\": \"mine\", \"extends\": \"python-dev\","
                   " \"filesystem\": {\"allow\": [\"$HOME/extra\"]}}");
        assert_int_equal(nono_profile_load("python-dev", &vars, 0, &p, &d), 0);
        assert_string_equal(p.origin, "user");
        assert_string_equal(p.description, "mine");
        assert_true(has_str(p.allow_domain, "pypi.org"));
        snprintf(path, sizeof(path), "%s/home/extra", tdir);
        assert_true(has_str(p.allow, path));
        nono_profile_free(&p);
        nono_diags_free(&d);
}

static void test_missing_path_warning(void **state)
{
        struct nono_profile p;
        struct nono_diags d = {0};

        mkdirs("home/there");
        write_user("warn", "{\"filesystem\": {\"allow\": [\"$HOME/there\", \"$HOME/not-there\"]}}");
        assert_int_equal(nono_profile_load("warn", &vars, NONO_PROFILE_CHECK_PATHS, &p, &d), 0);
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.v[0].severity, NONO_DIAG_WARNING);
        assert_string_equal(d.v[0].pointer, "/filesystem/allow/1");
        assert_non_null(strstr(d.v[0].msg, "does not exist"));
        nono_profile_free(&p);
        nono_diags_free(&d);
}

static void test_vars(void **state)
{
        char *out, *bad, want[1024];

        assert_int_equal(nono_vars_expand(&vars, "~/x/${XDG_CONFIG_HOME}/$UID", &out, &bad), 0);
        snprintf(want, sizeof(want), "%s/home/x/%s/cfg/%u", tdir, tdir, (unsigned)getuid());
        assert_string_equal(out, want);
        free(out);
        assert_int_equal(nono_vars_expand(&vars, "$XDG_CACHE_HOME:$XDG_DATA_HOME", &out, &bad), 0);
        snprintf(want, sizeof(want), "%s/home/.cache:%s/home/.local/share", tdir, tdir);
        assert_string_equal(out, want);
        free(out);
        assert_int_equal(nono_vars_expand(&vars, "/a/$PATH/b", &out, &bad), -EINVAL);
        assert_string_equal(bad, "$PATH");
        free(bad);
        assert_int_equal(nono_vars_expand(&vars, "/a/${HOME", &out, &bad), -EINVAL);
        free(bad);
}

static void test_globs(void **state)
{
        static const struct {
                const char *pattern, *path;
                bool match, covers;
        } cases[] = {
            {"/h/.ssh", "/h/.ssh", true, true},
            {"/h/.ssh", "/h/.ssh/id_rsa", false, true},
            {"/h/.ssh", "/h/.sshx", false, false},
            {"/h/.ssh", "/h", false, false},
            {"/h/.cargo/credentials*", "/h/.cargo/credentials.toml", true, true},
            {"/h/.cargo/credentials*", "/h/.cargo/x/credentials", false, false},
            {"/h/*/secret", "/h/a/secret", true, true},
            {"/h/*/secret", "/h/a/b/secret", false, false},
            {"/h/**/secret", "/h/a/b/secret", true, true},
            {"/h/**/secret", "/h/secret", true, true},
            {"/h/**", "/h/a/b", true, true},
            {"/h/?.txt", "/h/a.txt", true, true},
            {"/h/?.txt", "/h/ab.txt", false, false},
            {"/w/**/.env", "/w/x/.env/inner", false, true},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (nono_glob_match(cases[i].pattern, cases[i].path) != cases[i].match)
                        fail_msg("match(%s, %s) != %d", cases[i].pattern, cases[i].path, cases[i].match);
                if (nono_glob_covers(cases[i].pattern, cases[i].path) != cases[i].covers)
                        fail_msg("covers(%s, %s) != %d", cases[i].pattern, cases[i].path, cases[i].covers);
        }
}

static void test_list(void **state)
{
        struct nono_profile_info *v;
        size_t n;
        bool def = false, mine = false;

        write_user("zz-mine", "{\"description\": \"my profile\"}");
        assert_int_equal(nono_profile_list(&v, &n), 0);
        for (size_t i = 0; i < n; i++) {
                if (!strcmp(v[i].name, "default") && !strcmp(v[i].origin, "built-in"))
                        def = true;
                if (!strcmp(v[i].name, "zz-mine")) {
                        mine = true;
                        assert_string_equal(v[i].origin, "user");
                        assert_string_equal(v[i].description, "my profile");
                }
                if (i)
                        assert_true(strcmp(v[i - 1].name, v[i].name) <= 0);
        }
        assert_true(def && mine);
        nono_profile_info_free(v, n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_builtins_load, setup, teardown),
            cmocka_unit_test_setup_teardown(test_merge_left_to_right, setup, teardown),
            cmocka_unit_test_setup_teardown(test_env_set_override_chain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_schema_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_syntax_error_position, setup, teardown),
            cmocka_unit_test_setup_teardown(test_extends_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_contradictions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_deny_group_additions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_override, setup, teardown),
            cmocka_unit_test_setup_teardown(test_missing_path_warning, setup, teardown),
            cmocka_unit_test_setup_teardown(test_vars, setup, teardown),
            cmocka_unit_test_setup_teardown(test_globs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
