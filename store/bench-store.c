/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-store.c - measures the store against OpenSSL's raw SHA-256 in the same run and prints a Markdown
 * table (run through tools/bench-store). Sizes come from the environment:
 *   NONO_BENCH_MB       MiB ingested as 1 MiB objects (default 256)
 *   NONO_BENCH_SMALL    4 KiB objects (default 20000)
 *   NONO_BENCH_EVENTS   events appended (default 1000000), in batches of NONO_BENCH_BATCH (default 1000)
 * Every object has distinct chunks (no dedupe); puts are NONO_ASYNC with one nono_store_sync() at the end,
 * which is how fs/ ingests (the writer thread commits in groups). The "commits not flushed" row sets
 * MDB_NOSYNC (benchmark only) and stops when the writer has committed to the page cache: it measures the
 * store's own cost - hashing in the caller's thread in parallel with the writer - without the disk; the
 * durable row includes the disk, compared with a plain write+fdatasync of the same bytes. Stored bytes per
 * event are measured from LMDB's page counts of the event table (so B-tree and page slack are included) for
 * events on paths that the session has already seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "store/internal.h"

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process (all threads): on a loaded machine wall time says little. */
static double cpu(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6;
}

static long envl(const char *name, long def)
{
        const char *e = getenv(name);
        return e && atol(e) > 0 ? atol(e) : def;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "bench-store: %s: %s (%s)\n", what, nono_store_errmsg(), strerror(-r));
        exit(1);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
        for (size_t i = 0; i + 8 <= n; i += 8) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(p + i, &x, 8);
        }
}

/* Makes every chunk of object k distinct. */
static void stamp(uint8_t *p, size_t n, uint64_t k)
{
        for (size_t off = 0; off < n; off += NONO_CHUNK_SIZE) {
                uint64_t v = k * 1000003 + off;
                memcpy(p + off, &v, 8);
        }
}

static double sha_rate(const uint8_t *buf, size_t size, size_t count)
{
        EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
        uint8_t out[32];
        unsigned int l;
        double t = now();
        for (size_t i = 0; i < count; i++)
                EVP_Digest(buf, size, out, &l, md, NULL);
        t = now() - t;
        EVP_MD_free(md);
        return (double)size * (double)count / t;
}

/* The disk's own rate for the same bytes: sequential 1 MiB writes, then one fdatasync. */
static double disk_rate(const char *home, const uint8_t *buf, size_t size, long count)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/disk-reference", home ? home : "/tmp");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return 0;
        double t = now();
        for (long i = 0; i < count; i++)
                if (write(fd, buf, size) != (ssize_t)size)
                        break;
        fdatasync(fd);
        t = now() - t;
        close(fd);
        unlink(path);
        return (double)size * (double)count / t;
}

/* One 4 KiB write and fdatasync of a new file in the store's home: the floor of a durable record. */
static double small_sync(const char *home)
{
        char path[4096], b[4096] = {1};
        snprintf(path, sizeof(path), "%s/small-reference", home ? home : "/tmp");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return 0;
        double t = now();
        if (write(fd, b, sizeof(b)) == (ssize_t)sizeof(b))
                fdatasync(fd);
        t = now() - t;
        close(fd);
        unlink(path);
        return t;
}

/* durable: ends with nono_store_sync(); else waits only until the writer committed (page cache). */
static double ingest(nono_store *s, uint8_t *buf, size_t size, long count, uint64_t base, bool durable)
{
        nono_digest d;
        int r;
        double t = now();
        for (long i = 0; i < count; i++) {
                stamp(buf, size, base + (uint64_t)i);
                if ((r = nono_object_put_buf(s, buf, size, &d, NONO_ASYNC)) < 0)
                        die("put 1 MiB", r);
        }
        if (durable && (r = nono_store_sync(s)) < 0)
                die("sync", r);
        if (!durable)
                writer_drain(s);
        return (double)count * (double)size / (now() - t);
}

