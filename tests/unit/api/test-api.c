/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-api.c - libnono's public API (nono.h), used the way an SDK uses it: only nono.h, linked against
 * libnono.so. A real sandboxed --rollback session is run, then listed, shown, audited, verified, restored and
 * the restore undone; and the errors a caller gets for bad input carry a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nono.h"

static char home[4096], proj[4096];

static const char *P(const char *name)
{
        static char buf[2][8192];
        static int k;
        k ^= 1;
        snprintf(buf[k], sizeof buf[k], "%s/%s", proj, name);
        return buf[k];
}

static void put(const char *path, const char *s)
{
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(s, f);
        assert_int_equal(fclose(f), 0);
}

/* The file's content ("<absent>" when it does not exist). */
static const char *get(const char *path)
{
        static char buf[256];
        FILE *f = fopen(path, "r");
        if (!f)
                return "<absent>";
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

static int setup(void **s)
{
        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(home, sizeof home, "%s/nono-api-home.XXXXXX", tmp);
        snprintf(proj, sizeof proj, "%s/nono-api-proj.XXXXXX", tmp);
        if (!mkdtemp(home) || !mkdtemp(proj))
                return -1;
        /* the store lives in NONO_HOME, for nono_api_run and nono_api_open(NULL, ...) alike */
        setenv("NONO_HOME", home, 1);
        char *real = realpath(proj, NULL);
        snprintf(proj, sizeof proj, "%s", real);
        free(real);
        return 0;
}

static int teardown(void **s)
{
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", home, proj);
        return system(cmd) == 0 ? 0 : -1;
}

struct evcount {
        int writes_keep, unlinks_gone;
};

static int on_ev(const struct nono_api_event *ev, void *u)
{
        struct evcount *c = u;
        /* as root the kernel may write through passthrough: bytes not counted, the change still shown */
        if (!strcmp(ev->type, "file") && ev->path && !strcmp(ev->path, "keep") && ev->data_changed &&
            (ev->bytes_written > 0) == ev->bytes_counted)
                c->writes_keep++;
        if (!strcmp(ev->type, "file") && ev->path && !strcmp(ev->path, "gone") && !strcmp(ev->op, "unlink") &&
            ev->result == 0)
                c->unlinks_gone++;
        return 0;
}

static char *show(nono_api *n, const char *id, int mode)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_non_null(f);
        assert_int_equal(nono_api_show(n, id, NULL, mode, false, f), 0);
        fclose(f);
        return out;
}

