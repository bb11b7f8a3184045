/* SPDX-License-Identifier: Apache-2.0 */
/*
 * object.c - chunks, objects and their reference counts.
 *
 * Chunking is fixed and aligned: chunk i of a content covers bytes [i*64 KiB, (i+1)*64 KiB). fs/ relies on
 * this to save the pre-image of only the blocks of a big file that an agent overwrites, and those blocks
 * then dedupe against a later whole-file ingest of the same content. 64 KiB keeps every LMDB value small
 * (16 pages) while the per-chunk overhead (a 32-byte digest, a refs entry) stays under 0.1%.
 *
 * Content is hashed once, in the caller's thread (so hashing runs in parallel with the writer): SHA-256 of
 * each chunk, then the object id = SHA-256("nono-object-v1" || le64 size || chunk digests), which is cheap.
 *
 * Reference counts (table refs) count the holders of a chunk or object: each object holds its chunks (one
 * count per occurrence), each node pre-image holds its object or captured chunks. A fresh put holds nothing;
 * it is protected from garbage collection by its put time (see gc.c) until a node references it.
 */
#include <errno.h>
#include <string.h>

#include "store/internal.h"

#define REF_REFRESH_S   60
#define ITEM_CHUNKS     16 /* chunks per work item when streaming: 1 MiB */
#define SINGLE_ITEM_MAX 64 /* objects up to 4 MiB go as one item */

/* ---- refs ---- */

static void ref_key(uint8_t k[33], char kind, const nono_digest *d)
{
        k[0] = (uint8_t)kind;
        memcpy(k + 1, d->b, 32);
}

int ref_get(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, uint64_t *count, int64_t *t)
{
        uint8_t k[33];
        MDB_val v;
        int r;

        ref_key(k, kind, d);
        if ((r = db_get(s, txn, s->db_refs, k, 33, &v)) < 0)
                return r;
        if (v.mv_size != 16)
                return store_err(-EBADMSG, "store at %s: damaged reference count entry", s->dir);
        if (count)
                *count = le64_get(v.mv_data);
        if (t)
                *t = (int64_t)le64_get((uint8_t *)v.mv_data + 8);
        return 0;
}

int ref_set(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, uint64_t count, int64_t t)
{
        uint8_t k[33], v[16];

        ref_key(k, kind, d);
        le64_put(v, count);
        le64_put(v + 8, (uint64_t)t);
        return db_put(s, txn, s->db_refs, k, 33, v, 16);
}

int ref_add(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, int64_t delta)
{
        uint64_t c;
        int64_t t;
        int r;

        if ((r = ref_get(s, txn, kind, d, &c, &t)) < 0)
                return r;
        if (delta < 0 && (uint64_t)-delta > c)
                c = 0; /* never underflow; a count that was too low only delays nothing */
        else
                c += (uint64_t)delta;
        /* A count that drops to 0 keeps its time: the content becomes collectable at once unless a put
         * refreshes it, which is what a concurrent re-put does. */
        return ref_set(s, txn, kind, d, c, t);
}

/* Present and fresh: refresh the put time of an existing entry so gc leaves it alone for the grace period. */
static int ref_touch(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d, bool *exists)
{
        uint64_t c;
        int64_t t, now = now_s();
        int r = ref_get(s, txn, kind, d, &c, &t);

        *exists = r == 0;
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* Refreshing costs a write, so only a stamp that has aged: well inside the grace period. */
        int64_t every = s->gc_grace_s / 2 < REF_REFRESH_S ? s->gc_grace_s / 2 : REF_REFRESH_S;
        if (now - t > every)
                return ref_set(s, txn, kind, d, c, now);
        return 0;
}

int object_unref_chunks(nono_store *s, MDB_txn *txn, const nono_digest *id)
{
        MDB_val v;
        int r;

        if ((r = db_get(s, txn, s->db_objects, id->b, 32, &v)) < 0)
                return r;
        size_t n = (v.mv_size - 8) / 32;
        /* Copy: ref updates below may move pages under v. */
        _cleanup_free_ nono_digest *ds = malloc(n ? n * 32 : 1);
        if (!ds)
                return store_err(-ENOMEM, "out of memory");
        memcpy(ds, (uint8_t *)v.mv_data + 8, n * 32);
        for (size_t i = 0; i < n; i++)
                ref_add(s, txn, REF_CHUNK, &ds[i], -1);
        return 0;
}

