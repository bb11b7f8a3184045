/* SPDX-License-Identifier: Apache-2.0 */
/* test-store-sessions.c - session ids, records, prefix lookup, crash detection, journal. */
#include <signal.h>
#include <sys/wait.h>

#include <lmdb.h>

#include "helpers.h"

static void create_get_update(void **state)
{
        struct fixture *f = *state;
        struct nono_session s, g;
        new_session(f->st, &s);
        assert_int_equal(strlen(s.id), NONO_SESSION_ID_LEN);
        assert_int_equal(s.pid, getpid());
        assert_true(s.pid_start > 0);
        assert_true(s.start_ns > 0);

        assert_ok(nono_session_get(f->st, s.id, &g));
        assert_string_equal(g.id, s.id);
        assert_int_equal(g.state, NONO_SESSION_RUNNING);
        assert_string_equal(g.argv[0], "agent");
        assert_string_equal(g.argv[1], "--flag");
        assert_null(g.argv[2]);
        assert_string_equal(g.cwd, "/work/project");
        assert_string_equal(g.policy_json, "{}");
        assert_string_equal(g.roots[0], "/work/project");
        assert_null(g.parent);
        assert_true(g.rollback);
        assert_int_equal(g.start_ns, s.start_ns);
        nono_session_clear(&g);

        s.state = NONO_SESSION_FINISHED;
        s.end_ns = s.start_ns + 5;
        s.exit_status = 3;
        s.preimage_bytes = 1234;
        memset(s.seal, 7, 64);
        memset(s.seal_pub, 8, 32);
        s.sealed_events = 99;
        s.cwd = "/ignored"; /* immutable fields are not rewritten */
        assert_ok(nono_session_update(f->st, &s));
        assert_ok(nono_session_get(f->st, s.id, &g));
        assert_int_equal(g.state, NONO_SESSION_FINISHED);
        assert_int_equal(g.end_ns, s.end_ns);
        assert_int_equal(g.exit_status, 3);
        assert_int_equal(g.preimage_bytes, 1234);
        assert_memory_equal(g.seal, s.seal, 64);
        assert_memory_equal(g.seal_pub, s.seal_pub, 32);
        assert_int_equal(g.sealed_events, 99);
        assert_string_equal(g.cwd, "/work/project");
        nono_session_clear(&g);
}

/* nono run's way: the id comes before the record is durable, work queued after it commits after it. */
static void create_in_two_steps(void **state)
{
        struct fixture *f = *state;
        static char *argv[] = {"agent", NULL};
        struct nono_session a, s = {.argv = argv, .cwd = "/w", .policy_json = "{\"p\":1}", .rollback = true},
                               g;
        struct nono_session_pending *p = NULL;
        struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "/w/x"};

        new_session(f->st, &a);
        assert_ok(nono_session_create_begin(f->st, &s, &p));
        assert_non_null(p);
        assert_int_equal(strlen(s.id), NONO_SESSION_ID_LEN);
        assert_true(strcmp(s.id, a.id) > 0); /* still sorts after the sessions before it */
        assert_ok(nono_events_append(f->st, s.id, &ev, 1, NONO_ASYNC));
        assert_ok(nono_session_create_end(f->st, p));
        assert_ok(nono_store_sync(f->st));
        assert_ok(nono_session_get(f->st, s.id, &g));
        assert_string_equal(g.policy_json, "{\"p\":1}");
        assert_int_equal(g.state, NONO_SESSION_RUNNING);
        assert_true(g.rollback);
        nono_session_clear(&g);
        struct nono_event_counts c;
        assert_ok(nono_events_count(f->st, s.id, &c));
        assert_int_equal(c.by_type[0], 1);
}

/* The record's transaction is retried when the map has to grow (here: a record larger than the whole
 * map): the id handed out by the first attempt is the one the record gets. */
