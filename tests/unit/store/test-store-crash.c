/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-store-crash.c - durability under SIGKILL. A child writes sessions, objects, node pre-images (whole and
 * block-level), path records and event batches, reporting on a pipe each time a call returned "durable".
 * The parent kills it after a seed-chosen number of reports (so the kill lands while the child is in the
 * middle of further writes), reopens the store and checks that:
 *   - everything reported durable is there;
 *   - nothing is partial: every session's events come in whole batches, the chain verifies, and every node
 *     has all of its content (object verifies, chunks readable and matching their digests);
 *   - the killed sessions read as CRASHED;
 *   - garbage collection afterwards frees nothing any node references.
 * Some sessions are written with durability deferred (nono_store_defer_sync, as `nono run` does at its end):
 * a commit then skips its meta-page flush, and what a call reported must survive the kill all the same.
 * NONO_TEST_SEEDS sets the number of kills (default 6); a failure prints its seed.
 */
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>

#include "helpers.h"

#define BATCH 100

struct report {
        char sid[NONO_SESSION_ID_LEN + 1];
        uint32_t nodes;  /* nodes 1..nodes durable (whole objects) */
        uint32_t events; /* events durable */
};

static unsigned cur_seed;

static void child(const char *home, int fd, unsigned seed)
{
        nono_store *st;
        if (nono_store_open(home, 0, &st) < 0)
                _exit(10);
        uint8_t *buf = malloc(300000);
        uint64_t x = seed * 2654435761u + 1;
        for (unsigned round = 0;; round++) {
                struct nono_session s;
                struct report r = {0};
                nono_store_defer_sync(st, false);
                new_session(st, &s);
                nono_store_defer_sync(st, (x >> 3) & 1);
                memcpy(r.sid, s.id, sizeof(r.sid));
                if (write(fd, &r, sizeof(r)) != sizeof(r))
                        _exit(11);
                for (uint32_t j = 0; j < 1000; j++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        unsigned flags = x & 1 ? NONO_ASYNC : 0;
                        size_t size = (size_t)(x % 300000);
                        fill_random(buf, size, (unsigned)x);
                        nono_digest d;
                        if (nono_object_put_buf(st, buf, size, &d, flags) < 0)
                                _exit(12);
                        struct nono_node n = {
                            .id = j + 1, .type = NONO_FT_FILE, .size = size, .complete = true, .object = d};
                        if (nono_node_put(st, s.id, &n, flags) < 0)
                                _exit(13);
                        /* a block-level pre-image: two captured chunks of a big file */
                        struct nono_chunkref c[2];
                        for (int k = 0; k < 2; k++) {
                                c[k].index = (uint64_t)k * 7 + j;
                                c[k].len = NONO_CHUNK_SIZE;
                                fill_random(buf, NONO_CHUNK_SIZE, (unsigned)(x + (uint64_t)k));
                                if (nono_chunk_put(st, buf, NONO_CHUNK_SIZE, &c[k].digest, flags) < 0)
                                        _exit(14);
                        }
                        struct nono_node big = {.id = 100000 + j + 1,
                                                .type = NONO_FT_FILE,
                                                .size = 1u << 30,
                                                .chunks = c,
                                                .n_chunks = 1};
                        if (nono_node_put(st, s.id, &big, flags) < 0 ||
                            nono_node_add_chunks(st, s.id, big.id, &c[1], 1, flags) < 0)
                                _exit(15);
                        char path[32];
                        snprintf(path, sizeof(path), "f/%u", j);
                        if (nono_path_put_pre(st, s.id, 0, path, j + 1, flags) < 0)
                                _exit(16);
                        struct nono_event ev[BATCH];
                        for (int k = 0; k < BATCH; k++)
                                ev[k] = (struct nono_event){.time_ns = (int64_t)k,
                                                            .type = NONO_EV_FILE,
                                                            .op = NONO_OP_OPEN,
                                                            .path = path,
                                                            .bytes_written = (uint64_t)k};
                        if (nono_events_append(st, s.id, ev, BATCH, flags) < 0)
                                _exit(17);
                        if (flags && nono_store_sync(st) < 0)
                                _exit(18);
                        r.nodes = j + 1;
                        r.events = (j + 1) * BATCH;
                        if (write(fd, &r, sizeof(r)) != sizeof(r))
                                _exit(19);
                        if (x % 5 == 0)
                                break; /* next session */
                }
                if (round == 1000)
                        break;
        }
        _exit(0);
}

static void check_node(nono_store *st, const char *sid, uint64_t id)
{
        struct nono_node n;
        int r = nono_node_get(st, sid, id, &n);
        if (r < 0)
                fail_msg("seed %u: session %s node %llu: %s", cur_seed, sid, (unsigned long long)id,
                         nono_store_errmsg());
        if (n.complete) {
                if (nono_object_verify(st, &n.object) < 0)
                        fail_msg("seed %u: node %llu object: %s", cur_seed, (unsigned long long)id,
                                 nono_store_errmsg());
        } else {
                static uint8_t buf[NONO_CHUNK_SIZE];
                if (n.n_chunks != 2)
                        fail_msg("seed %u: node %llu has %zu chunks, want 2 (partial add)", cur_seed,
                                 (unsigned long long)id, n.n_chunks);
                for (size_t i = 0; i < n.n_chunks; i++) {
                        size_t len;
                        nono_digest d;
                        unsigned int l = 32;
                        if (nono_chunk_get(st, &n.chunks[i].digest, buf, sizeof(buf), &len) < 0)
                                fail_msg("seed %u: node %llu chunk missing: %s", cur_seed,
                                         (unsigned long long)id, nono_store_errmsg());
                        EVP_Digest(buf, len, d.b, &l, EVP_sha256(), NULL);
                        assert_memory_equal(&d, &n.chunks[i].digest, 32);
                }
        }
        nono_node_clear(&n);
}

