/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-audit-seal - the audit key, sealing and verification against every kind of tampering: an event
 * modified, deleted, reordered, appended after the seal, the tail truncated, the session record edited, the
 * trail re-sealed with another key, the local key swapped; and a session cut short by SIGKILL.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/audit.h"
#include "launcher/seal.h"
#include "testlib.h"

struct fx {
        char dir[64];
        nono_store *st;
        char id[NONO_SESSION_ID_LEN + 1];
        uint64_t n; /* events in the session */
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        char buf[128];
        char *argv[] = {"agent", "run", NULL};
        struct nono_session s;

        snprintf(f->dir, sizeof(f->dir), "%s/nono-seal-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        snprintf(buf, sizeof(buf), "%s/home", f->dir);
        setenv("NONO_HOME", buf, 1);
        snprintf(buf, sizeof(buf), "%s/config", f->dir);
        setenv("XDG_CONFIG_HOME", buf, 1);
        assert_int_equal(nono_store_open(NULL, 0, &f->st), 0);
        assert_int_equal(tl_session_create(f->st, argv, &s), 0);
        snprintf(f->id, sizeof(f->id), "%s", s.id);
        assert_int_equal(nono_audit_session_start(f->st, s.id, argv, "{\"profile\":\"t\"}", -1), 0);
        for (int i = 0; i < 6; i++) {
                char p[32];
                snprintf(p, sizeof(p), "file%d", i);
                struct nono_event ev = {.type = NONO_EV_FILE,
                                        .op = NONO_OP_OPEN,
                                        .path = p,
                                        .pid = 42,
                                        .time_ns = 1000 + i,
                                        .flags = i == 3 ? NONO_EVF_VIOLATION : 0};
                assert_int_equal(nono_events_append(f->st, s.id, &ev, 1, 0), 0);
        }
        assert_int_equal(tl_session_finish(f->st, &s, 0), 0);
        f->n = 8; /* start + 6 + end */
        nono_session_clear(&s);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char cmd[128];

        nono_store_close(f->st);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void verify(struct fx *f, const uint8_t *pub, struct nono_verify_report *r)
{
        assert_int_equal(nono_audit_verify(f->st, f->id, pub, r), 0);
}

struct grab {
        uint64_t seq, last;
        struct nono_event ev;
        char path[64];
        nono_digest last_chain;
};

static int grab_cb(const struct nono_event *ev, void *u)
{
        struct grab *g = u;

        g->last = ev->seq;
        g->last_chain = ev->chain;
        if (ev->seq == g->seq) {
                g->ev = *ev;
                snprintf(g->path, sizeof(g->path), "%s", ev->path ? ev->path : "");
                g->ev.path = ev->path ? g->path : NULL;
                g->ev.detail = NULL; /* the tests grab file events only */
        }
        return 0;
}

/* Fills *g with event seq (0: just the last seq and chain); g->ev.path points into g itself. */
static void grab(struct fx *f, uint64_t seq, struct grab *g)
{
        memset(g, 0, sizeof(*g));
        g->seq = seq;
        assert_int_equal(nono_events_iterate(f->st, f->id, 1, grab_cb, g), 0);
        if (seq)
                assert_int_equal(g->ev.seq, seq);
}

static void test_key_created_private(void **state)
{
        struct fx *f = *state;
        struct nono_audit_key k1, k2;
        char dir[256], path[300];
        struct stat st;

        assert_int_equal(nono_audit_key_dir(dir, sizeof(dir)), 0);
        assert_int_equal(nono_audit_key_load(NULL, false, &k1), -ENOENT);
        assert_int_equal(nono_audit_key_load(NULL, true, &k1), 0);
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        snprintf(path, sizeof(path), "%s/audit.key", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(nono_audit_key_load(NULL, true, &k2), 0);
        assert_memory_equal(k1.pub, k2.pub, 32); /* created once, then reused */
        snprintf(path, sizeof(path), "%s/audit.pub", dir);
        uint8_t pub[32];
        assert_int_equal(nono_audit_pubkey_read(path, pub), 0);
        assert_memory_equal(pub, k1.pub, 32);
        snprintf(path, sizeof(path), "%s/audit.key", dir);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(nono_audit_key_load(NULL, true, &k2), -EPERM);
        assert_non_null(strstr(nono_audit_errmsg(), "chmod 600"));
        (void)f;
}

static void write_text(const char *path, const char *text)
{
        FILE *o = fopen(path, "w");
        assert_non_null(o);
        fputs(text, o);
        assert_int_equal(fclose(o), 0);
        assert_int_equal(chmod(path, 0600), 0);
}

/* The key file nono writes is read without OpenSSL's PEM machinery (seal.c key_parse_fast); any other
 * layout of the same key still loads through OpenSSL, and a damaged key is refused either way. */
static void test_key_layouts(void **state)
{
        struct fx *f = *state;
        struct nono_audit_key k1, k2;
        char dir[256], path[300], text[512], b64[65], *crlf = text;
        FILE *in;

        assert_int_equal(nono_audit_key_load(NULL, true, &k1), 0);
        assert_int_equal(nono_audit_key_dir(dir, sizeof(dir)), 0);
        snprintf(path, sizeof(path), "%s/audit.key", dir);
        assert_non_null(in = fopen(path, "r"));
        assert_non_null(fgets(text, sizeof(text), in)); /* BEGIN */
        assert_non_null(fgets(b64, sizeof(b64), in));
        fclose(in);
        assert_int_equal(strlen(b64), 64);
        assert_int_equal(nono_audit_key_load(NULL, false, &k2), 0);
        assert_memory_equal(k1.priv, k2.priv, 32);
        assert_memory_equal(k1.pub, k2.pub, 32);
        /* CRLF line ends and text before the PEM block: OpenSSL's reader takes them */
        snprintf(text, sizeof(text),
                 "a comment\r\n-----BEGIN PRIVATE KEY-----\r\n%s\r\n-----END PRIVATE KEY-----\r\n", b64);
        write_text(path, crlf);
        memset(&k2, 0, sizeof(k2));
        assert_int_equal(nono_audit_key_load(NULL, false, &k2), 0);
        assert_memory_equal(k1.priv, k2.priv, 32);
        assert_memory_equal(k1.pub, k2.pub, 32);
        /* the fast layout with a damaged DER prefix (an RSA-looking key) is refused */
        b64[2] = b64[2] == 'A' ? 'B' : 'A';
        snprintf(text, sizeof(text), "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n", b64);
        write_text(path, text);
        assert_int_equal(nono_audit_key_load(NULL, false, &k2), -EINVAL);
        assert_non_null(strstr(nono_audit_errmsg(), "not an Ed25519 PEM private key"));
        (void)f;
}

static void test_untouched_verifies(void **state)
{
        struct fx *f = *state;
        struct nono_verify_report r;

        verify(f, NULL, &r);
        assert_int_equal(r.verdict, NONO_VERIFY_UNSEALED); /* finished, not yet sealed */
        assert_int_equal(r.events, f->n);
        assert_int_equal(nono_audit_seal(f->st, f->id), 0);
        verify(f, NULL, &r);
        assert_int_equal(r.verdict, NONO_VERIFY_OK);
        assert_true(r.signature_ok);
        assert_true(r.key_trusted);
        assert_int_equal(r.events, f->n);
        assert_string_equal(r.problem, "");
}

static void seal_then(struct fx *f)
{
        assert_int_equal(nono_audit_seal(f->st, f->id), 0);
}

static void expect_bad(struct fx *f, uint64_t first_bad, const char *words)
{
        struct nono_verify_report r;

        verify(f, NULL, &r);
        if (r.verdict != NONO_VERIFY_BAD || r.first_bad != first_bad || !strstr(r.problem, words))
                fail_msg("verdict %d first_bad %llu problem '%s' (wanted %llu, '%s')", r.verdict,
                         (unsigned long long)r.first_bad, r.problem, (unsigned long long)first_bad, words);
}

static void test_modified(void **state)
{
        struct fx *f = *state;
        struct grab g;

        seal_then(f);
        grab(f, 5, &g);
        assert_true(g.ev.flags & NONO_EVF_VIOLATION);
        g.ev.flags = 0; /* hide the violation */
        assert_int_equal(nono_events_raw_put(f->st, f->id, &g.ev), 0);
        expect_bad(f, 5, "event 5 does not match its hash");
}

static void test_deleted(void **state)
{
        struct fx *f = *state;

        seal_then(f);
        assert_int_equal(nono_events_raw_delete(f->st, f->id, 3), 0);
        expect_bad(f, 3, "event 3 is missing");
}

static void test_reordered(void **state)
{
        struct fx *f = *state;
        struct grab a, b;

        seal_then(f);
        grab(f, 5, &a);
        grab(f, 6, &b);
        a.ev.seq = 6;
        b.ev.seq = 5;
        assert_int_equal(nono_events_raw_put(f->st, f->id, &a.ev), 0);
        assert_int_equal(nono_events_raw_put(f->st, f->id, &b.ev), 0);
        expect_bad(f, 5, "event 5 does not match");
}

static void test_appended(void **state)
{
        struct fx *f = *state;
        struct grab g;

        seal_then(f);
        grab(f, 0, &g);
        /* chained correctly: only the seal's count can tell */
        struct nono_event ev = {.seq = g.last + 1, .type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "late"};
        nono_event_chain(&g.last_chain, &ev, &ev.chain);
        assert_int_equal(nono_events_raw_put(f->st, f->id, &ev), 0);
        expect_bad(f, f->n + 1, "added after the session was sealed");
}

static void test_truncated(void **state)
{
        struct fx *f = *state;

        seal_then(f);
        assert_int_equal(nono_events_raw_delete(f->st, f->id, f->n), 0);
        expect_bad(f, f->n, "missing");
}

static void test_rewritten_consistently(void **state)
{
        struct fx *f = *state;
        nono_digest prev;

        seal_then(f);
        /* rewrite event 2 and recompute every chain value after it: no event stands out, the seal does */
        for (uint64_t seq = 1; seq <= f->n; seq++) {
                struct grab g;
                grab(f, seq, &g);
                if (seq == 1) {
                        prev = g.ev.chain;
                        continue;
                }
                if (g.ev.type != NONO_EV_FILE)
                        g.ev.detail = NULL;
                if (seq == 2)
                        g.ev.path = "rewritten";
                nono_event_chain(&prev, &g.ev, &g.ev.chain);
                assert_int_equal(nono_events_raw_put(f->st, f->id, &g.ev), 0);
                prev = g.ev.chain;
        }
        /* the store sees its kept head differ (at the last event); the signature fails whatever it says */
        struct nono_verify_report r;
        verify(f, NULL, &r);
        assert_int_equal(r.verdict, NONO_VERIFY_BAD);
        assert_false(r.signature_ok);
}

static void test_session_record_edited(void **state)
{
        struct fx *f = *state;
        struct nono_session s = {0};

        seal_then(f);
        assert_int_equal(nono_session_get(f->st, f->id, &s), 0);
        s.exit_status = 99;
        assert_int_equal(nono_session_update(f->st, &s), 0);
        nono_session_clear(&s);
        expect_bad(f, 0, "the seal does not match");
}

static void test_resealed_with_other_key(void **state)
{
        struct fx *f = *state;
        struct nono_audit_key mine, forger;
        struct nono_verify_report r;
        char dir[128];

        assert_int_equal(nono_audit_key_load(NULL, true, &mine), 0);
        seal_then(f);
        /* a forger edits the session record (the exit status) and re-seals with their own key */
        struct nono_session s = {0};
        assert_int_equal(nono_session_get(f->st, f->id, &s), 0);
        s.exit_status = 1;
        assert_int_equal(nono_session_update(f->st, &s), 0);
        nono_session_clear(&s);
        snprintf(dir, sizeof(dir), "%s/forger", f->dir);
        assert_int_equal(nono_audit_key_load(dir, true, &forger), 0);
        assert_int_equal(nono_audit_seal_with(f->st, f->id, &forger), 0);
        /* against the local (trusted) key: refused */
        expect_bad(f, 0, "not by the trusted key");
        /* against the forger's key given explicitly: consistent (that is all a signature can say) */
        verify(f, forger.pub, &r);
        assert_int_equal(r.verdict, NONO_VERIFY_OK);
        /* and against my key given explicitly: refused */
        verify(f, mine.pub, &r);
        assert_int_equal(r.verdict, NONO_VERIFY_BAD);
}

static void test_local_key_swapped(void **state)
{
        struct fx *f = *state;
        char dir[256], path[300];

        seal_then(f);
        assert_int_equal(nono_audit_key_dir(dir, sizeof(dir)), 0);
        snprintf(path, sizeof(path), "%s/audit.key", dir);
        assert_int_equal(unlink(path), 0);
        struct nono_audit_key other;
        assert_int_equal(nono_audit_key_load(NULL, true, &other), 0); /* a new local key */
        expect_bad(f, 0, "not by the trusted key");
}

static void test_killed_session_is_unsealed(void **state)
{
        struct fx *f = *state;
        struct nono_verify_report r;
        char id[NONO_SESSION_ID_LEN + 1] = {0};
        int p[2];
        pid_t pid;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *argv[] = {"agent", NULL};
                struct nono_session s;
                nono_store *st;
                if (nono_store_open(NULL, 0, &st) < 0 || tl_session_create(st, argv, &s) < 0)
                        _exit(1);
                for (int i = 0; i < 5; i++) {
                        struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "x"};
                        if (nono_events_append(st, s.id, &ev, 1, 0) < 0)
                                _exit(1);
                }
                (void)!write(p[1], s.id, strlen(s.id));
                raise(SIGKILL);
                _exit(1);
        }
        close(p[1]);
        assert_int_equal(read(p[0], id, NONO_SESSION_ID_LEN), NONO_SESSION_ID_LEN);
        close(p[0]);
        assert_int_equal(tl_wait(pid), 128 + SIGKILL);
        assert_int_equal(nono_audit_verify(f->st, id, NULL, &r), 0);
        assert_int_equal(r.verdict, NONO_VERIFY_UNSEALED);
        assert_int_equal(r.events, 5);
        assert_false(r.running); /* reported as crashed, not running */
        /* a broken chain is still BAD even when unsealed */
        assert_int_equal(nono_events_raw_delete(f->st, id, 2), 0);
        assert_int_equal(nono_audit_verify(f->st, id, NULL, &r), 0);
        assert_int_equal(r.verdict, NONO_VERIFY_BAD);
        assert_int_equal(r.first_bad, 2);
}

/* nono run's end: the end event and the seal in one commit, the seal computed before the event is written.
 * The result must be indistinguishable from the end event followed by nono_audit_seal(): it verifies, and
 * tampering with it is caught as with any other session. */
static void end_sealed_session(struct fx *f, int status)
{
        char *argv[] = {"agent", "end", NULL};
        struct nono_session s, fin = {0};
        bool ended = false;

        assert_int_equal(tl_session_create(f->st, argv, &s), 0);
        snprintf(f->id, sizeof(f->id), "%s", s.id);
        assert_int_equal(nono_audit_session_start(f->st, s.id, argv, NULL, -1), 0);
        for (int i = 0; i < 3; i++) {
                struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "x", .pid = 7};
                assert_int_equal(nono_events_append(f->st, s.id, &ev, 1, NONO_ASYNC), 0);
        }
        assert_int_equal(nono_session_get(f->st, s.id, &fin), 0);
        fin.state = NONO_SESSION_FINISHED;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        fin.end_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        fin.exit_status = status;
        fin.preimage_bytes = 12345;
        assert_int_equal(nono_audit_end_sealed(f->st, &fin, NULL, &ended), 0);
        assert_true(ended);
        nono_session_clear(&fin);
        nono_session_clear(&s);
        f->n = 5; /* start + 3 + end */
}

