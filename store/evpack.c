/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evpack.c - the stored form of audit events: packed batches, per-session path interning, the hash chain.
 *
 * Size: a session may log millions of events, mostly file operations on a few thousand paths. Each append
 * becomes one or more batches of at most BATCH_EVENTS events, stored as one LMDB value under
 * (session, be64 first seq). Inside a batch an event is a varint bit set of the fields that differ from the
 * previous event, then only those fields as varints: time as a zigzag delta, paths as per-session ids
 * (table pathids/pathstr), and the first CHAIN_STORED bytes of its chain. A typical file event on a known
 * path takes 12-16 bytes.
 *
 * Chain: chain(n) = SHA-256(chain(n-1) || nono_event_canonical(event n)), chain(0) = the session seed.
 * The full head (and the next seq, the next path id and the counts) lives in evstate; each event stores
 * only an 8-byte prefix of its chain. That suffices to locate a damaged or altered event (a random change
 * matches the stored prefix with probability 2^-64) while nono_events_iterate() always returns the full
 * chain recomputed from the content. It does not stop a writer who can rewrite the store and recompute
 * every prefix and the head: the seal (an Ed25519 signature of the head, audit issue) stops that.
 */
/* The chain's SHA-256 is libsodium's (store/sodium-lazy.c says why): a stack context, no allocation. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <xxhash.h>

#include "store/evpack.h"

enum {
        F_IDS = 1 << 0,
        F_TYPEOP = 1 << 1,
        F_RESULT = 1 << 2,
        F_FLAGS = 1 << 3,
        F_BYTES = 1 << 4,
        F_ROOT = 1 << 5,
        F_PATH2 = 1 << 6,
        F_DETAIL = 1 << 7,
        F_GAP = 1 << 8,
        F_NOPATH = 1 << 9,
};

/* ---- canonical form and chain ---- */

static size_t canon_put(uint8_t *buf, size_t cap, size_t off, const void *p, size_t n)
{
        if (off < cap)
                memcpy(buf + off, p, off + n <= cap ? n : cap - off);
        return off + n;
}

static size_t canon_str(uint8_t *buf, size_t cap, size_t off, const char *s)
{
        uint8_t l[4];
        size_t n = s ? strlen(s) : 0;
        le32_put(l, s ? (uint32_t)n : 0xffffffffu);
        off = canon_put(buf, cap, off, l, 4);
        return s ? canon_put(buf, cap, off, s, n) : off;
}

size_t nono_event_canonical(const struct nono_event *ev, uint8_t *buf, size_t cap)
{
        uint8_t f[70];

        le64_put(f, ev->seq);
        le64_put(f + 8, (uint64_t)ev->time_ns);
        le32_put(f + 16, ev->pid);
        le32_put(f + 20, ev->ppid);
        le32_put(f + 24, ev->uid);
        f[28] = (uint8_t)ev->type;
        f[29] = (uint8_t)(ev->type >> 8);
        f[30] = (uint8_t)ev->op;
        f[31] = (uint8_t)(ev->op >> 8);
        le32_put(f + 32, (uint32_t)ev->result);
        le32_put(f + 36, ev->flags);
        le32_put(f + 40, ev->oflags);
        le32_put(f + 44, ev->root);
        le64_put(f + 48, ev->bytes_read);
        le64_put(f + 56, ev->bytes_written);
        size_t off = canon_put(buf, cap, 0, f, 64);
        off = canon_str(buf, cap, off, ev->path);
        off = canon_str(buf, cap, off, ev->path2);
        return canon_str(buf, cap, off, ev->detail);
}

void nono_event_chain(const nono_digest *prev, const struct nono_event *ev, nono_digest *out)
{
        uint8_t stack[1024];
        uint8_t *buf = stack;
        size_t n = nono_event_canonical(ev, stack, sizeof(stack));

        if (n > sizeof(stack)) {
                buf = malloc(n);
                if (!buf) { /* cannot happen in practice; fail closed with a chain nobody can match */
                        memset(out, 0, sizeof(*out));
                        return;
                }
                nono_event_canonical(ev, buf, n);
        }
        crypto_hash_sha256_state sc;
        if (crypto_hash_sha256_init(&sc) || crypto_hash_sha256_update(&sc, prev->b, 32) ||
            crypto_hash_sha256_update(&sc, buf, n) || crypto_hash_sha256_final(&sc, out->b))
                memset(out, 0, sizeof(*out)); /* libsodium missing (said on stderr): a chain nobody matches */
        if (buf != stack)
                free(buf);
}

