/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gc.c - garbage collection of chunks and objects that no session references.
 *
 * The race it must not lose: a put writes content with refcount 0, and only a later transaction (the
 * node_put that references it) raises the count - possibly in another process. A collector that freed every
 * refcount-0 entry could free content between those two transactions, and the node would then point at
 * nothing. So every put (including a put of content that already exists) stamps the entry with its put
 * time, and gc frees only entries that are unreferenced AND were last put more than the grace period ago
 * (default one hour; nono_store_set_gc_grace()). A node_put that arrives after the grace period finds its
 * content gone and fails with -ENOENT instead of recording a dangling reference. Because gc runs in the
 * writer's transaction, it is serialised with every put of every process by LMDB's writer lock.
 *
 * Objects go first: freeing an object drops one count from each of its chunks, which may then be freed in
 * the same pass. Each transaction frees at most GC_BATCH entries; gc loops until nothing is left.
 */
#include <errno.h>
#include <string.h>

#include "store/internal.h"

#define GC_BATCH 20000

struct gc_work {
        struct work w;
        struct nono_gc_stats st;
        bool more;
};

/* Collects up to max digests of kind whose count is 0 and whose put time is older than the cutoff. */
static int collect(nono_store *s, MDB_txn *txn, char kind, int64_t cutoff, nono_digest *out, size_t max,
                   size_t *n)
{
        MDB_cursor *c;
        uint8_t k0 = (uint8_t)kind;
        MDB_val k = {1, &k0}, v;
        int rc;

        *n = 0;
        if ((rc = mdb_cursor_open(txn, s->db_refs, &c)))
                return store_mdb_err(s, rc, "scanning references");
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && *n < max;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                if (k.mv_size != 33 || ((uint8_t *)k.mv_data)[0] != (uint8_t)kind)
                        break;
                if (v.mv_size != 16)
                        continue;
                if (le64_get(v.mv_data) == 0 && (int64_t)le64_get((uint8_t *)v.mv_data + 8) <= cutoff)
                        memcpy(out[(*n)++].b, (uint8_t *)k.mv_data + 1, 32);
        }
        mdb_cursor_close(c);
        return 0;
}

static int gc_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct gc_work *g = (struct gc_work *)w;
        int64_t cutoff = now_s() - s->gc_grace_s;
        _cleanup_free_ nono_digest *ds = malloc(GC_BATCH * sizeof(*ds));
        uint8_t rk[33];
        size_t n;
        MDB_val v;
        int r;

        g->more = false;
        g->st = (struct nono_gc_stats){0}; /* the writer may re-run an item */
        if (!ds)
                return store_err(-ENOMEM, "out of memory");
        if ((r = collect(s, txn, REF_OBJECT, cutoff, ds, GC_BATCH, &n)) < 0)
                return r;
        g->more = n == GC_BATCH;
        for (size_t i = 0; i < n; i++) {
                object_unref_chunks(s, txn, &ds[i]);
                db_del(s, txn, s->db_objects, ds[i].b, 32);
                rk[0] = REF_OBJECT;
                memcpy(rk + 1, ds[i].b, 32);
                db_del(s, txn, s->db_refs, rk, 33);
                g->st.objects_freed++;
        }
        if (g->more)
                return 0;
        if ((r = collect(s, txn, REF_CHUNK, cutoff, ds, GC_BATCH, &n)) < 0)
                return r;
        g->more = n == GC_BATCH;
        for (size_t i = 0; i < n; i++) {
                if (db_get(s, txn, s->db_chunks, ds[i].b, 32, &v) == 0) {
                        g->st.bytes_freed += v.mv_size;
                        s->chunk_bytes_delta -= (int64_t)v.mv_size;
                        db_del(s, txn, s->db_chunks, ds[i].b, 32);
                }
                rk[0] = REF_CHUNK;
                memcpy(rk + 1, ds[i].b, 32);
                db_del(s, txn, s->db_refs, rk, 33);
                g->st.chunks_freed++;
        }
        return 0;
}

int nono_store_gc_now(nono_store *st, struct nono_gc_stats *out)
{
        int64_t grace = st->gc_grace_s;

        st->gc_grace_s = 0;
        int r = nono_store_gc(st, out);
        st->gc_grace_s = grace;
        return r;
}

int nono_store_gc(nono_store *st, struct nono_gc_stats *out)
{
        struct nono_gc_stats total = {0};
        int r;

        for (;;) {
                struct gc_work g = {.w.run = gc_run};
                if ((r = writer_submit(st, &g.w, false)) < 0)
                        break;
                total.chunks_freed += g.st.chunks_freed;
                total.bytes_freed += g.st.bytes_freed;
                total.objects_freed += g.st.objects_freed;
                if (!g.more)
                        break;
        }
        if (out)
                *out = total;
        return r;
}