/* Every session: whole batches, chain verifies, nodes complete; returns the session count. */
static size_t check_store(nono_store *st)
{
        struct nono_session *v;
        size_t n;
        assert_ok(nono_session_list(st, &v, &n));
        for (size_t i = 0; i < n; i++) {
                const char *sid = v[i].id;
                struct nono_event_counts c;
                assert_ok(nono_events_count(st, sid, &c));
                if (c.by_type[0] % BATCH)
                        fail_msg("seed %u: session %s has %llu events: a partial batch", cur_seed, sid,
                                 (unsigned long long)c.by_type[0]);
                if (nono_events_verify(st, sid, NULL, NULL) < 0)
                        fail_msg("seed %u: %s", cur_seed, nono_store_errmsg());
                assert_int_equal(v[i].state, NONO_SESSION_CRASHED);
                for (uint64_t id = 1;; id++) {
                        struct nono_node nd;
                        if (nono_node_get(st, sid, id, &nd) == -ENOENT)
                                break;
                        nono_node_clear(&nd);
                        check_node(st, sid, id);
                }
                for (uint64_t id = 100001;; id++) {
                        struct nono_node nd;
                        if (nono_node_get(st, sid, id, &nd) == -ENOENT)
                                break;
                        nono_node_clear(&nd);
                        check_node(st, sid, id);
                }
        }
        nono_session_list_free(v, n);
        return n;
}

static void kill_at_many_points(void **state)
{
        (void)state;
        char home[256];
        const char *e = getenv("NONO_TEST_SEEDS");
        unsigned seeds = e && atoi(e) > 0 ? (unsigned)atoi(e) : 6;
        make_home(home, sizeof(home));
        for (unsigned seed = 1; seed <= seeds; seed++) {
                cur_seed = seed;
                int p[2];
                assert_int_equal(pipe(p), 0);
                pid_t pid = fork();
                if (pid == 0) {
                        close(p[0]);
                        child(home, p[1], seed);
                }
                close(p[1]);
                struct report r, acked[64];
                size_t n_acked = 0;
                unsigned kill_after = 1 + (seed * 7919u) % 40, got = 0;
                /* wait for progress, then kill while the child keeps writing */
                while (got < kill_after && read(p[0], &r, sizeof(r)) == sizeof(r)) {
                        got++;
                        size_t k;
                        for (k = 0; k < n_acked && strcmp(acked[k].sid, r.sid); k++)
                                ;
                        if (k == n_acked && n_acked < 64)
                                n_acked++;
                        if (k < 64)
                                acked[k] = r;
                }
                assert_int_equal(got, kill_after);
                kill(pid, SIGKILL);
                int status;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status));
                /* reports written before the kill are durable too */
                while (read(p[0], &r, sizeof(r)) == sizeof(r)) {
                        size_t k;
                        for (k = 0; k < n_acked && strcmp(acked[k].sid, r.sid); k++)
                                ;
                        if (k == n_acked && n_acked < 64)
                                n_acked++;
                        if (k < 64)
                                acked[k] = r;
                }
                close(p[0]);

                nono_store *st;
                assert_ok(nono_store_open(home, 0, &st));
                nono_store_set_gc_grace(st, 0);
                for (size_t k = 0; k < n_acked; k++) {
                        struct nono_session s;
                        struct nono_event_counts c;
                        if (nono_session_get(st, acked[k].sid, &s) < 0)
                                fail_msg("seed %u: acknowledged session %s lost: %s", seed, acked[k].sid,
                                         nono_store_errmsg());
                        nono_session_clear(&s);
                        assert_ok(nono_events_count(st, acked[k].sid, &c));
                        if (c.by_type[0] < acked[k].events)
                                fail_msg("seed %u: session %s has %llu events, %u were acknowledged", seed,
                                         acked[k].sid, (unsigned long long)c.by_type[0], acked[k].events);
                        for (uint32_t j = 1; j <= acked[k].nodes; j++) {
                                check_node(st, acked[k].sid, j);
                                check_node(st, acked[k].sid, 100000 + j);
                                char path[32];
                                struct nono_path_rec pr;
                                snprintf(path, sizeof(path), "f/%u", j - 1);
                                assert_ok(nono_path_get(st, acked[k].sid, 0, path, &pr));
                                assert_int_equal(pr.pre_node, j);
                                nono_path_rec_clear(&pr);
                        }
                }
                size_t before = check_store(st);
                struct nono_gc_stats gs;
                assert_ok(nono_store_gc(st, &gs)); /* frees what the kills orphaned, nothing referenced */
                assert_int_equal(check_store(st), before);
                nono_store_close(st);
        }
        rm_rf(home);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(kill_at_many_points),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