void nono_event_chain_seed(const char *session, nono_digest *out)
{
        uint8_t buf[13 + SID_LEN];
        memcpy(buf, "nono-audit-v1", 13);
        memcpy(buf + 13, session, SID_LEN);
        if (crypto_hash_sha256(out->b, buf, sizeof(buf)))
                memset(out, 0, sizeof(*out));
}

/* ---- evstate ---- */

int evstate_load(nono_store *s, MDB_txn *txn, const char *sid, struct evstate *e)
{
        MDB_val v;
        int r = db_get(s, txn, s->db_evstate, sid, SID_LEN, &v);

        *e = (struct evstate){.next_seq = 1, .next_path_id = 1};
        if (r == -ENOENT) {
                nono_event_chain_seed(sid, &e->head);
                return 0;
        }
        if (r < 0)
                return r;
        if (v.mv_size != EVSTATE_SIZE)
                return store_err(-EBADMSG, "session %s: damaged event state", sid);
        const uint8_t *p = v.mv_data;
        e->next_seq = le64_get(p);
        memcpy(e->head.b, p + 8, 32);
        e->next_path_id = le64_get(p + 40);
        for (int i = 0; i < 5; i++)
                e->counts.by_type[i] = le64_get(p + 48 + 8 * i);
        e->counts.violations = le64_get(p + 88);
        e->counts.reads = le64_get(p + 96);
        e->counts.writes = le64_get(p + 104);
        return 0;
}

int evstate_save(nono_store *s, MDB_txn *txn, const char *sid, const struct evstate *e)
{
        uint8_t p[EVSTATE_SIZE];
        le64_put(p, e->next_seq);
        memcpy(p + 8, e->head.b, 32);
        le64_put(p + 40, e->next_path_id);
        for (int i = 0; i < 5; i++)
                le64_put(p + 48 + 8 * i, e->counts.by_type[i]);
        le64_put(p + 88, e->counts.violations);
        le64_put(p + 96, e->counts.reads);
        le64_put(p + 104, e->counts.writes);
        return db_put(s, txn, s->db_evstate, sid, SID_LEN, p, sizeof(p));
}

/* ---- interning: (session, path) -> id, with an in-memory cache in front of pathids ---- */

struct cache_ent {
        uint64_t h, id;
        char *key; /* sid || path */
        size_t klen;
};

struct intern_cache {
        struct cache_ent *v;
        size_t cap, n;
};

#define CACHE_MAX (1u << 20)

void intern_cache_free(struct intern_cache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->cap; i++)
                free(c->v[i].key);
        free(c->v);
        free(c);
}

void intern_cache_reset(nono_store *s)
{
        intern_cache_free(s->cache);
        s->cache = NULL;
}

static struct cache_ent *cache_slot(struct intern_cache *c, uint64_t h, const char *key, size_t klen)
{
        for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
                struct cache_ent *e = &c->v[i];
                if (!e->key || (e->h == h && e->klen == klen && !memcmp(e->key, key, klen)))
                        return e;
        }
}

static void cache_put(nono_store *s, uint64_t h, const char *key, size_t klen, uint64_t id)
{
        struct intern_cache *c = s->cache;

        if (c && c->n >= CACHE_MAX) {
                intern_cache_reset(s);
                c = NULL;
        }
        if (!c) {
                if (!(c = calloc(1, sizeof(*c))) || !(c->v = calloc(1024, sizeof(*c->v)))) {
                        free(c);
                        return;
                }
                c->cap = 1024;
                s->cache = c;
        }
        if ((c->n + 1) * 2 > c->cap) {
                struct intern_cache nc = {.cap = c->cap * 2, .n = c->n};
                if (!(nc.v = calloc(nc.cap, sizeof(*nc.v))))
                        return;
                for (size_t i = 0; i < c->cap; i++)
                        if (c->v[i].key)
                                *cache_slot(&nc, c->v[i].h, c->v[i].key, c->v[i].klen) = c->v[i];
                free(c->v);
                *c = nc;
        }
        struct cache_ent *e = cache_slot(c, h, key, klen);
        if (e->key)
                return;
        if (!(e->key = malloc(klen)))
                return;
        memcpy(e->key, key, klen);
        e->h = h;
        e->klen = klen;
        e->id = id;
        c->n++;
}