static void test_end_sealed(void **state)
{
        struct fx *f = *state;
        struct nono_verify_report r;
        struct nono_session s = {0};
        struct grab g;

        end_sealed_session(f, 3);
        verify(f, NULL, &r);
        if (r.verdict != NONO_VERIFY_OK)
                fail_msg("verdict %d: %s", r.verdict, r.problem);
        assert_true(r.signature_ok);
        assert_int_equal(r.events, f->n);
        assert_int_equal(nono_session_get(f->st, f->id, &s), 0);
        assert_int_equal(s.state, NONO_SESSION_FINISHED);
        assert_int_equal(s.exit_status, 3);
        assert_int_equal(s.preimage_bytes, 12345);
        assert_int_equal(s.sealed_events, f->n);
        nono_session_clear(&s);
        grab(f, 0, &g);
        assert_int_equal(g.last, f->n); /* the end event is the last, and the seal covers it */

        /* a file event of that session altered afterwards */
        grab(f, 3, &g);
        g.ev.pid = 8;
        assert_int_equal(nono_events_raw_put(f->st, f->id, &g.ev), 0);
        expect_bad(f, 3, "event 3 does not match its hash");
}

static int last_detail_cb(const struct nono_event *ev, void *u)
{
        char *d = u;
        snprintf(d, 512, "%s", ev->detail ? ev->detail : "");
        return 0;
}