static void t_session_round_trip(void **s)
{
        put(P("keep"), "old\n");
        put(P("gone"), "bye\n");
        const char *allow[] = {proj, NULL};
        struct nono_api_run_opts o = {.allow = allow, .workdir = proj, .rollback = true};
        char *argv[] = {"/bin/sh", "-c", "echo new > keep && rm gone && echo x > made", NULL};

        assert_int_equal(nono_api_version(), NONO_API_VERSION);
        assert_int_equal(nono_api_run(&o, argv), 0);
        assert_string_equal(get(P("keep")), "new\n");
        assert_string_equal(get(P("gone")), "<absent>");

        /* the agent's exit status is the call's */
        char *argv7[] = {"/bin/sh", "-c", "exit 7", NULL};
        struct nono_api_run_opts o7 = {.allow = allow, .workdir = proj};
        assert_int_equal(nono_api_run(&o7, argv7), 7);

        nono_api *n;
        assert_int_equal(nono_api_open(NULL, true, &n), 0);
        struct nono_api_session *v;
        size_t count;
        assert_int_equal(nono_api_sessions(n, &v, &count), 0);
        assert_int_equal(count, 2);
        assert_true(v[0].rollback);
        assert_false(v[1].rollback);
        assert_int_equal(v[1].exit_status, 7);
        char id[16];
        snprintf(id, sizeof id, "%s", v[0].id);
        assert_int_equal(v[0].state, NONO_API_FINISHED);
        assert_int_equal(v[0].exit_status, 0);
        assert_string_equal(v[0].argv[0], "/bin/sh");
        assert_string_equal(v[0].roots[0], proj);
        assert_int_equal(v[0].created, 1);
        assert_int_equal(v[0].modified, 1);
        assert_int_equal(v[0].deleted, 1);
        assert_true(v[0].preimage_bytes >= 8); /* "old\n" and "bye\n" */
        size_t v0_roots = 0;
        while (v[0].roots[v0_roots])
                v0_roots++;
        nono_api_sessions_free(v, count);

        char *d = show(n, id, NONO_API_SHOW_DIFF);
        assert_non_null(strstr(d, "-old"));
        assert_non_null(strstr(d, "+new"));
        assert_non_null(strstr(d, "deleted file"));
        assert_non_null(strstr(d, "new file mode 100644"));
        /* "+++ b/made" with one root, "+++ b/<root>/made" when the profile added another (~/.gitconfig) */
        char made_hdr[8300];
        snprintf(made_hdr, sizeof made_hdr, "+++ b/%s\n", v0_roots > 1 ? P("made") + 1 : "made");
        assert_non_null(strstr(d, made_hdr));
        free(d);
        d = show(n, id, NONO_API_SHOW_JSON);
        assert_non_null(strstr(d, "\"keep\""));
        free(d);

        struct evcount ec = {0};
        assert_int_equal(nono_api_events(n, id, 1, on_ev, &ec), 0);
        assert_int_equal(ec.writes_keep, 1);
        assert_int_equal(ec.unlinks_gone, 1);
        assert_int_equal(nono_api_verify(n, id, NULL), 0);

        /* a read-only handle cannot restore, and says so */
        assert_true(nono_api_restore(n, id, NULL, 0, NULL, NULL) < 0);
        assert_true(strlen(nono_api_error()) > 0);
        nono_api_close(n);

        assert_int_equal(nono_api_open(NULL, false, &n), 0);
        struct nono_api_restore_result res;
        FILE *devnull = fopen("/dev/null", "w");
        assert_int_equal(nono_api_restore(n, id, NULL, NONO_API_RESTORE_DRY_RUN, devnull, &res), 0);
        assert_string_equal(get(P("keep")), "new\n"); /* dry run: nothing changed */
        assert_int_equal(nono_api_restore(n, id, NULL, 0, devnull, &res), 0);
        assert_string_equal(get(P("keep")), "old\n");
        assert_string_equal(get(P("gone")), "bye\n");
        assert_string_equal(get(P("made")), "<absent>");
        assert_int_equal(res.removed, 1); /* made */
        assert_int_equal(res.created, 1); /* gone */
        assert_true(res.restored >= 1);   /* keep (and the directory holding them) */
        assert_int_equal(res.conflicts, 0);

        /* the restore is a session of its own; restoring it puts the agent's work back */
        struct nono_api_session rs;
        assert_int_equal(nono_api_session(n, res.restore_id, &rs), 0);
        assert_true(rs.is_restore);
        assert_string_equal(rs.parent, id);
        nono_api_session_clear(&rs);
        struct nono_api_session orig;
        assert_int_equal(nono_api_session(n, id, &orig), 0);
        assert_int_equal(orig.state, NONO_API_RESTORED);
        nono_api_session_clear(&orig);
        char rid[16];
        snprintf(rid, sizeof rid, "%s", res.restore_id);
        assert_int_equal(nono_api_restore(n, rid, NULL, 0, devnull, &res), 0);
        fclose(devnull);
        assert_string_equal(get(P("keep")), "new\n");
        assert_string_equal(get(P("gone")), "<absent>");
        assert_string_equal(get(P("made")), "x\n");
        nono_api_close(n);
}

static void t_errors(void **s)
{
        nono_api *n;
        assert_int_equal(nono_api_open(NULL, false, &n), 0);
        struct nono_api_session x;
        assert_int_equal(nono_api_session(n, "zzzz", &x), -ENOENT);
        assert_non_null(strstr(nono_api_error(), "no session 'zzzz'"));
        assert_int_equal(nono_api_show(n, "zzzz", NULL, NONO_API_SHOW_DIFF, false, NULL), -ENOENT);
        assert_int_equal(nono_api_restore(n, "zzzz", NULL, 0, NULL, NULL), -ENOENT);
        struct nono_api_session *v;
        size_t count;
        assert_int_equal(nono_api_sessions(n, &v, &count), 0);
        assert_true(count > 0);
        assert_int_equal(nono_api_show(n, v[0].id, NULL, 42, false, NULL), -EINVAL);
        const char *outside[] = {"/etc/passwd", NULL};
        assert_int_equal(nono_api_show(n, v[0].id, outside, NONO_API_SHOW_NAMES, false, NULL), -ENOENT);
        assert_non_null(strstr(nono_api_error(), "not inside any root"));
        nono_api_sessions_free(v, count);
        nono_api_close(n);

        /* a home that is a file: a message that names it */
        char bad[8192];
        snprintf(bad, sizeof bad, "%s/keep", proj);
        assert_true(nono_api_open(bad, true, &n) < 0);
        assert_null(n);
        assert_true(strlen(nono_api_error()) > 0);

        /* no command: the usage status, and a message */
        struct nono_api_run_opts o = {0};
        assert_int_equal(nono_api_run(&o, NULL), 2);
        assert_non_null(strstr(nono_api_error(), "no command"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_session_round_trip),
            cmocka_unit_test(t_errors),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
