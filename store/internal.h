/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - what the store's modules share: the store handle, the writer's work items, the LMDB helpers
 * and the error message plumbing. Nothing outside store/ includes this file; store.h is the public contract.
 *
 * Tables (LMDB named databases); "sid" is the 13-byte session id, integers in keys are big-endian so that
 * LMDB's byte order is numeric order:
 *
 *   meta       "schema" -> le32 version; "idgen" -> last id time and counter; "chunk_bytes" -> le64
 *   chunks     digest -> bytes (<= NONO_CHUNK_SIZE)
 *   objects    id -> le64 size || chunk digests
 *   refs       'c'|'o' digest -> le64 refcount || le64 last put (unix s)   (see gc.c)
 *   sessions   sid -> session record
 *   nodes      sid be64(node) -> node record (without its captured chunks)
 *   nodechunks sid be64(node) be64(index) -> digest || le32 len
 *   paths      sid be32(root) path-key -> path record (see change.c)
 *   events     sid be64(first seq) -> packed batch (see event.c)
 *   evstate    sid -> next seq, head chain, next path id, counts
 *   pathids    sid path-key -> varint path id     (interning, per session)
 *   pathstr    sid be64(path id) -> path
 *   journal    sid -> opaque restore journal
 */
#pragma once

#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"

#define SID_LEN NONO_SESSION_ID_LEN

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

struct intern_cache;

/* One unit of work for the writer thread. Embedded as the first member of each operation's item. */
struct work {
        struct work *next;
        /* Runs inside the batch's write transaction. Returns 0 or a negative errno for a logical failure, in
         * which case it must not have written anything (validate first, then write). LMDB write failures
         * go through db_put()/db_del(), which poison the transaction (s->txn_err) so the batch is retried. */
        int (*run)(nono_store *s, MDB_txn *txn, struct work *w);
        void (*destroy)(struct work *w); /* async items: frees the item after its commit */
        size_t bytes;                    /* payload size, for the queue's memory bound */
        uint64_t ticket;
        int result;
        bool async;
        bool wait_ran; /* writer_submit_nowait: its submitter waits for ran (writer_wait_ran) */
        bool ran;      /* under s->mu: run() has returned in the current attempt */
        char msg[256];
        /* Async items that are part of a sync call (the chunks of a large object): their error goes here
         * rather than to nono_store_sync(). Written by the writer under s->mu; must outlive the item. */
        struct work_sink *sink;
};

struct work_sink {
        int err;
        char msg[256];
};

struct nono_store {
        MDB_env *env;
        char *dir; /* the store directory ($home/store) */
        unsigned flags;
        MDB_dbi db_meta, db_chunks, db_objects, db_refs, db_sessions, db_nodes, db_nodechunks, db_paths,
            db_events, db_evstate, db_pathids, db_pathstr, db_journal;
        /* rollback session ids (session.c, nono_session_list_rollback); false in a read-only open of a store
         * made before the index existed, which then lists the slow way */
        MDB_dbi db_rbsess;
        bool has_rbsess;
        EVP_MD *sha256;
        int64_t gc_grace_s;

        /* Readers hold it shared for the life of a read transaction; the writer takes it exclusively to
         * change the map size (LMDB requires that no transaction of this process be active then). */
        pthread_rwlock_t maplock;

        /* writer queue */
        pthread_mutex_t mu;
        pthread_cond_t cond_work, cond_done;
        struct work *head, *tail;
        uint64_t enqueued, durable;
        size_t queued_bytes;             /* payload queued or in the running batch (the memory bound) */
        size_t pending_n, pending_bytes; /* in the queue, not yet taken by the writer */
        size_t pending_sync;             /* of those, sync calls (someone is waiting) */
        unsigned draining;               /* writer_drain callers: commit without waiting for more */
        bool stop, thread_started;
        pthread_t thread;
        int async_err;
        char async_msg[256];
        bool all_synced; /* under mu: everything committed so far is also flushed */
        bool defer;      /* under mu: sync calls wait for the commit only (nono_store_defer_sync) */

        /* 1 MiB buffers for async copies and fd reads, recycled: fresh pages cost a fault each, which
         * dominated async ingest on a VM (see object.c). */
        pthread_mutex_t pool_mu;
        void *pool[32];
        size_t pool_n;

        /* writer-thread-only state */
        bool meta_unsynced;         /* an async-only commit left its meta page unflushed (MDB_NOMETASYNC) */
        int txn_err;                /* first LMDB failure in the current write transaction */
        struct intern_cache *cache; /* (session, path) -> path id, see event.c */
        int64_t chunk_bytes_delta;
        void *scratch; /* event.c: reusable batch array */
        size_t scratch_cap;
};