/* The end event's counts are the writer's, taken in the same transaction: the three events queued just
 * before it (NONO_ASYNC, never synced) are in them. */
static void test_end_sealed_counts_queued(void **state)
{
        struct fx *f = *state;
        char detail[512] = "";

        end_sealed_session(f, 0);
        assert_int_equal(nono_events_iterate(f->st, f->id, 1, last_detail_cb, detail), 0);
        if (!strstr(detail, "\"events\":4") || !strstr(detail, "\"file\":3"))
                fail_msg("end event detail: %s", detail);
}

static int fill_ok(const struct nono_event_counts *before, struct nono_event *end, void *arg)
{
        (void)before, (void)arg;
        *end = (struct nono_event){.type = NONO_EV_SESSION, .op = NONO_OP_END, .detail = strdup("{}")};
        return end->detail ? 0 : -ENOMEM;
}

static int sign_fails(struct nono_session *rec, const struct nono_event *end, void *arg)
{
        (void)rec, (void)end, (void)arg;
        return -EIO;
}

/* A seal that cannot be made leaves nothing of the end behind: no end event, the record untouched. */
static void test_end_sealed_sign_fails_writes_nothing(void **state)
{
        struct fx *f = *state;
        char *argv[] = {"agent", "end", NULL};
        struct nono_session s, fin = {0}, after = {0};
        struct nono_event_counts c0, c1;
        struct nono_end_ops ops = {.fill = fill_ok, .sign = sign_fails};

        assert_int_equal(tl_session_create(f->st, argv, &s), 0);
        assert_int_equal(nono_audit_session_start(f->st, s.id, argv, NULL, -1), 0);
        assert_int_equal(nono_events_count(f->st, s.id, &c0), 0);
        assert_int_equal(nono_session_get(f->st, s.id, &fin), 0);
        fin.state = NONO_SESSION_FINISHED;
        fin.exit_status = 5;
        assert_true(nono_events_end_sealed(f->st, &fin, &ops) < 0);
        assert_int_equal(nono_events_count(f->st, s.id, &c1), 0);
        assert_int_equal(c1.by_type[0], c0.by_type[0]);
        assert_int_equal(nono_session_get(f->st, s.id, &after), 0);
        assert_int_equal(after.state, NONO_SESSION_RUNNING);
        assert_int_equal(after.sealed_events, 0);
        nono_session_clear(&after);
        nono_session_clear(&fin);
        nono_session_clear(&s);
}