int intern(nono_store *s, MDB_txn *txn, const char *sid, const char *path, struct evstate *es, uint64_t *id)
{
        size_t pl = strlen(path);
        char stack[512];
        char *key = pl + SID_LEN <= sizeof(stack) ? stack : malloc(pl + SID_LEN);
        uint8_t dk[SID_LEN + LONG_KEY_BUF], sk[SID_LEN + 8], vb[10];
        MDB_val v;
        int r = 0;

        if (!key)
                return store_err(-ENOMEM, "out of memory");
        memcpy(key, sid, SID_LEN);
        memcpy(key + SID_LEN, path, pl);
        uint64_t h = XXH3_64bits(key, pl + SID_LEN); /* a table index only; the key is compared in full */
        struct cache_ent *e = s->cache ? cache_slot(s->cache, h, key, pl + SID_LEN) : NULL;
        if (e && e->key) {
                *id = e->id;
                goto out;
        }
        memcpy(dk, sid, SID_LEN);
        size_t dkl = SID_LEN + long_key(dk + SID_LEN, path, pl);
        if ((r = db_get(s, txn, s->db_pathids, dk, dkl, &v)) == 0) {
                struct rbuf rb = rb_init(v.mv_data, v.mv_size);
                *id = rb_varint(&rb);
                if (rb.err)
                        r = store_err(-EBADMSG, "session %s: damaged path table", sid);
        } else if (r == -ENOENT) {
                *id = es->next_path_id++;
                memcpy(sk, sid, SID_LEN);
                be64_put(sk + SID_LEN, *id);
                if ((r = db_put(s, txn, s->db_pathids, dk, dkl, vb, varint_put(vb, *id))) == 0)
                        r = db_put(s, txn, s->db_pathstr, sk, sizeof(sk), path, pl);
        }
        if (r == 0)
                cache_put(s, h, key, pl + SID_LEN, *id);
out:
        if (key != stack)
                free(key);
        return r;
}

/* ---- batch encoding ---- */

void encode_batch(struct wbuf *w, const struct rawev *v, size_t n, uint64_t first_seq)
{
        struct nono_event prev = {.seq = first_seq - 1};

        wb_u8(w, 1);
        wb_varint(w, n);
        for (size_t i = 0; i < n; i++) {
                const struct nono_event *e = &v[i].e;
                uint64_t fl = 0;
                if (e->pid != prev.pid || e->ppid != prev.ppid || e->uid != prev.uid)
                        fl |= F_IDS;
                if (e->type != prev.type || e->op != prev.op)
                        fl |= F_TYPEOP;
                if (e->result)
                        fl |= F_RESULT;
                if (e->flags || e->oflags)
                        fl |= F_FLAGS;
                if (e->bytes_read || e->bytes_written)
                        fl |= F_BYTES;
                if (e->root != prev.root)
                        fl |= F_ROOT;
                if (v[i].has_path2)
                        fl |= F_PATH2;
                if (v[i].has_detail)
                        fl |= F_DETAIL;
                if (e->seq != prev.seq + 1)
                        fl |= F_GAP;
                if (!v[i].has_path)
                        fl |= F_NOPATH;
                wb_varint(w, fl);
                if (fl & F_GAP)
                        wb_varint(w, e->seq - prev.seq - 1);
                wb_svarint(w, (int64_t)((uint64_t)e->time_ns - (uint64_t)prev.time_ns));
                if (fl & F_IDS) {
                        wb_varint(w, e->pid);
                        wb_varint(w, e->ppid);
                        wb_varint(w, e->uid);
                }
                if (fl & F_TYPEOP) {
                        wb_varint(w, e->type);
                        wb_varint(w, e->op);
                }
                if (fl & F_RESULT)
                        wb_svarint(w, e->result);
                if (fl & F_FLAGS) {
                        wb_varint(w, e->flags);
                        wb_varint(w, e->oflags);
                }
                if (fl & F_BYTES) {
                        wb_varint(w, e->bytes_read);
                        wb_varint(w, e->bytes_written);
                }
                if (fl & F_ROOT)
                        wb_varint(w, e->root);
                if (!(fl & F_NOPATH))
                        wb_varint(w, v[i].path_id);
                if (fl & F_PATH2)
                        wb_varint(w, v[i].path2_id);
                if (fl & F_DETAIL)
                        wb_blob(w, v[i].detail, v[i].detail_len);
                wb_bytes(w, v[i].chain8, CHAIN_STORED);
                prev = *e;
        }
}

