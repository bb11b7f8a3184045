/* SPDX-License-Identifier: Apache-2.0 */
/*
 * writer.c - the store's single writer thread and its group commit.
 *
 * LMDB allows one write transaction at a time per environment, and a durable commit costs an fdatasync.
 * Callers therefore never write themselves: they queue a work item and (unless NONO_ASYNC) sleep until the
 * commit that contains it is on disk. The writer takes everything queued, runs it in one transaction and
 * commits once, so N concurrent callers pay for one sync instead of N. Tickets are handed out in queue order
 * and batches are queue prefixes, so "durable >= my ticket" means my work is on disk.
 *
 * Failure isolation: a work item that fails logically returns an error without writing (see struct work).
 * An LMDB failure poisons the transaction: the batch is aborted and, for MDB_MAP_FULL, retried after the map
 * grows; for anything else every item is retried alone so only the culprit fails. Items must therefore be
 * re-runnable, and per-transaction caches (path interning) are reset on every abort.
 *
 * The queue is bounded (QUEUE_MAX_BYTES of payload) so an async producer cannot exhaust memory.
 *
 * Batch and queue sizes are small on purpose (2 MiB, 4 MiB): bulk content is copied three times on its way
 * (caller -> pool block, pool block -> LMDB dirty page, dirty page -> page cache at commit). With 16 MiB
 * batches those copies ran from cold memory and cost as much CPU as hashing (perf: copy_folio_from_iter
 * 29%, memmove 20%, SHA-256 29%); with batches that stay in the CPU caches, ingest CPU fell 2-3x.
 *
 * Async-only work may wait up to ASYNC_DELAY_NS (50 ms) for more to arrive before the writer commits it, so
 * a stream of small async puts (4 KiB objects, events) shares one commit instead of paying one each; a
 * sync caller in the queue, a full batch, or a caller draining the queue (writer_drain) ends the wait at
 * once. Only async work waits: what a caller waits for (a pre-image, the session record, the end) never
 * does. The price is that async work queued in the last 50 ms before the process is killed is lost (for
 * events, on top of the ~100 ms fs/rec.c holds them). It was 2 ms: a `nono run -- /bin/true` then made
 * five commits with an fdatasync each (record, start event, exec event, end, final flush); the start and
 * exec events now go with the end's commit.
 *
 * Memory: LMDB mallocs the dirty pages of every transaction (a 64 KiB chunk is a 17-page block) and frees
 * them at commit. glibc returns a free heap top above M_TRIM_THRESHOLD (128 KiB by default) to the kernel,
 * so each transaction faulted its pages in again: measured, that made ingest cost 4x the CPU (and page
 * faults are dear in a VM). The first store opened in a process raises M_TRIM_THRESHOLD to TRIM_THRESHOLD
 * for the process; the cost is that up to that much freed heap stays mapped.
 *
 * Syncs: a batch that holds only NONO_ASYNC work commits with MDB_NOMETASYNC - the data pages are flushed,
 * the new meta page is written but not flushed - which halves the fsyncs of bulk ingest and keeps the file
 * consistent (a power cut may undo that last commit, never corrupt it). A batch with any sync caller, or the
 * barrier that nono_store_sync() queues, commits with full syncs and flushes any meta page left behind.
 * A process crash (SIGKILL) loses nothing committed either way: the page cache survives it.
 *
 * Deferred durability (nono_store_defer_sync): a caller that makes several sync calls in a row and only
 * needs the last to be durable (nono run: the session record, then its start event; at the end the roots'
 * events, the end event, the seal) turns it on, and every batch commits as an async-only one does (data
 * flushed, meta page not): one fdatasync per commit instead of two, and a sync call returns once its work
 * is committed - readable by every reader, kept across a crash of this process, but not across a power cut
 * until the next full sync. Turning it off and calling nono_store_sync() makes all of it durable with one
 * more fdatasync. The file stays consistent throughout (a power cut undoes the unflushed commits whole).
 */
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <time.h>

#include "store/internal.h"

#define BATCH_MAX_ITEMS 4096
#define BATCH_MAX_BYTES (2u << 20)
#define QUEUE_MAX_BYTES (4u << 20)
#define MAP_MAX         (1ull << 42)
#define ASYNC_DELAY_NS  50000000
#define TRIM_THRESHOLD  (64 << 20)

static void tune_malloc(void)
{
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
}

static void fail_items(struct work **items, size_t n, int err, const char *msg)
{
        for (size_t i = 0; i < n; i++) {
                items[i]->result = err;
                snprintf(items[i]->msg, sizeof(items[i]->msg), "%s", msg);
        }
}