/* ---- errors (util.c) ---- */
int store_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int store_mdb_err(nono_store *s, int rc, const char *what);
void store_err_clear(void);
void store_err_set_raw(const char *msg);

/* ---- hashing (util.c) ---- */
const EVP_MD *store_sha256(nono_store *s); /* fetched on first use; s may be NULL */
void sha256_buf(nono_store *s, const void *buf, size_t len, nono_digest *out);
void object_id(nono_store *s, uint64_t size, const nono_digest *chunks, size_t n, nono_digest *out);
int64_t now_s(void);
int64_t now_ns(void);

/* ---- transactions (env.c) ---- */
int rtxn_begin(nono_store *s, MDB_txn **txn);
void rtxn_end(nono_store *s, MDB_txn *txn);
int store_writable(nono_store *s);
int store_grow_map(nono_store *s, size_t min_size);
int store_session_check(const char *id);

/* LMDB write helpers for run() functions: on failure they record the LMDB error in s->txn_err. */
int db_put(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl);
int db_del(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl);
/* Returns 0 and fills *v, -ENOENT, or another negative errno (never poisons: usable in read txns). */
int db_get(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *v);
/* Deletes every key starting with prefix; calls each(k, v) first when given (may be NULL). */
int db_del_prefix(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t pl,
                  int (*each)(nono_store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v));

/* ---- writer (writer.c) ---- */
int writer_start(nono_store *s);
void writer_stop(nono_store *s);
/* Queues w. Sync: waits for its commit and returns w->result (message copied to this thread). Async: w must
 * be heap-allocated with w->destroy set; returns 0 once queued. */
int writer_submit(nono_store *s, struct work *w, bool async);
/* Queues a sync item and returns at once (0 or an error); then writer_wait_ran() returns once the item has
 * run in a write transaction (its result so far: its output, such as a new session's id, is there) and
 * writer_wait() once it is durable (its final result). The caller keeps w until writer_wait returned. */
int writer_submit_nowait(nono_store *s, struct work *w);
int writer_wait_ran(nono_store *s, struct work *w);
int writer_wait(nono_store *s, struct work *w);
/* For heap items with destroy set: async, or sync and then destroyed here. */
int writer_submit_owned(nono_store *s, struct work *w, bool async);
/* Waits until everything queued so far is committed, without consuming async errors. */
void writer_drain(nono_store *s);
/* After a sync call whose earlier async parts reported into k: the first error among them, else r. */
int writer_sink_result(nono_store *s, struct work_sink *k, int r);

/* ---- buffer pool (object.c) ---- */
#define POOL_BLOCK (16u * NONO_CHUNK_SIZE)
void *pool_get(nono_store *s);
void pool_put(nono_store *s, void *p);
void pool_free(nono_store *s);

/* ---- refs (object.c) ---- */
enum { REF_CHUNK = 'c', REF_OBJECT = 'o' };
int ref_get(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, uint64_t *count, int64_t *t);
int ref_set(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, uint64_t count, int64_t t);
/* Adds delta to a reference count; -ENOENT (nothing written) when the entry does not exist. */
int ref_add(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, int64_t delta);
int object_unref_chunks(nono_store *s, MDB_txn *txn, const nono_digest *id);

/* ---- per-session cleanup and checks ---- */
int session_require(nono_store *s, MDB_txn *txn, const char *sid); /* 0, or -ENOENT with a message */
int session_rbsess_build(nono_store *s, MDB_txn *txn);             /* fills the new rollback-session index */
int change_delete_session(nono_store *s, MDB_txn *txn, const char *sid);
int event_delete_session(nono_store *s, MDB_txn *txn, const char *sid);

/* ---- interning cache (event.c) ---- */
void intern_cache_free(struct intern_cache *c);
void intern_cache_reset(nono_store *s);

/* A string as (part of) an LMDB key, which is at most 511 bytes: strings longer than LONG_KEY_MAX are
 * keyed by their first LONG_KEY_MAX bytes and their SHA-256. Writes at most LONG_KEY_BUF bytes. */
#define LONG_KEY_MAX 440
#define LONG_KEY_BUF (LONG_KEY_MAX + 32)
size_t long_key(uint8_t *out, const char *str, size_t len);

/* ---- big-endian key helpers ---- */
static inline void be64_put(uint8_t *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (uint8_t)v;
}
static inline uint64_t be64_get(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}
static inline void be32_put(uint8_t *p, uint32_t v)
{
        for (int i = 3; i >= 0; i--, v >>= 8)
                p[i] = (uint8_t)v;
}
static inline uint32_t be32_get(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void le64_put(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++, v >>= 8)
                p[i] = (uint8_t)v;
}
static inline uint64_t le64_get(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}
static inline void le32_put(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++, v >>= 8)
                p[i] = (uint8_t)v;
}
static inline uint32_t le32_get(const uint8_t *p)
{
        return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