/* ---- put ---- */

struct chunk_in {
        nono_digest d;
        const uint8_t *data;
        uint32_t len;
};

struct objput_work {
        struct work w;
        nono_store *s;
        bool pooled; /* owned came from the pool */
        struct chunk_in *chunks;
        size_t n;
        void *owned; /* buffer owning chunk data, if any */
        bool has_object;
        nono_digest id;
        uint64_t size;
        nono_digest *all; /* every chunk digest of the object, in order */
        size_t n_all;
};

void *pool_get(nono_store *s)
{
        void *p = NULL;
        pthread_mutex_lock(&s->pool_mu);
        if (s->pool_n)
                p = s->pool[--s->pool_n];
        pthread_mutex_unlock(&s->pool_mu);
        return p ? p : malloc(POOL_BLOCK);
}

void pool_put(nono_store *s, void *p)
{
        pthread_mutex_lock(&s->pool_mu);
        if (p && s->pool_n < sizeof(s->pool) / sizeof(s->pool[0])) {
                s->pool[s->pool_n++] = p;
                p = NULL;
        }
        pthread_mutex_unlock(&s->pool_mu);
        free(p);
}

void pool_free(nono_store *s)
{
        while (s->pool_n)
                free(s->pool[--s->pool_n]);
}

static void objput_destroy(struct work *w)
{
        struct objput_work *o = (struct objput_work *)w;
        free(o->chunks);
        if (o->pooled)
                pool_put(o->s, o->owned);
        else
                free(o->owned);
        free(o->all);
        free(o);
}

static int chunk_store(nono_store *s, MDB_txn *txn, const struct chunk_in *c)
{
        bool exists;
        int r;

        if ((r = ref_touch(s, txn, REF_CHUNK, &c->d, &exists)) < 0 || exists)
                return r;
        if ((r = db_put(s, txn, s->db_chunks, c->d.b, 32, c->data, c->len)) < 0)
                return r;
        s->chunk_bytes_delta += c->len;
        return ref_set(s, txn, REF_CHUNK, &c->d, 0, now_s());
}

static int object_record_put(nono_store *s, MDB_txn *txn, const struct objput_work *o)
{
        _cleanup_free_ uint8_t *rec = malloc(8 + o->n_all * 32);
        int r;

        if (!rec)
                return store_err(-ENOMEM, "out of memory");
        le64_put(rec, o->size);
        if (o->n_all)
                memcpy(rec + 8, o->all, o->n_all * 32);
        if ((r = db_put(s, txn, s->db_objects, o->id.b, 32, rec, 8 + o->n_all * 32)) < 0)
                return r;
        return ref_set(s, txn, REF_OBJECT, &o->id, 0, now_s());
}

/* Stores a new object whose chunks all travel in this item: each chunk is created already holding the
 * object's reference (or gains it), which saves a read and a write per chunk over put-then-reference. */
static int object_store_whole(nono_store *s, MDB_txn *txn, struct objput_work *o)
{
        int r;

        for (size_t i = 0; i < o->n; i++) {
                const struct chunk_in *c = &o->chunks[i];
                r = ref_add(s, txn, REF_CHUNK, &c->d, 1);
                if (r == -ENOENT) {
                        if ((r = db_put(s, txn, s->db_chunks, c->d.b, 32, c->data, c->len)) < 0)
                                return r;
                        s->chunk_bytes_delta += c->len;
                        r = ref_set(s, txn, REF_CHUNK, &c->d, 1, now_s());
                }
                if (r < 0)
                        return r;
        }
        return object_record_put(s, txn, o);
}