static int write_txn_begin(nono_store *s, MDB_txn **txn)
{
        for (int tries = 0;; tries++) {
                pthread_rwlock_rdlock(&s->maplock);
                int rc = mdb_txn_begin(s->env, NULL, 0, txn);
                if (rc == 0)
                        return 0;
                pthread_rwlock_unlock(&s->maplock);
                if (rc != MDB_MAP_RESIZED || tries > 8)
                        return rc;
                pthread_rwlock_wrlock(&s->maplock);
                rc = mdb_env_set_mapsize(s->env, 0);
                pthread_rwlock_unlock(&s->maplock);
                if (rc)
                        return rc;
        }
}

static void flush_counters(nono_store *s, MDB_txn *txn)
{
        MDB_val v;
        uint8_t b[8];
        uint64_t cur = 0;

        if (!s->chunk_bytes_delta)
                return;
        if (db_get(s, txn, s->db_meta, "chunk_bytes", 11, &v) == 0 && v.mv_size == 8)
                cur = le64_get(v.mv_data);
        le64_put(b, cur + (uint64_t)s->chunk_bytes_delta);
        db_put(s, txn, s->db_meta, "chunk_bytes", 11, b, 8);
}

/* LMDB reports a short write as EIO; when the filesystem has (almost) no space left, that is a full disk. */
static int classify_write_error(nono_store *s, int rc, size_t bytes)
{
        struct statvfs v;

        if (rc != EIO || statvfs(s->dir, &v) < 0)
                return rc;
        uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
        return avail < (uint64_t)bytes + (1u << 20) ? ENOSPC : rc;
}

static void run_batch(nono_store *s, struct work **items, size_t n, bool defer)
{
        MDB_txn *txn;
        int rc;

        for (;;) {
                rc = write_txn_begin(s, &txn);
                if (rc) {
                        int e = store_mdb_err(s, rc, "starting a write transaction");
                        fail_items(items, n, e, nono_store_errmsg());
                        return;
                }
                s->txn_err = 0;
                s->chunk_bytes_delta = 0;
                for (size_t i = 0; i < n && !s->txn_err; i++) {
                        store_err_clear();
                        items[i]->msg[0] = 0;
                        items[i]->result = items[i]->run(s, txn, items[i]);
                        if (items[i]->result < 0)
                                snprintf(items[i]->msg, sizeof(items[i]->msg), "%s", nono_store_errmsg());
                }
                bool waited = false; /* writer_wait_ran: the items' outputs are set, the commit follows */
                for (size_t i = 0; i < n && !s->txn_err; i++)
                        waited |= items[i]->wait_ran;
                if (waited) {
                        pthread_mutex_lock(&s->mu);
                        for (size_t i = 0; i < n; i++)
                                items[i]->ran = true;
                        pthread_cond_broadcast(&s->cond_done);
                        pthread_mutex_unlock(&s->mu);
                }
                if (!s->txn_err)
                        flush_counters(s, txn);
                rc = s->txn_err;
                bool need_sync = false;
                for (size_t i = 0; i < n && !defer; i++)
                        need_sync |= !items[i]->async;
                if (rc) {
                        mdb_txn_abort(txn);
                } else {
                        mdb_env_set_flags(s->env, MDB_NOMETASYNC, need_sync ? 0 : 1);
                        rc = mdb_txn_commit(txn);
                }
                pthread_rwlock_unlock(&s->maplock);
                if (rc == 0 && !need_sync)
                        s->meta_unsynced = true;
                if (rc == 0 && need_sync && s->meta_unsynced) {
                        /* An empty commit does not sync: flush what async commits left. The work is
                         * committed, so a failure here must not re-run it: report it and stop. */
                        int src = mdb_env_sync(s->env, 1);
                        if (src == 0) {
                                s->meta_unsynced = false;
                        } else {
                                int e = store_mdb_err(s, classify_write_error(s, src, 0), "syncing");
                                fail_items(items, n, e, nono_store_errmsg());
                                return;
                        }
                }
                if (rc == 0)
                        return;
                intern_cache_reset(s);
                size_t bytes = 0;
                for (size_t i = 0; i < n; i++)
                        bytes += items[i]->bytes;
                rc = classify_write_error(s, rc, bytes);
                if (rc == MDB_MAP_FULL) {
                        MDB_envinfo info;
                        mdb_env_info(s->env, &info);
                        if (info.me_mapsize < MAP_MAX && store_grow_map(s, 0) == 0)
                                continue;
                }
                if (n > 1 && rc != MDB_MAP_FULL && rc != ENOSPC) {
                        /* Find the culprit: every item alone. */
                        for (size_t i = 0; i < n; i++)
                                run_batch(s, &items[i], 1, defer);
                        return;
                }
                int e = store_mdb_err(s, rc, "committing");
                fail_items(items, n, e, nono_store_errmsg());
                return;
        }
}