static void create_in_two_steps_map_grows(void **state)
{
        (void)state;
        char home[256];
        nono_store *st;
        size_t big = 600u << 10;
        char *pj = malloc(big + 1);
        struct nono_session s = {.policy_json = pj}, g;
        struct nono_session_pending *p = NULL;

        memset(pj, 'x', big);
        pj[0] = '"';
        pj[big - 1] = '"';
        pj[big] = 0;
        make_home(home, sizeof(home));
        setenv("NONO_STORE_MAP_SIZE", "262144", 1);
        assert_ok(nono_store_open(home, 0, &st));
        unsetenv("NONO_STORE_MAP_SIZE");
        assert_ok(nono_session_create_begin(st, &s, &p));
        char id[NONO_SESSION_ID_LEN + 1];
        memcpy(id, s.id, sizeof(id));
        assert_ok(nono_session_create_end(st, p));
        assert_string_equal(s.id, id);
        assert_ok(nono_session_get(st, id, &g));
        assert_int_equal(strlen(g.policy_json), big);
        nono_session_clear(&g);
        struct nono_store_stats sst;
        assert_ok(nono_store_stats(st, &sst));
        assert_true(sst.map_size > 262144);
        nono_store_close(st);
        rm_rf(home);
        free(pj);
}

static void restore_kind_and_parent(void **state)
{
        struct fixture *f = *state;
        struct nono_session a, r = {0}, g;
        new_session(f->st, &a);
        r.kind = NONO_SESSION_RESTORE;
        r.parent = a.id;
        assert_ok(nono_session_create(f->st, &r));
        assert_ok(nono_session_get(f->st, r.id, &g));
        assert_int_equal(g.kind, NONO_SESSION_RESTORE);
        assert_string_equal(g.parent, a.id);
        assert_null(g.argv);
        assert_null(g.cwd);
        nono_session_clear(&g);
}

static void ids_sort_and_prefix(void **state)
{
        struct fixture *f = *state;
        struct nono_session s[20], g;
        for (int i = 0; i < 20; i++)
                new_session(f->st, &s[i]);
        for (int i = 1; i < 20; i++)
                assert_true(strcmp(s[i - 1].id, s[i].id) < 0);
        struct nono_session *v;
        size_t n;
        assert_ok(nono_session_list(f->st, &v, &n));
        assert_int_equal(n, 20);
        for (int i = 0; i < 20; i++)
                assert_string_equal(v[i].id, s[i].id);
        nono_session_list_free(v, n);

        /* a unique prefix finds it, lowercase too; a shared prefix is ambiguous */
        char low[NONO_SESSION_ID_LEN + 1];
        for (int i = 0; i <= NONO_SESSION_ID_LEN; i++)
                low[i] = (char)(s[19].id[i] >= 'A' && s[19].id[i] <= 'Z' ? s[19].id[i] + 32 : s[19].id[i]);
        assert_ok(nono_session_get(f->st, low, &g));
        assert_string_equal(g.id, s[19].id);
        nono_session_clear(&g);
        char pre[4] = {s[0].id[0], s[0].id[1], s[0].id[2], 0};
        assert_int_equal(nono_session_get(f->st, pre, &g), -EEXIST);
        assert_non_null(strstr(nono_store_errmsg(), "ambiguous"));
        assert_int_equal(nono_session_get(f->st, "ZZZZZZZZZZZZZ", &g), -ENOENT);
        assert_int_equal(nono_session_get(f->st, "not-an-id!", &g), -EINVAL);
}

static void crash_detection(void **state)
{
        struct fixture *f = *state;
        struct nono_session s = {0}, g;
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                close(p[1]);
                if (read(p[0], &c, 1) < 0) {
                }
                _exit(0);
        }
        close(p[0]);
        s.pid = pid; /* an owner that is alive for now */
        assert_ok(nono_session_create(f->st, &s));
        assert_ok(nono_session_get(f->st, s.id, &g));
        assert_int_equal(g.state, NONO_SESSION_RUNNING);
        nono_session_clear(&g);
        close(p[1]);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_ok(nono_session_get(f->st, s.id, &g));
        assert_int_equal(g.state, NONO_SESSION_CRASHED);
        nono_session_clear(&g);

        /* pid reuse: a live pid with another start time is not the owner */
        struct nono_session r = {.pid = getpid(), .pid_start = 1};
        assert_ok(nono_session_create(f->st, &r));
        assert_ok(nono_session_get(f->st, r.id, &g));
        assert_int_equal(g.state, NONO_SESSION_CRASHED);
        nono_session_clear(&g);

        /* finished sessions are never reported crashed */
        r.state = NONO_SESSION_FINISHED;
        assert_ok(nono_session_update(f->st, &r));
        assert_ok(nono_session_get(f->st, r.id, &g));
        assert_int_equal(g.state, NONO_SESSION_FINISHED);
        nono_session_clear(&g);
}

