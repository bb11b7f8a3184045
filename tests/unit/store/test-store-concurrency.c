/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-store-concurrency.c - many threads of one process (group commit) and two processes writing the same
 * store at the same time, including a map growth that the other process must adopt.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "helpers.h"

#define THREADS    8
#define PER_THREAD 40

struct tctx {
        nono_store *st;
        const char *sid;
        int idx;
        nono_digest d[PER_THREAD];
        int err;
};

static void *thread_main(void *arg)
{
        struct tctx *t = arg;
        uint8_t buf[3000];
        for (int i = 0; i < PER_THREAD && !t->err; i++) {
                fill_random(buf, sizeof(buf), (unsigned)(t->idx * 1000 + i));
                if (nono_object_put_buf(t->st, buf, sizeof(buf), &t->d[i], 0) < 0)
                        t->err = 1;
                struct nono_node n = {.id = (uint64_t)(t->idx * 1000 + i + 1),
                                      .type = NONO_FT_FILE,
                                      .size = sizeof(buf),
                                      .complete = true,
                                      .object = t->d[i]};
                if (nono_node_put(t->st, t->sid, &n, 0) < 0)
                        t->err = 2;
                struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "shared/path"};
                if (nono_events_append(t->st, t->sid, &ev, 1, i % 2 ? NONO_ASYNC : 0) < 0)
                        t->err = 3;
        }
        return NULL;
}

static void threads_group_commit(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        pthread_t th[THREADS];
        struct tctx ctx[THREADS];
        new_session(f->st, &s);
        for (int i = 0; i < THREADS; i++) {
                ctx[i] = (struct tctx){.st = f->st, .sid = s.id, .idx = i};
                assert_int_equal(pthread_create(&th[i], NULL, thread_main, &ctx[i]), 0);
        }
        for (int i = 0; i < THREADS; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(ctx[i].err, 0);
        }
        assert_ok(nono_store_sync(f->st));
        for (int i = 0; i < THREADS; i++)
                for (int j = 0; j < PER_THREAD; j++) {
                        struct nono_node n;
                        assert_ok(nono_node_get(f->st, s.id, (uint64_t)(i * 1000 + j + 1), &n));
                        assert_memory_equal(&n.object, &ctx[i].d[j], 32);
                        nono_node_clear(&n);
                }
        struct nono_event_counts c;
        assert_ok(nono_events_count(f->st, s.id, &c));
        assert_int_equal(c.by_type[0], THREADS * PER_THREAD);
        assert_ok(nono_events_verify(f->st, s.id, NULL, NULL));
}

/* Child body: opens the store itself (an LMDB environment must not cross fork), waits for the start
 * signal, then writes sessions, objects and events. */
static int writer_process(const char *home, int start_fd, unsigned seed, int rounds)
{
        nono_store *st;
        char c;
        if (nono_store_open(home, 0, &st) < 0)
                return 10;
        if (read(start_fd, &c, 1) != 1)
                return 11;
        uint8_t *buf = malloc(200000);
        for (int i = 0; i < rounds; i++) {
                struct nono_session s;
                new_session(st, &s);
                fill_random(buf, 200000, seed * 100 + (unsigned)i);
                nono_digest d;
                if (nono_object_put_buf(st, buf, 200000, &d, 0) < 0)
                        return 12;
                struct nono_node n = {
                    .id = 1, .type = NONO_FT_FILE, .size = 200000, .complete = true, .object = d};
                if (nono_node_put(st, s.id, &n, 0) < 0)
                        return 13;
                struct nono_event ev[50];
                for (int j = 0; j < 50; j++)
                        ev[j] = (struct nono_event){.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "p"};
                if (nono_events_append(st, s.id, ev, 50, 0) < 0)
                        return 14;
        }
        free(buf);
        nono_store_close(st);
        return 0;
}

static void two_processes(void **state)
{
        struct fixture *f = *state;
        int p[2];
        pid_t pids[2];
        const int rounds = 15;
        /* Fork before this process has a writer thread: a child of a multithreaded process may not
         * malloc (ASan's allocator lock could be held by a thread that does not exist in the child). */
        nono_store_close(f->st);
        f->st = NULL;
        assert_int_equal(pipe(p), 0);
        for (int i = 0; i < 2; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        close(p[1]);
                        _exit(writer_process(f->home, p[0], (unsigned)i + 1, rounds));
                }
        }
        close(p[0]);
        assert_ok(nono_store_open(f->home, 0, &f->st));
        /* this process writes too, through its own handle, at the same time */
        assert_int_equal(write(p[1], "gg", 2), 2);
        close(p[1]);
        struct nono_session mine;
        new_session(f->st, &mine);
        for (int i = 0; i < 20; i++) {
                struct nono_event ev = {
                    .type = NONO_EV_NET, .op = NONO_OP_CONNECT, .detail = "example.org:443"};
                assert_ok(nono_events_append(f->st, mine.id, &ev, 1, 0));
        }
        for (int i = 0; i < 2; i++) {
                int status;
                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        struct nono_session *v;
        size_t n;
        assert_ok(nono_session_list(f->st, &v, &n));
        assert_int_equal(n, 2 * rounds + 1);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        assert_true(strcmp(v[i - 1].id, v[i].id) < 0); /* unique, sorted */
                struct nono_event_counts c;
                assert_ok(nono_events_count(f->st, v[i].id, &c));
                assert_ok(nono_events_verify(f->st, v[i].id, NULL, NULL));
                if (strcmp(v[i].id, mine.id) == 0) {
                        assert_int_equal(c.by_type[0], 20);
                        continue;
                }
                assert_int_equal(c.by_type[0], 50);
                struct nono_node node;
                assert_ok(nono_node_get(f->st, v[i].id, 1, &node));
                assert_ok(nono_object_verify(f->st, &node.object));
                nono_node_clear(&node);
        }
        nono_session_list_free(v, n);
}

/* Another process grows the map; this one adopts the new size and keeps reading and writing. */
static void map_growth_across_processes(void **state)
{
        (void)state;
        char home[256];
        nono_store *st;
        make_home(home, sizeof(home));
        setenv("NONO_STORE_MAP_SIZE", "524288", 1);
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork(); /* before this process has threads, see two_processes */
        if (pid == 0) {
                close(p[1]);
                _exit(writer_process(home, p[0], 9, 12)); /* ~2.4 MB: several growths */
        }
        close(p[0]);
        assert_ok(nono_store_open(home, 0, &st));
        struct nono_store_stats before, after;
        assert_ok(nono_store_stats(st, &before));
        assert_int_equal(write(p[1], "g", 1), 1);
        close(p[1]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        unsetenv("NONO_STORE_MAP_SIZE");

        struct nono_session *v;
        size_t n;
        assert_ok(nono_session_list(st, &v, &n));
        assert_int_equal(n, 12);
        struct nono_node node;
        assert_ok(nono_node_get(st, v[11].id, 1, &node));
        assert_ok(nono_object_verify(st, &node.object));
        nono_node_clear(&node);
        nono_session_list_free(v, n);
        uint8_t buf[100000];
        nono_digest d;
        fill_random(buf, sizeof(buf), 1);
        assert_ok(nono_object_put_buf(st, buf, sizeof(buf), &d, 0));
        assert_ok(nono_store_stats(st, &after));
        assert_true(after.map_size > before.map_size);
        nono_store_close(st);
        rm_rf(home);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(threads_group_commit, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(two_processes, fx_setup, fx_teardown),
            cmocka_unit_test(map_growth_across_processes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
