/* SPDX-License-Identifier: Apache-2.0 */
/* test-store-events.c - audit event append, iterate, count, the hash chain and tamper detection. */
#include "helpers.h"

struct collected {
        struct nono_event ev[64];
        char *path[64], *path2[64], *detail[64];
        size_t n;
        uint64_t stop_at;
};

static int collect_cb(const struct nono_event *ev, void *ud)
{
        struct collected *c = ud;
        if (c->n >= 64)
                return -E2BIG;
        c->ev[c->n] = *ev;
        c->path[c->n] = ev->path ? strdup(ev->path) : NULL;
        c->path2[c->n] = ev->path2 ? strdup(ev->path2) : NULL;
        c->detail[c->n] = ev->detail ? strdup(ev->detail) : NULL;
        c->n++;
        return c->stop_at && ev->seq == c->stop_at ? 1 : 0;
}

static void collected_free(struct collected *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->path[i]);
                free(c->path2[i]);
                free(c->detail[i]);
        }
        c->n = 0;
}

static void sample(struct nono_event *ev, size_t n)
{
        static const char *paths[] = {"src/a.c", "src/b.c", "README", ""};
        for (size_t i = 0; i < n; i++) {
                ev[i] = (struct nono_event){.time_ns = 1700000000000000000 + (int64_t)i * 1000,
                                            .pid = 100 + (i % 3),
                                            .ppid = 1,
                                            .uid = 1000,
                                            .type = NONO_EV_FILE,
                                            .op = NONO_OP_OPEN,
                                            .root = (uint32_t)(i % 2),
                                            .path = paths[i % 4]};
                if (i % 5 == 1) {
                        ev[i].op = NONO_OP_RENAME;
                        ev[i].path2 = "dst/x";
                }
                if (i % 7 == 2) {
                        ev[i].type = NONO_EV_EXEC;
                        ev[i].op = NONO_OP_EXEC;
                        ev[i].path = "/usr/bin/cc";
                        ev[i].detail = "[\"cc\",\"-c\"]";
                }
                if (i % 11 == 3) {
                        ev[i].flags = NONO_EVF_VIOLATION;
                        ev[i].result = 13;
                }
                if (i % 4 == 0)
                        ev[i].bytes_read = 4096 * i;
                if (i % 6 == 0)
                        ev[i].bytes_written = 10 + i;
                if (i == 9)
                        ev[i].path = NULL;
        }
}

static void append_iterate_chain(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        struct nono_event ev[30];
        sample(ev, 30);
        assert_ok(nono_events_append(f->st, s.id, ev, 10, 0));
        assert_ok(nono_events_append(f->st, s.id, ev + 10, 20, 0));
        for (size_t i = 0; i < 30; i++)
                assert_int_equal(ev[i].seq, i + 1);

        /* chain: seed, then SHA-256(prev || canonical) */
        nono_digest prev, c;
        nono_event_chain_seed(s.id, &prev);
        for (size_t i = 0; i < 30; i++) {
                nono_event_chain(&prev, &ev[i], &c);
                assert_memory_equal(&c, &ev[i].chain, 32);
                prev = c;
        }

        struct collected got = {0};
        assert_ok(nono_events_iterate(f->st, s.id, 1, collect_cb, &got));
        assert_int_equal(got.n, 30);
        for (size_t i = 0; i < 30; i++) {
                assert_int_equal(got.ev[i].seq, i + 1);
                assert_int_equal(got.ev[i].time_ns, ev[i].time_ns);
                assert_int_equal(got.ev[i].pid, ev[i].pid);
                assert_int_equal(got.ev[i].type, ev[i].type);
                assert_int_equal(got.ev[i].op, ev[i].op);
                assert_int_equal(got.ev[i].result, ev[i].result);
                assert_int_equal(got.ev[i].flags, ev[i].flags);
                assert_int_equal(got.ev[i].root, ev[i].root);
                assert_int_equal(got.ev[i].bytes_read, ev[i].bytes_read);
                assert_int_equal(got.ev[i].bytes_written, ev[i].bytes_written);
                if (ev[i].path)
                        assert_string_equal(got.path[i], ev[i].path);
                else
                        assert_null(got.path[i]);
                if (ev[i].path2)
                        assert_string_equal(got.path2[i], ev[i].path2);
                else
                        assert_null(got.path2[i]);
                if (ev[i].detail)
                        assert_string_equal(got.detail[i], ev[i].detail);
                else
                        assert_null(got.detail[i]);
                assert_memory_equal(&got.ev[i].chain, &ev[i].chain, 32);
        }
        collected_free(&got);

        /* from and early stop */
        got.stop_at = 12;
        assert_ok(nono_events_iterate(f->st, s.id, 10, collect_cb, &got));
        assert_int_equal(got.n, 3);
        assert_int_equal(got.ev[0].seq, 10);
        assert_memory_equal(&got.ev[0].chain, &ev[9].chain, 32);
        collected_free(&got);

        uint64_t bad;
        nono_digest head;
        assert_ok(nono_events_verify(f->st, s.id, &bad, &head));
        assert_int_equal(bad, 0);
        assert_memory_equal(&head, &ev[29].chain, 32);
}