static int objput_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct objput_work *o = (struct objput_work *)w;
        bool exists = false;
        int r;

        if (o->has_object) {
                if ((r = ref_touch(s, txn, REF_OBJECT, &o->id, &exists)) < 0 || exists)
                        return r;
                if (o->n == o->n_all) /* the common case: the whole object in this item */
                        return object_store_whole(s, txn, o);
        }
        for (size_t i = 0; i < o->n; i++)
                if ((r = chunk_store(s, txn, &o->chunks[i])) < 0)
                        return r;
        if (!o->has_object)
                return 0;
        /* Chunks from earlier items must still be there (gc could only take them after the grace period). */
        for (size_t i = 0; i < o->n_all; i++)
                if ((r = ref_get(s, txn, REF_CHUNK, &o->all[i], NULL, NULL)) < 0) {
                        char hex[65];
                        nono_digest_hex(&o->all[i], hex);
                        return store_err(
                            r == -ENOENT ? -EIO : r,
                            "store at %s: chunk %s of the object being stored is missing (an earlier "
                            "write failed or gc ran for longer than the grace period): retry",
                            s->dir, hex);
                }
        if ((r = object_record_put(s, txn, o)) < 0)
                return r;
        for (size_t i = 0; i < o->n_all; i++)
                if ((r = ref_add(s, txn, REF_CHUNK, &o->all[i], 1)) < 0)
                        return r;
        return 0;
}

static struct objput_work *objput_new(nono_store *s, size_t n_chunks)
{
        struct objput_work *o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->s = s;
        o->chunks = calloc(n_chunks ? n_chunks : 1, sizeof(*o->chunks));
        if (!o->chunks) {
                free(o);
                return NULL;
        }
        o->w.run = objput_run;
        o->w.destroy = objput_destroy;
        return o;
}

static int objput_submit(nono_store *s, struct objput_work *o, bool async)
{
        return writer_submit_owned(s, &o->w, async);
}

static int oom(void)
{
        return store_err(-ENOMEM, "out of memory");
}

int nono_chunk_put(nono_store *s, const void *buf, size_t len, nono_digest *out, unsigned flags)
{
        bool async = flags & NONO_ASYNC;
        struct objput_work *o;

        if (len > NONO_CHUNK_SIZE)
                return store_err(-EINVAL, "chunk of %zu bytes is larger than NONO_CHUNK_SIZE (%u)", len,
                                 NONO_CHUNK_SIZE);
        sha256_buf(s, buf, len, out);
        if (!(o = objput_new(s, 1)))
                return oom();
        o->n = 1;
        o->chunks[0] = (struct chunk_in){.d = *out, .data = buf, .len = (uint32_t)len};
        o->w.bytes = len;
        if (async) {
                if (!(o->owned = malloc(len ? len : 1))) {
                        objput_destroy(&o->w);
                        return oom();
                }
                memcpy(o->owned, buf, len);
                o->chunks[0].data = o->owned;
        }
        return objput_submit(s, o, async);
}

/* Hashes the chunks of buf[0..len) into c[], d[]. */
static void hash_chunks(nono_store *s, const uint8_t *buf, size_t len, struct chunk_in *c, nono_digest *d)
{
        for (size_t i = 0, off = 0; off < len; i++, off += NONO_CHUNK_SIZE) {
                size_t l = len - off < NONO_CHUNK_SIZE ? len - off : NONO_CHUNK_SIZE;
                c[i].data = buf + off;
                c[i].len = (uint32_t)l;
                sha256_buf(s, buf + off, l, &c[i].d);
                d[i] = c[i].d;
        }
}

/*
 * The streaming core shared by put_buf and put_fd. next() yields the next block of content (a multiple of
 * NONO_CHUNK_SIZE unless it is the last) and whether the content ended. Blocks become async items; the
 * object record follows as the last item, sync unless the caller asked for async.
 */
struct source {
        /* Owned blocks come from the store's pool (pool_get). */
        int (*next)(struct source *src, uint8_t **buf, size_t *len, bool *owned, bool *eof);
        nono_store *s;
        bool async;
};