static void *writer_main(void *arg)
{
        nono_store *s = arg;
        struct work **items = calloc(BATCH_MAX_ITEMS, sizeof(*items));

        prctl(PR_SET_NAME, "nono-store");

        pthread_mutex_lock(&s->mu);
        for (;;) {
                while (!s->head && !s->stop)
                        pthread_cond_wait(&s->cond_work, &s->mu);
                if (!s->head)
                        break;
                if (!s->pending_sync && !s->stop && !s->draining) {
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_nsec += ASYNC_DELAY_NS;
                        if (until.tv_nsec >= 1000000000) {
                                until.tv_sec++;
                                until.tv_nsec -= 1000000000;
                        }
                        while (!s->pending_sync && !s->stop && !s->draining &&
                               s->pending_n < BATCH_MAX_ITEMS && s->pending_bytes < BATCH_MAX_BYTES &&
                               pthread_cond_timedwait(&s->cond_work, &s->mu, &until) == 0)
                                ;
                }
                size_t n = 0, bytes = 0;
                while (s->head && n < BATCH_MAX_ITEMS &&
                       (n == 0 || bytes + s->head->bytes <= BATCH_MAX_BYTES)) {
                        struct work *w = s->head;
                        s->head = w->next;
                        bytes += w->bytes;
                        s->pending_n--;
                        s->pending_bytes -= w->bytes;
                        s->pending_sync -= !w->async;
                        items[n++] = w;
                }
                if (!s->head)
                        s->tail = NULL;
                bool defer = s->defer;
                pthread_mutex_unlock(&s->mu);

                run_batch(s, items, n, defer);

                /* Read everything we need from the items before publishing: sync callers free theirs. */
                uint64_t last = items[n - 1]->ticket;
                struct work *dead = NULL;
                pthread_mutex_lock(&s->mu);
                for (size_t i = 0; i < n; i++) {
                        struct work *w = items[i];
                        if (!w->async)
                                continue;
                        if (w->result < 0 && w->sink) {
                                if (!w->sink->err) {
                                        w->sink->err = w->result;
                                        snprintf(w->sink->msg, sizeof(w->sink->msg), "%s", w->msg);
                                }
                        } else if (w->result < 0 && !s->async_err) {
                                s->async_err = w->result;
                                snprintf(s->async_msg, sizeof(s->async_msg), "%s", w->msg);
                        }
                        w->next = dead;
                        dead = w;
                }
                s->queued_bytes -= bytes;
                s->durable = last;
                s->all_synced = !s->meta_unsynced;
                pthread_cond_broadcast(&s->cond_done);
                pthread_mutex_unlock(&s->mu);
                while (dead) {
                        struct work *next = dead->next;
                        dead->destroy(dead);
                        dead = next;
                }
                pthread_mutex_lock(&s->mu);
        }
        pthread_mutex_unlock(&s->mu);
        free(items);
        return NULL;
}

void nono_store_tune_process(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, tune_malloc);
}

int writer_start(nono_store *s)
{
        pthread_rwlockattr_t a;

        nono_store_tune_process();
        /* Writer-preferring, so a steady stream of readers cannot starve a map resize. */
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_destroy(&s->maplock);
        pthread_rwlock_init(&s->maplock, &a);
        pthread_rwlockattr_destroy(&a);
        /* opening a store loads no crypto library: the writer loads libsodium at its first event (the chain,
         * sodium-lazy.c), libcrypto only when content is hashed (crypto-lazy.c), off `nono run`'s way to the
         * agent */
        int r = pthread_create(&s->thread, NULL, writer_main, s);
        if (r)
                return store_err(-r, "cannot start the store's writer thread: %s", strerror(r));
        s->thread_started = true;
        return 0;
}

void writer_stop(nono_store *s)
{
        if (!s->thread_started)
                return;
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cond_work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        s->thread_started = false;
        /* The queue drained before the thread ended; flush a meta page an async-only commit left. */
        if (s->meta_unsynced)
                mdb_env_sync(s->env, 1);
}

static int submit(nono_store *s, struct work *w, bool async, bool wait);