static uint64_t event_pages(nono_store *s)
{
        MDB_txn *txn;
        MDB_stat st;
        if (rtxn_begin(s, &txn) < 0)
                return 0;
        mdb_stat(txn, s->db_events, &st);
        rtxn_end(s, txn);
        return (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * (uint64_t)st.ms_psize;
}

int main(int argc, char **argv)
{
        const char *home = argc > 1 ? argv[1] : NULL;
        long mb = envl("NONO_BENCH_MB", 256), small = envl("NONO_BENCH_SMALL", 20000);
        long nev = envl("NONO_BENCH_EVENTS", 1000000), batch = envl("NONO_BENCH_BATCH", 1000);
        const size_t big = 1u << 20, little = 4096;
        nono_store *s;
        nono_digest d;
        int r;

        /* What nono run pays before the agent starts: the first open in this process (on a store that
         * exists, as after the first session) and one durable session record; against one small durable
         * write in the same directory. */
        pid_t pid = fork(); /* creates the store without loading anything into this process */
        if (pid == 0) {
                r = nono_store_open(home, 0, &s);
                if (r == 0)
                        nono_store_close(s);
                _exit(r < 0);
        }
        int status = 1;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || status != 0)
                die("creating the store", -EIO);
        double t_open = now();
        if ((r = nono_store_open(home, 0, &s)) < 0)
                die("open", r);
        t_open = now() - t_open;
        struct nono_session s0 = {0};
        char *av0[] = {"bench", NULL};
        s0.argv = av0;
        double t_create = now();
        if ((r = nono_session_create(s, &s0)) < 0)
                die("session", r);
        t_create = now() - t_create;
        double t_fsync = small_sync(home);
        uint8_t *buf = malloc(big);
        fill(buf, big, 1);

        /* raw SHA-256, same buffers, same process */
        double c0 = cpu();
        double sha_big = sha_rate(buf, big, (size_t)mb);
        double sha_cpu = cpu() - c0;
        double sha_small = sha_rate(buf, little, (size_t)(small < 20000 ? small : 20000));

        /* 1 MiB objects: durable (the disk is part of the measure), then with commits left to the page
         * cache (MDB_NOSYNC, benchmark only: the store's own CPU cost, hashing and writing in parallel) */
        if (getenv("NONO_BENCH_ONLY_NOSYNC")) { /* for profiling the store's own cost */
                mdb_env_set_flags(s->env, MDB_NOSYNC, 1);
                c0 = cpu();
                double rate = ingest(s, buf, big, mb, 1u << 30, false);
                printf("nosync ingest %.0f MB/s, CPU %.3f s, SHA-256 %.0f MB/s CPU %.3f s\n", rate / 1e6,
                       cpu() - c0, sha_big / 1e6, sha_cpu);
                nono_store_close(s);
                free(buf);
                return 0;
        }
        double disk = disk_rate(home, buf, big, mb);
        double big_rate = ingest(s, buf, big, mb, 0, true);
        mdb_env_set_flags(s->env, MDB_NOSYNC, 1);
        c0 = cpu();
        double cpu_rate = ingest(s, buf, big, mb, 1u << 30, false);
        double ingest_cpu = cpu() - c0;
        mdb_env_set_flags(s->env, MDB_NOSYNC, 0);
        if ((r = nono_store_sync(s)) < 0)
                die("sync", r);
        double t;

        /* 1 MiB objects, each durable before the next (fsync per object) */
        long nsync = mb < 32 ? mb : 32;
        t = now();
        for (long i = 0; i < nsync; i++) {
                stamp(buf, big, (uint64_t)(i + mb));
                if ((r = nono_object_put_buf(s, buf, big, &d, 0)) < 0)
                        die("put 1 MiB sync", r);
        }
        double t_sync = now() - t;

        /* 4 KiB objects */
        t = now();
        for (long i = 0; i < small; i++) {
                uint64_t v = (uint64_t)i + 0x100000000ull;
                memcpy(buf, &v, 8);
                if ((r = nono_object_put_buf(s, buf, little, &d, NONO_ASYNC)) < 0)
                        die("put 4 KiB", r);
        }
        if ((r = nono_store_sync(s)) < 0)
                die("sync", r);
        double t_small = now() - t;

        /* events: warm the path table, then measure appends on paths already seen */
        struct nono_session ses = {0};
        char *av[] = {"bench", NULL};
        ses.argv = av;
        if ((r = nono_session_create(s, &ses)) < 0)
                die("session", r);
        const int npaths = 2000;
        char(*paths)[48] = malloc((size_t)npaths * 48);
        for (int i = 0; i < npaths; i++)
                snprintf(paths[i], 48, "src/module-%d/file-%d.c", i / 50, i);
        struct nono_event *ev = calloc((size_t)batch, sizeof(*ev));
        int64_t t0 = now_ns();
        uint64_t seq = 0;
        for (long i = 0; i < npaths; i += batch) {
                long m = npaths - i < batch ? npaths - i : batch;
                for (long j = 0; j < m; j++)
                        ev[j] = (struct nono_event){.time_ns = t0,
                                                    .type = NONO_EV_FILE,
                                                    .op = NONO_OP_OPEN,
                                                    .path = paths[i + j],
                                                    .pid = 4242,
                                                    .ppid = 1,
                                                    .uid = 1000};
                if ((r = nono_events_append(s, ses.id, ev, (size_t)m, 0)) < 0)
                        die("append", r);
        }
        uint64_t pages0 = event_pages(s);
        t = now();
        for (long done = 0; done < nev; done += batch) {
                long m = nev - done < batch ? nev - done : batch;
                for (long j = 0; j < m; j++) {
                        seq++;
                        ev[j] = (struct nono_event){.time_ns = t0 + (int64_t)seq * 1500,
                                                    .pid = 4242 + (seq % 97 == 0),
                                                    .ppid = 1,
                                                    .uid = 1000,
                                                    .type = NONO_EV_FILE,
                                                    .op = seq % 3 ? NONO_OP_OPEN : NONO_OP_LOOKUP,
                                                    .root = 0,
                                                    .path = paths[(seq * 7919) % npaths],
                                                    .oflags = seq % 3 ? 0x8000 : 0,
                                                    .bytes_read = seq % 3 ? 4096 : 0};
                }
                if ((r = nono_events_append(s, ses.id, ev, (size_t)m, NONO_ASYNC)) < 0)
                        die("append", r);
        }
        if ((r = nono_store_sync(s)) < 0)
                die("sync", r);
        double t_ev = now() - t;
        double per_event = (double)(event_pages(s) - pages0) / (double)nev;
        double ev_rate = (double)nev / t_ev;

        printf("| measure | nono store | reference (same run) | ratio | target |\n");
        printf("|---|---:|---:|---:|---|\n");
        printf("| 1 MiB object ingest, commits not flushed (%ld MiB) | %.0f MB/s | SHA-256 %.0f MB/s | %.2f "
               "| >= 0.70 |\n",
               mb, cpu_rate / 1e6, sha_big / 1e6, cpu_rate / sha_big);
        printf(
            "| 1 MiB object ingest, commits not flushed: CPU time | %.2f s | SHA-256 %.2f s | %.2f | - |\n",
            ingest_cpu, sha_cpu, sha_cpu / ingest_cpu);
        printf("| 1 MiB object ingest, durable (%ld MiB, async + sync) | %.0f MB/s | SHA-256 %.0f MB/s | "
               "%.2f | >= 0.70 |\n",
               mb, big_rate / 1e6, sha_big / 1e6, big_rate / sha_big);
        printf("| 1 MiB object ingest, durable, vs the disk | %.0f MB/s | write+fdatasync %.0f MB/s | %.2f | "
               "- |\n",
               big_rate / 1e6, disk / 1e6, big_rate / disk);
        printf("| 1 MiB object ingest, durable per object | %.1f objects/s (%.0f MB/s) | SHA-256 %.0f MB/s | "
               "%.2f | - |\n",
               (double)nsync / t_sync, (double)nsync * (double)big / t_sync / 1e6, sha_big / 1e6,
               (double)nsync * (double)big / t_sync / sha_big);
        printf("| 4 KiB object ingest (%ld objects) | %.0f objects/s (%.1f MB/s) | SHA-256 %.0f hashes/s | "
               "%.2f | - |\n",
               small, (double)small / t_small, (double)small * little / t_small / 1e6, sha_small / little,
               ((double)small / t_small) / (sha_small / little));
        printf("| event append (%ld events, batches of %ld) | %.0f events/s | target 500000 events/s | %.2f "
               "| >= 1.00 |\n",
               nev, batch, ev_rate, ev_rate / 500000.0);
        printf("| stored bytes per event (paths already seen) | %.1f B | target 64 B | %.2f | <= 1.00 |\n",
               per_event, per_event / 64.0);
        printf("| store open (first in process) + durable session create | %.1f + %.1f ms | 4 KiB "
               "write+fdatasync %.1f ms | %.2f | - |\n",
               t_open * 1e3, t_create * 1e3, t_fsync * 1e3, t_fsync / (t_open + t_create));
        free(ev);
        free(paths);
        free(buf);
        nono_store_close(s);
        return 0;
}