static int put_stream(nono_store *s, struct source *src, nono_digest *out, uint64_t *size_out, bool async)
{
        _cleanup_free_ nono_digest *all = NULL;
        size_t n_all = 0, cap_all = 0;
        uint64_t size = 0;
        struct work_sink sink = {0};
        bool eof = false;
        int r;

        while (!eof) {
                uint8_t *buf;
                size_t len;
                bool owned;
                if ((r = src->next(src, &buf, &len, &owned, &eof)) < 0)
                        goto fail;
                size_t n = (len + NONO_CHUNK_SIZE - 1) / NONO_CHUNK_SIZE;
                if (n_all + n > cap_all) {
                        cap_all = (n_all + n) * 2;
                        nono_digest *a = realloc(all, cap_all * sizeof(*a));
                        if (!a) {
                                if (owned)
                                        pool_put(s, buf);
                                r = oom();
                                goto fail;
                        }
                        all = a;
                }
                struct objput_work *o = objput_new(s, n);
                if (!o) {
                        if (owned)
                                pool_put(s, buf);
                        r = oom();
                        goto fail;
                }
                hash_chunks(s, buf, len, o->chunks, all + n_all);
                o->n = n;
                o->w.bytes = len;
                n_all += n;
                size += len;
                if (!owned && async) { /* the caller's buffer does not outlive an async call */
                        o->pooled = len > POOL_BLOCK / 4 && len <= POOL_BLOCK; /* small: plain malloc */
                        if (!(o->owned = o->pooled ? pool_get(s) : malloc(len ? len : 1))) {
                                objput_destroy(&o->w);
                                r = oom();
                                goto fail;
                        }
                        memcpy(o->owned, buf, len);
                        for (size_t i = 0; i < n; i++)
                                o->chunks[i].data = (uint8_t *)o->owned + (o->chunks[i].data - buf);
                } else if (owned) {
                        o->owned = buf;
                        o->pooled = true; /* sources hand out pool blocks */
                }
                if (eof) { /* last block: it carries the object record */
                        o->has_object = true;
                        o->size = size;
                        o->n_all = n_all;
                        object_id(s, size, all, n_all, &o->id);
                        *out = o->id;
                        if (size_out)
                                *size_out = size;
                        o->all = all;
                        all = NULL;
                        r = objput_submit(s, o, async);
                        return async ? r : writer_sink_result(s, &sink, r);
                }
                if (!async)
                        o->w.sink = &sink;
                if ((r = writer_submit(s, &o->w, true)) < 0)
                        goto fail;
        }
        r = -EIO; /* not reached: the last block returns above */
fail:
        if (!async) /* earlier async parts point at sink: wait for them */
                writer_drain(s);
        return r;
}

struct buf_source {
        struct source src;
        const uint8_t *p;
        size_t len, off;
};

static int buf_next(struct source *src, uint8_t **buf, size_t *len, bool *owned, bool *eof)
{
        struct buf_source *b = (struct buf_source *)src;
        size_t left = b->len - b->off;
        /* Sync calls hand the caller's memory to the writer: small objects go whole. Async calls copy, in
         * pool-sized blocks. */
        size_t max = src->async ? ITEM_CHUNKS * NONO_CHUNK_SIZE : (size_t)SINGLE_ITEM_MAX * NONO_CHUNK_SIZE;
        size_t step = left <= max ? left : ITEM_CHUNKS * NONO_CHUNK_SIZE;

        *buf = (uint8_t *)b->p + b->off;
        *len = step;
        *owned = false;
        b->off += step;
        *eof = b->off == b->len;
        return 0;
}

int nono_object_put_buf(nono_store *s, const void *buf, size_t len, nono_digest *out, unsigned flags)
{
        struct buf_source b = {
            .src = {.next = buf_next, .s = s, .async = flags & NONO_ASYNC}, .p = buf, .len = len};
        return put_stream(s, &b.src, out, NULL, flags & NONO_ASYNC);
}

struct fd_source {
        struct source src;
        int fd;
        uint64_t off;
};