int writer_submit(nono_store *s, struct work *w, bool async)
{
        return submit(s, w, async, !async);
}

int writer_submit_nowait(nono_store *s, struct work *w)
{
        return submit(s, w, false, false);
}

int writer_wait_ran(nono_store *s, struct work *w)
{
        pthread_mutex_lock(&s->mu);
        while (!w->ran && s->durable < w->ticket)
                pthread_cond_wait(&s->cond_done, &s->mu);
        int r = w->result;
        pthread_mutex_unlock(&s->mu);
        return r;
}

int writer_wait(nono_store *s, struct work *w)
{
        pthread_mutex_lock(&s->mu);
        while (s->durable < w->ticket)
                pthread_cond_wait(&s->cond_done, &s->mu);
        pthread_mutex_unlock(&s->mu);
        if (w->result < 0)
                store_err_set_raw(w->msg);
        return w->result;
}

static int submit(nono_store *s, struct work *w, bool async, bool wait)
{
        int r = store_writable(s);
        if (r < 0) {
                if (async)
                        w->destroy(w);
                return r;
        }
        pthread_mutex_lock(&s->mu);
        while (s->queued_bytes && s->queued_bytes + w->bytes > QUEUE_MAX_BYTES)
                pthread_cond_wait(&s->cond_done, &s->mu);
        w->ticket = ++s->enqueued;
        w->async = async;
        w->result = 0;
        w->ran = false;
        w->wait_ran = !async && !wait;
        w->next = NULL;
        if (s->tail)
                s->tail->next = w;
        else
                s->head = w;
        s->tail = w;
        s->queued_bytes += w->bytes;
        s->pending_n++;
        s->pending_bytes += w->bytes;
        s->pending_sync += !async;
        pthread_cond_signal(&s->cond_work);
        if (!wait) {
                pthread_mutex_unlock(&s->mu);
                return 0;
        }
        uint64_t t = w->ticket;
        while (s->durable < t)
                pthread_cond_wait(&s->cond_done, &s->mu);
        pthread_mutex_unlock(&s->mu);
        if (w->result < 0)
                store_err_set_raw(w->msg);
        return w->result;
}

int writer_submit_owned(nono_store *s, struct work *w, bool async)
{
        if (async)
                return writer_submit(s, w, true);
        int r = writer_submit(s, w, false);
        w->destroy(w);
        return r;
}

void writer_drain(nono_store *s)
{
        pthread_mutex_lock(&s->mu);
        uint64_t t = s->enqueued;
        s->draining++; /* the writer commits what it holds without waiting for more */
        pthread_cond_signal(&s->cond_work);
        while (s->durable < t)
                pthread_cond_wait(&s->cond_done, &s->mu);
        s->draining--;
        pthread_mutex_unlock(&s->mu);
}

int writer_sink_result(nono_store *s, struct work_sink *k, int r)
{
        pthread_mutex_lock(&s->mu);
        int e = k->err;
        pthread_mutex_unlock(&s->mu);
        if (e < 0) {
                store_err_set_raw(k->msg);
                return e;
        }
        return r;
}

void nono_store_defer_sync(nono_store *s, bool on)
{
        if (s->flags & NONO_STORE_RDONLY)
                return;
        pthread_mutex_lock(&s->mu);
        s->defer = on;
        pthread_mutex_unlock(&s->mu);
}

static int barrier_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        return 0;
}

int nono_store_async_result(nono_store *s)
{
        pthread_mutex_lock(&s->mu);
        int r = s->async_err;
        if (r < 0)
                store_err_set_raw(s->async_msg);
        s->async_err = 0;
        pthread_mutex_unlock(&s->mu);
        return r;
}

int nono_store_sync(nono_store *s)
{
        struct work barrier = {.run = barrier_run};
        int r;

        if (s->flags & NONO_STORE_RDONLY)
                return 0;
        /* Nothing queued and nothing left unflushed: nothing to wait for. Else a sync item: its batch
         * commits with full syncs, after everything queued before it. */
        pthread_mutex_lock(&s->mu);
        bool idle = s->durable == s->enqueued && (s->all_synced || s->defer);
        pthread_mutex_unlock(&s->mu);
        if (!idle && (r = writer_submit(s, &barrier, false)) < 0)
                return r;
        pthread_mutex_lock(&s->mu);
        r = s->async_err;
        if (r < 0)
                store_err_set_raw(s->async_msg);
        s->async_err = 0;
        pthread_mutex_unlock(&s->mu);
        return r;
}