/* Decodes a batch; detail pointers point into p. */
int decode_batch(const void *p, size_t len, uint64_t first_seq, struct rawev **out, size_t *n_out)
{
        struct rbuf r = rb_init(p, len);
        struct nono_event prev = {.seq = first_seq - 1};

        *out = NULL;
        *n_out = 0;
        if (rb_u8(&r) != 1)
                return -EBADMSG;
        uint64_t n = rb_varint(&r);
        if (r.err || n > len)
                return -EBADMSG;
        struct rawev *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (uint64_t i = 0; i < n && !r.err; i++) {
                struct rawev *x = &v[i];
                struct nono_event *e = &x->e;
                uint64_t fl = rb_varint(&r);
                *e = prev;
                e->path = e->path2 = e->detail = NULL;
                e->result = 0;
                e->flags = e->oflags = 0;
                e->bytes_read = e->bytes_written = 0;
                e->seq = prev.seq + 1 + (fl & F_GAP ? rb_varint(&r) : 0);
                e->time_ns = (int64_t)((uint64_t)prev.time_ns + (uint64_t)rb_svarint(&r));
                if (fl & F_IDS) {
                        e->pid = (uint32_t)rb_varint(&r);
                        e->ppid = (uint32_t)rb_varint(&r);
                        e->uid = (uint32_t)rb_varint(&r);
                }
                if (fl & F_TYPEOP) {
                        e->type = (uint16_t)rb_varint(&r);
                        e->op = (uint16_t)rb_varint(&r);
                }
                if (fl & F_RESULT)
                        e->result = (int32_t)rb_svarint(&r);
                if (fl & F_FLAGS) {
                        e->flags = (uint32_t)rb_varint(&r);
                        e->oflags = (uint32_t)rb_varint(&r);
                }
                if (fl & F_BYTES) {
                        e->bytes_read = rb_varint(&r);
                        e->bytes_written = rb_varint(&r);
                }
                if (fl & F_ROOT)
                        e->root = (uint32_t)rb_varint(&r);
                if ((x->has_path = !(fl & F_NOPATH)))
                        x->path_id = rb_varint(&r);
                if ((x->has_path2 = fl & F_PATH2))
                        x->path2_id = rb_varint(&r);
                if ((x->has_detail = fl & F_DETAIL))
                        x->detail = rb_blob(&r, &x->detail_len);
                const uint8_t *c = rb_bytes(&r, CHAIN_STORED);
                if (c)
                        memcpy(x->chain8, c, CHAIN_STORED);
                prev = *e;
        }
        if (r.err) {
                free(v);
                return -EBADMSG;
        }
        *out = v;
        *n_out = n;
        return 0;
}

void count_event(struct nono_event_counts *c, const struct nono_event *e)
{
        c->by_type[0]++;
        if (e->type >= 1 && e->type <= 4)
                c->by_type[e->type]++;
        if (e->flags & NONO_EVF_VIOLATION)
                c->violations++;
        if (e->type != NONO_EV_FILE)
                return;
        if (e->flags & NONO_EVF_UNCOUNTED) { /* passed through: readable opens read, changed files wrote */
                c->reads += (e->oflags & O_ACCMODE) != O_WRONLY;
                c->writes += (e->flags & NONO_EVF_DATA_CHANGED) != 0;
                return;
        }
        if (e->bytes_read)
                c->reads++;
        if (e->bytes_written)
                c->writes++;
}

int rawev_from(nono_store *s, MDB_txn *txn, const char *sid, struct evstate *es, const struct nono_event *e,
               struct rawev *x)
{
        int r;

        *x = (struct rawev){.e = *e};
        x->e.path = x->e.path2 = x->e.detail = NULL;
        if ((x->has_path = e->path) && (r = intern(s, txn, sid, e->path, es, &x->path_id)) < 0)
                return r;
        if ((x->has_path2 = e->path2) && (r = intern(s, txn, sid, e->path2, es, &x->path2_id)) < 0)
                return r;
        if ((x->has_detail = e->detail)) {
                x->detail = e->detail;
                x->detail_len = strlen(e->detail);
        }
        memcpy(x->chain8, e->chain.b, CHAIN_STORED);
        return 0;
}

int put_batch(nono_store *s, MDB_txn *txn, const char *sid, const struct rawev *v, size_t n)
{
        uint8_t k[SID_LEN + 8];
        struct wbuf b = {0};
        int r;

        memcpy(k, sid, SID_LEN);
        be64_put(k + SID_LEN, v[0].e.seq);
        encode_batch(&b, v, n, v[0].e.seq);
        if (b.oom)
                return store_err(-ENOMEM, "out of memory");
        r = db_put(s, txn, s->db_events, k, sizeof(k), b.p, b.len);
        wb_free(&b);
        return r;
}