static void journal(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        void *b;
        size_t l;
        new_session(f->st, &s);
        assert_int_equal(nono_journal_get(f->st, s.id, &b, &l), -ENOENT);
        assert_ok(nono_journal_put(f->st, s.id, "plan-1", 6));
        assert_ok(nono_journal_put(f->st, s.id, "plan-2+", 7));
        assert_ok(nono_journal_get(f->st, s.id, &b, &l));
        assert_int_equal(l, 7);
        assert_memory_equal(b, "plan-2+", 7);
        free(b);
        assert_ok(nono_journal_delete(f->st, s.id));
        assert_int_equal(nono_journal_get(f->st, s.id, &b, &l), -ENOENT);
        assert_int_equal(nono_journal_put(f->st, "0000000000000", "x", 1), -ENOENT);
        assert_non_null(strstr(nono_store_errmsg(), "no session"));
}

static void delete_everything(void **state)
{
        struct fixture *f = *state;
        struct nono_session s, g;
        new_session(f->st, &s);
        struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "a"};
        assert_ok(nono_events_append(f->st, s.id, &ev, 1, 0));
        assert_ok(nono_path_put_pre(f->st, s.id, 0, "a", 0, 0));
        assert_ok(nono_journal_put(f->st, s.id, "j", 1));
        assert_ok(nono_session_delete(f->st, s.id));
        assert_int_equal(nono_session_get(f->st, s.id, &g), -ENOENT);
        struct nono_event_counts c;
        assert_int_equal(nono_events_count(f->st, s.id, &c), -ENOENT);
        struct nono_path_rec *v;
        size_t n;
        assert_ok(nono_path_list(f->st, s.id, &v, &n));
        assert_int_equal(n, 0);
        assert_int_equal(nono_session_delete(f->st, s.id), -ENOENT);
}

/* nono_session_list_rollback: the rollback sessions only, oldest first, read through an index; a store made
 * before the index (simulated by dropping it) gets it built at its next writable open, and a read-only open
 * of such a store lists them the slow way. */
static void expect_rollback_list(nono_store *st, char ids[][NONO_SESSION_ID_LEN + 1], size_t want)
{
        struct nono_session *v;
        size_t n;
        assert_ok(nono_session_list_rollback(st, &v, &n));
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(v[i].id, ids[i]);
                assert_true(v[i].rollback);
        }
        nono_session_list_free(v, n);
}

static void drop_index(const char *home)
{
        char dir[300];
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        snprintf(dir, sizeof(dir), "%s/store", home);
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
        assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "rbsess", 0, &dbi), 0);
        assert_int_equal(mdb_drop(txn, dbi, 1), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
}

static void rollback_index(void **state)
{
        struct fixture *f = *state;
        char ids[6][NONO_SESSION_ID_LEN + 1];
        size_t k = 0;
        for (int i = 0; i < 10; i++) {
                struct nono_session s;
                new_session(f->st, &s);
                if (i % 3 == 0) {
                        struct nono_session plain = s;
                        plain.rollback = false; /* an audit-only session between them */
                        assert_ok(nono_session_create(f->st, &plain));
                }
                if (i % 2 == 0)
                        snprintf(ids[k++], sizeof(ids[0]), "%s", s.id);
                else
                        assert_ok(nono_session_delete(f->st, s.id));
        }
        struct nono_session *all;
        size_t n;
        assert_ok(nono_session_list(f->st, &all, &n));
        assert_int_equal(n, 5 + 4); /* 5 kept rollback sessions, 4 plain ones */
        nono_session_list_free(all, n);
        expect_rollback_list(f->st, ids, k);

        nono_store_close(f->st);
        drop_index(f->home);
        assert_ok(nono_store_open(f->home, NONO_STORE_RDONLY, &f->st));
        expect_rollback_list(f->st, ids, k); /* no index, read-only: all sessions filtered */
        nono_store_close(f->st);
        assert_ok(nono_store_open(f->home, 0, &f->st)); /* builds the index */
        expect_rollback_list(f->st, ids, k);
        nono_store_close(f->st);
        assert_ok(nono_store_open(f->home, NONO_STORE_RDONLY, &f->st));
        expect_rollback_list(f->st, ids, k); /* and a read-only open now uses it */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(create_get_update, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(create_in_two_steps, fx_setup, fx_teardown),
            cmocka_unit_test(create_in_two_steps_map_grows),
            cmocka_unit_test_setup_teardown(restore_kind_and_parent, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(ids_sort_and_prefix, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(crash_detection, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(journal, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(delete_everything, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(rollback_index, fx_setup, fx_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