static int fd_next(struct source *src, uint8_t **buf, size_t *len, bool *owned, bool *eof)
{
        struct fd_source *f = (struct fd_source *)src;
        const size_t cap = ITEM_CHUNKS * NONO_CHUNK_SIZE;
        uint8_t *p = pool_get(src->s);
        size_t got = 0;

        if (!p)
                return oom();
        *eof = false;
        while (got < cap) {
                ssize_t n = pread(f->fd, p + got, cap - got, (off_t)(f->off + got));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        pool_put(src->s, p);
                        return store_err(-e, "cannot read the file being stored: %s", strerror(e));
                }
                if (n == 0) {
                        *eof = true;
                        break;
                }
                got += (size_t)n;
        }
        f->off += got;
        *buf = p;
        *len = got;
        *owned = true;
        if (!*eof) { /* a full block: peek for EOF so the last block carries the record */
                uint8_t c;
                ssize_t n;
                while ((n = pread(f->fd, &c, 1, (off_t)f->off)) < 0 && errno == EINTR)
                        ;
                *eof = n == 0;
        }
        return 0;
}

int nono_object_put_fd(nono_store *s, int fd, nono_digest *out, uint64_t *size_out, unsigned flags)
{
        struct fd_source f = {.src = {.next = fd_next, .s = s, .async = flags & NONO_ASYNC}, .fd = fd};
        return put_stream(s, &f.src, out, size_out, flags & NONO_ASYNC);
}

/* ---- get ---- */

int nono_chunk_get(nono_store *s, const nono_digest *d, void *buf, size_t cap, size_t *len)
{
        MDB_txn *txn;
        MDB_val v;
        int r;

        if ((r = rtxn_begin(s, &txn)) < 0)
                return r;
        r = db_get(s, txn, s->db_chunks, d->b, 32, &v);
        if (r == 0 && v.mv_size > cap)
                r = store_err(-ENOBUFS, "chunk buffer too small (%zu < %zu)", cap, v.mv_size);
        if (r == 0) {
                memcpy(buf, v.mv_data, v.mv_size);
                *len = v.mv_size;
        } else if (r == -ENOENT) {
                char hex[65];
                nono_digest_hex(d, hex);
                store_err(r, "no chunk %s in the store", hex);
        }
        rtxn_end(s, txn);
        return r;
}

static int object_record(nono_store *s, MDB_txn *txn, const nono_digest *d, MDB_val *v)
{
        int r = db_get(s, txn, s->db_objects, d->b, 32, v);
        if (r == -ENOENT) {
                char hex[65];
                nono_digest_hex(d, hex);
                return store_err(-ENOENT, "no object %s in the store", hex);
        }
        if (r == 0 && (v->mv_size < 8 || (v->mv_size - 8) % 32))
                return store_err(-EBADMSG, "store at %s: damaged object record", s->dir);
        return r;
}

/* Calls fn on each chunk of object d, in order, inside one read transaction. */
static int object_walk(nono_store *s, const nono_digest *d, uint64_t *size,
                       int (*fn)(void *ud, const void *data, size_t len), void *ud)
{
        MDB_txn *txn;
        MDB_val v, c;
        int r;

        if ((r = rtxn_begin(s, &txn)) < 0)
                return r;
        if ((r = object_record(s, txn, d, &v)) < 0)
                goto out;
        *size = le64_get(v.mv_data);
        size_t n = (v.mv_size - 8) / 32;
        uint64_t total = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                const uint8_t *cd = (const uint8_t *)v.mv_data + 8 + i * 32;
                if ((r = db_get(s, txn, s->db_chunks, cd, 32, &c)) < 0) {
                        char hex[65];
                        nono_digest_hex((const nono_digest *)cd, hex);
                        r = store_err(-EBADMSG,
                                      "store at %s: chunk %s of an object is missing: the store is "
                                      "damaged",
                                      s->dir, hex);
                        break;
                }
                total += c.mv_size;
                if (fn)
                        r = fn(ud, c.mv_data, c.mv_size);
        }
        if (r == 0 && total != *size)
                r = store_err(-EBADMSG, "store at %s: object size mismatch (damaged store)", s->dir);
out:
        rtxn_end(s, txn);
        return r;
}

struct membuf {
        uint8_t *p;
        size_t off, cap;
};