static void counts(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        struct nono_event ev[30];
        sample(ev, 30);
        assert_ok(nono_events_append(f->st, s.id, ev, 30, NONO_ASYNC));
        assert_ok(nono_store_sync(f->st));
        struct nono_event_counts c, want = {0};
        for (size_t i = 0; i < 30; i++) {
                want.by_type[0]++;
                want.by_type[ev[i].type]++;
                want.violations += !!(ev[i].flags & NONO_EVF_VIOLATION);
                want.reads += ev[i].type == NONO_EV_FILE && ev[i].bytes_read;
                want.writes += ev[i].type == NONO_EV_FILE && ev[i].bytes_written;
        }
        assert_ok(nono_events_count(f->st, s.id, &c));
        assert_memory_equal(&c, &want, sizeof(c));
        assert_true(c.by_type[NONO_EV_EXEC] > 0 && c.violations > 0 && c.reads > 0);
}

static void canonical_layout(void **state)
{
        (void)state;
        struct nono_event e = {.seq = 1,
                               .time_ns = 2,
                               .pid = 3,
                               .ppid = 4,
                               .uid = 5,
                               .type = 6,
                               .op = 7,
                               .result = 8,
                               .flags = 9,
                               .oflags = 10,
                               .root = 11,
                               .bytes_read = 12,
                               .bytes_written = 13,
                               .path = "ab",
                               .path2 = NULL,
                               .detail = ""};
        uint8_t buf[128];
        size_t n = nono_event_canonical(&e, buf, sizeof(buf));
        assert_int_equal(n, 64 + 4 + 2 + 4 + 4);
        assert_int_equal(buf[0], 1);
        assert_int_equal(buf[8], 2);
        assert_int_equal(buf[28], 6);
        assert_int_equal(buf[30], 7);
        assert_int_equal(buf[56], 13);
        assert_int_equal(buf[64], 2);
        assert_memory_equal(buf + 68, "ab", 2);
        assert_memory_equal(buf + 70, "\xff\xff\xff\xff", 4); /* NULL */
        assert_memory_equal(buf + 74, "\0\0\0\0", 4);         /* "" */
        uint8_t small[10];
        assert_int_equal(nono_event_canonical(&e, small, sizeof(small)), n);
}

/* Tampering through raw_put / raw_delete is visible by recomputing the chain. */
static void tamper(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        struct nono_event ev[20];
        sample(ev, 20);
        assert_ok(nono_events_append(f->st, s.id, ev, 20, 0));
        uint64_t bad;

        /* rewrite event 7's path but keep its chain: the recomputed chain differs from there on */
        struct nono_event t = ev[6];
        t.path = "innocent.txt";
        assert_ok(nono_events_raw_put(f->st, s.id, &t));
        assert_int_equal(nono_events_verify(f->st, s.id, &bad, NULL), -EBADMSG);
        assert_int_equal(bad, 7);
        assert_non_null(strstr(nono_store_errmsg(), "breaks at event 7"));
        struct collected got = {0};
        assert_ok(nono_events_iterate(f->st, s.id, 1, collect_cb, &got));
        assert_int_equal(got.n, 20);
        assert_string_equal(got.path[6], "innocent.txt");
        assert_memory_equal(&got.ev[5].chain, &ev[5].chain, 32);
        assert_memory_not_equal(&got.ev[6].chain, &ev[6].chain, 32);
        assert_memory_not_equal(&got.ev[19].chain, &ev[19].chain, 32);
        collected_free(&got);

        /* put it back exactly: verifies again */
        assert_ok(nono_events_raw_put(f->st, s.id, &ev[6]));
        assert_ok(nono_events_verify(f->st, s.id, &bad, NULL));

        /* delete event 12: a gap */
        assert_ok(nono_events_raw_delete(f->st, s.id, 12));
        assert_int_equal(nono_events_verify(f->st, s.id, &bad, NULL), -EBADMSG);
        assert_int_equal(bad, 13);
        assert_ok(nono_events_iterate(f->st, s.id, 1, collect_cb, &got));
        assert_int_equal(got.n, 19);
        assert_int_equal(got.ev[11].seq, 13);
        collected_free(&got);
        assert_ok(nono_events_raw_put(f->st, s.id, &ev[11])); /* reinsert */
        assert_ok(nono_events_verify(f->st, s.id, &bad, NULL));

        /* delete the last event: the stored head no longer matches */
        assert_ok(nono_events_raw_delete(f->st, s.id, 20));
        assert_int_equal(nono_events_verify(f->st, s.id, &bad, NULL), -EBADMSG);
        assert_int_equal(bad, 20);
        /* delete the first: events 2.. no longer follow the seed */
        assert_ok(nono_events_raw_put(f->st, s.id, &ev[19]));
        assert_ok(nono_events_raw_delete(f->st, s.id, 1));
        assert_int_equal(nono_events_verify(f->st, s.id, &bad, NULL), -EBADMSG);
        assert_int_equal(bad, 2);
        assert_int_equal(nono_events_raw_delete(f->st, s.id, 1), -ENOENT);
}