static void test_end_sealed_then_appended(void **state)
{
        struct fx *f = *state;
        struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "late", .pid = 9};

        end_sealed_session(f, 0);
        assert_int_equal(nono_events_append(f->st, f->id, &ev, 1, 0), 0);
        expect_bad(f, f->n + 1, "added after the session was sealed");
}

static void test_seal_refuses_broken_chain(void **state)
{
        struct fx *f = *state;

        assert_int_equal(nono_events_raw_delete(f->st, f->id, 2), 0);
        assert_int_equal(nono_audit_seal(f->st, f->id), -EBADMSG);
        assert_non_null(strstr(nono_audit_errmsg(), "event 2 is missing"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_key_created_private, setup, teardown),
            cmocka_unit_test_setup_teardown(test_key_layouts, setup, teardown),
            cmocka_unit_test_setup_teardown(test_untouched_verifies, setup, teardown),
            cmocka_unit_test_setup_teardown(test_modified, setup, teardown),
            cmocka_unit_test_setup_teardown(test_deleted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reordered, setup, teardown),
            cmocka_unit_test_setup_teardown(test_appended, setup, teardown),
            cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rewritten_consistently, setup, teardown),
            cmocka_unit_test_setup_teardown(test_session_record_edited, setup, teardown),
            cmocka_unit_test_setup_teardown(test_resealed_with_other_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_local_key_swapped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_killed_session_is_unsealed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_seal_refuses_broken_chain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_end_sealed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_end_sealed_then_appended, setup, teardown),
            cmocka_unit_test_setup_teardown(test_end_sealed_counts_queued, setup, teardown),
            cmocka_unit_test_setup_teardown(test_end_sealed_sign_fails_writes_nothing, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