static int to_mem(void *ud, const void *data, size_t len)
{
        struct membuf *m = ud;
        if (len > m->cap - m->off)
                return -EBADMSG;
        memcpy(m->p + m->off, data, len);
        m->off += len;
        return 0;
}

int nono_object_size(nono_store *s, const nono_digest *d, uint64_t *size)
{
        MDB_txn *txn;
        MDB_val v;
        int r;

        if ((r = rtxn_begin(s, &txn)) < 0)
                return r;
        if ((r = object_record(s, txn, d, &v)) == 0)
                *size = le64_get(v.mv_data);
        rtxn_end(s, txn);
        return r;
}

int nono_object_get_buf(nono_store *s, const nono_digest *d, void **buf, size_t *len)
{
        uint64_t size;
        int r;

        *buf = NULL;
        *len = 0;
        if ((r = nono_object_size(s, d, &size)) < 0)
                return r;
        struct membuf m = {.p = malloc(size ? size : 1), .cap = size};
        if (!m.p)
                return oom();
        r = object_walk(s, d, &size, to_mem, &m);
        if (r == 0 && m.off != size)
                r = store_err(-EBADMSG, "store at %s: object size mismatch (damaged store)", s->dir);
        if (r < 0) {
                if (r == -EBADMSG && !*nono_store_errmsg())
                        store_err(r, "store at %s: object changed size while reading", s->dir);
                free(m.p);
                return r;
        }
        *buf = m.p;
        *len = size;
        return 0;
}

static int to_fd(void *ud, const void *data, size_t len)
{
        int fd = *(int *)ud;
        const uint8_t *p = data;

        while (len) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return store_err(-errno, "cannot write object content: %s", strerror(errno));
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int nono_object_get_fd(nono_store *s, const nono_digest *d, int fd)
{
        uint64_t size;
        return object_walk(s, d, &size, to_fd, &fd);
}

int nono_object_has(nono_store *s, const nono_digest *d)
{
        MDB_txn *txn;
        MDB_val v;
        int r;

        if ((r = rtxn_begin(s, &txn)) < 0)
                return r;
        r = db_get(s, txn, s->db_objects, d->b, 32, &v);
        rtxn_end(s, txn);
        return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}

struct verify_ctx {
        nono_store *s;
        nono_digest *ds;
        size_t i;
        bool bad;
};

static int verify_chunk(void *ud, const void *data, size_t len)
{
        struct verify_ctx *v = ud;
        nono_digest d;
        sha256_buf(v->s, data, len, &d);
        if (memcmp(&d, &v->ds[v->i], 32))
                v->bad = true;
        v->i++;
        return 0;
}

int nono_object_verify(nono_store *s, const nono_digest *d)
{
        MDB_txn *txn;
        MDB_val v;
        uint64_t size;
        nono_digest id;
        int r;

        if ((r = rtxn_begin(s, &txn)) < 0)
                return r;
        r = object_record(s, txn, d, &v);
        size_t n = r == 0 ? (v.mv_size - 8) / 32 : 0;
        _cleanup_free_ nono_digest *ds = malloc(n ? n * 32 : 1);
        if (r == 0 && ds) {
                memcpy(ds, (uint8_t *)v.mv_data + 8, n * 32);
                object_id(s, le64_get(v.mv_data), ds, n, &id);
        }
        rtxn_end(s, txn);
        if (r < 0)
                return r;
        if (!ds)
                return oom();
        char hex[65];
        nono_digest_hex(d, hex);
        if (memcmp(&id, d, 32))
                return store_err(-EBADMSG,
                                 "object %s: its chunk list does not hash to its id (damaged or "
                                 "tampered store)",
                                 hex);
        struct verify_ctx vc = {.s = s, .ds = ds};
        if ((r = object_walk(s, d, &size, verify_chunk, &vc)) < 0)
                return r;
        if (vc.bad || vc.i != n)
                return store_err(-EBADMSG,
                                 "object %s: a chunk does not match its digest (damaged or tampered "
                                 "store)",
                                 hex);
        return 0;
}