static void many_and_big_batches(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        size_t n = 10000;
        struct nono_event *ev = calloc(n, sizeof(*ev));
        char(*names)[32] = calloc(n, 32);
        for (size_t i = 0; i < n; i++) {
                snprintf(names[i], 32, "dir/file-%zu", i % 500);
                ev[i] = (struct nono_event){
                    .time_ns = (int64_t)i, .type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = names[i]};
        }
        assert_ok(nono_events_append(f->st, s.id, ev, n, 0)); /* split into several stored batches */
        assert_ok(nono_events_verify(f->st, s.id, NULL, NULL));
        struct nono_event_counts c;
        assert_ok(nono_events_count(f->st, s.id, &c));
        assert_int_equal(c.by_type[0], n);
        struct collected got = {.stop_at = 5000};
        assert_ok(nono_events_iterate(f->st, s.id, 4990, collect_cb, &got));
        assert_int_equal(got.n, 11);
        assert_string_equal(got.path[10], names[4999]);
        collected_free(&got);
        free(ev);
        free(names);
        assert_int_equal(nono_events_iterate(f->st, "0000000000000", 1, collect_cb, &got), -ENOENT);
}

struct writer_cb {
        nono_store *st;
        const char *other;
        int calls;
};

/* A callback may write to the store (no transaction is held across it); <0 aborts with that error. */
static int writing_cb(const struct nono_event *ev, void *ud)
{
        struct writer_cb *w = ud;
        struct nono_event copy = *ev;
        if (nono_events_append(w->st, w->other, &copy, 1, 0) < 0)
                return -EIO;
        return ++w->calls == 3 ? -ECANCELED : 0;
}

static void callback_writes_and_aborts(void **state)
{
        struct fixture *f = *state;
        struct nono_session a, b;
        new_session(f->st, &a);
        new_session(f->st, &b);
        struct nono_event ev[5];
        sample(ev, 5);
        assert_ok(nono_events_append(f->st, a.id, ev, 5, 0));
        struct writer_cb w = {.st = f->st, .other = b.id};
        assert_int_equal(nono_events_iterate(f->st, a.id, 1, writing_cb, &w), -ECANCELED);
        assert_int_equal(w.calls, 3);
        struct nono_event_counts c;
        assert_ok(nono_events_count(f->st, b.id, &c));
        assert_int_equal(c.by_type[0], 3);
}

/* An async failure is reported by the next nono_store_sync(), with its message, once. */
static void async_error_reported_by_sync(void **state)
{
        struct fixture *f = *state;
        struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "x"};
        assert_ok(nono_events_append(f->st, "0000000000000", &ev, 1, NONO_ASYNC));
        assert_int_equal(nono_store_sync(f->st), -ENOENT);
        assert_non_null(strstr(nono_store_errmsg(), "no session 0000000000000"));
        assert_ok(nono_store_sync(f->st));
        assert_int_equal(nono_events_append(f->st, "short", &ev, 1, 0), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(append_iterate_chain, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(counts, fx_setup, fx_teardown),
            cmocka_unit_test(canonical_layout),
            cmocka_unit_test_setup_teardown(tamper, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(many_and_big_batches, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(callback_writes_and_aborts, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(async_error_reported_by_sync, fx_setup, fx_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
