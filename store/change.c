/* SPDX-License-Identifier: Apache-2.0 */
/*
 * change.c - change records: node pre-images and path records (see "Change records" in store.h).
 *
 * A node's captured chunks live in their own table (nodechunks), one entry per chunk, so capturing the
 * blocks of a big file one write at a time costs O(1) per block instead of rewriting a growing list.
 * Every reference a node makes (its object, or each captured chunk) counts in refs; the content must already
 * be in the store when the node references it (-ENOENT otherwise), so a durable node never points at nothing.
 *
 * Path keys: LMDB keys are at most 511 bytes, paths up to 4095. A path longer than LONG_KEY_MAX is keyed by
 * its first LONG_KEY_MAX bytes and its SHA-256; the record holds the full path, and nono_path_list() sorts
 * by the full path, so long paths only lose key order, never identity.
 */
#include <errno.h>
#include <string.h>

#include "store/enc.h"
#include "store/internal.h"

/* ---- node records ---- */

static void node_key(uint8_t k[SID_LEN + 8], const char *sid, uint64_t id)
{
        memcpy(k, sid, SID_LEN);
        be64_put(k + SID_LEN, id);
}

static void node_encode(struct wbuf *w, const struct nono_node *n)
{
        wb_u8(w, 1);
        wb_varint(w, n->type);
        wb_varint(w, n->mode);
        wb_varint(w, n->uid);
        wb_varint(w, n->gid);
        wb_svarint(w, n->atime_ns);
        wb_svarint(w, n->mtime_ns);
        wb_varint(w, n->nlink);
        wb_varint(w, n->size);
        wb_str(w, n->link_target);
        wb_varint(w, n->n_xattrs);
        for (size_t i = 0; i < n->n_xattrs; i++) {
                wb_str(w, n->xattrs[i].name);
                wb_blob(w, n->xattrs[i].value, n->xattrs[i].len);
        }
        wb_u8(w, n->complete);
        if (n->complete)
                wb_bytes(w, n->object.b, 32);
        wb_strv(w, n->entries);
}

static int node_decode(const void *p, size_t len, struct nono_node *n)
{
        struct rbuf r = rb_init(p, len);

        *n = (struct nono_node){0};
        if (rb_u8(&r) != 1)
                r.err = true;
        n->type = (uint32_t)rb_varint(&r);
        n->mode = (uint32_t)rb_varint(&r);
        n->uid = (uint32_t)rb_varint(&r);
        n->gid = (uint32_t)rb_varint(&r);
        n->atime_ns = rb_svarint(&r);
        n->mtime_ns = rb_svarint(&r);
        n->nlink = rb_varint(&r);
        n->size = rb_varint(&r);
        n->link_target = rb_str(&r, NULL);
        uint64_t nx = rb_varint(&r);
        if (!r.err && nx > len)
                r.err = true;
        if (!r.err && nx) {
                n->xattrs = calloc(nx, sizeof(*n->xattrs));
                if (!n->xattrs)
                        r.err = true;
                for (uint64_t i = 0; i < nx && !r.err; i++) {
                        size_t vl;
                        n->xattrs[i].name = rb_str(&r, NULL);
                        const void *v = rb_blob(&r, &vl);
                        n->n_xattrs = i + 1;
                        if (r.err || !n->xattrs[i].name)
                                break;
                        n->xattrs[i].value = malloc(vl ? vl : 1);
                        if (!n->xattrs[i].value) {
                                r.err = true;
                                break;
                        }
                        memcpy(n->xattrs[i].value, v, vl);
                        n->xattrs[i].len = vl;
                }
        }
        n->complete = rb_u8(&r);
        if (n->complete) {
                const uint8_t *b = rb_bytes(&r, 32);
                if (b)
                        memcpy(n->object.b, b, 32);
        }
        n->entries = rb_strv(&r);
        if (r.err) {
                nono_node_clear(n);
                return -EBADMSG;
        }
        return 0;
}

void nono_node_clear(struct nono_node *n)
{
        if (!n)
                return;
        free(n->link_target);
        for (size_t i = 0; i < n->n_xattrs; i++) {
                free(n->xattrs[i].name);
                free(n->xattrs[i].value);
        }
        free(n->xattrs);
        free(n->chunks);
        strv_free(n->entries);
        *n = (struct nono_node){0};
}

/* ---- work items ---- */

struct node_work {
        struct work w;
        char sid[SID_LEN + 1];
        uint64_t node;
        struct wbuf rec;              /* node_put: the encoded record */
        bool complete;                /* node_put: references object */
        nono_digest object;           /* node_put, set_object */
        struct nono_chunkref *chunks; /* node_put, add_chunks */
        size_t n_chunks;
};

static void node_work_destroy(struct work *w)
{
        struct node_work *nw = (struct node_work *)w;
        wb_free(&nw->rec);
        free(nw->chunks);
        free(nw);
}

static struct node_work *node_work_new(const char *sid, uint64_t node, const struct nono_chunkref *c,
                                       size_t n)
{
        struct node_work *nw = calloc(1, sizeof(*nw));
        if (!nw)
                return NULL;
        nw->w.destroy = node_work_destroy;
        memcpy(nw->sid, sid, SID_LEN);
        nw->node = node;
        if (n) {
                nw->chunks = malloc(n * sizeof(*c));
                if (!nw->chunks) {
                        free(nw);
                        return NULL;
                }
                memcpy(nw->chunks, c, n * sizeof(*c));
                nw->n_chunks = n;
        }
        return nw;
}

static int require_content(nono_store *s, MDB_txn *txn, char kind, const nono_digest *d)
{
        int r = ref_get(s, txn, kind, d, NULL, NULL);
        if (r == -ENOENT) {
                char hex[65];
                nono_digest_hex(d, hex);
                return store_err(-ENOENT, "%s %s is not in the store: put it before a node references it",
                                 kind == REF_CHUNK ? "chunk" : "object", hex);
        }
        return r;
}

static int require_node(nono_store *s, MDB_txn *txn, const char *sid, uint64_t node, MDB_val *v)
{
        uint8_t k[SID_LEN + 8];
        node_key(k, sid, node);
        int r = db_get(s, txn, s->db_nodes, k, sizeof(k), v);
        if (r == -ENOENT)
                return store_err(-ENOENT, "session %s has no node %llu: nono_node_put() it first", sid,
                                 (unsigned long long)node);
        return r;
}

/* Adds the chunks not captured yet; the caller validated that their content exists. */
static int add_chunk_refs(nono_store *s, MDB_txn *txn, struct node_work *nw)
{
        uint8_t k[SID_LEN + 16], v[36];
        MDB_val old;
        int r;

        node_key(k, nw->sid, nw->node);
        for (size_t i = 0; i < nw->n_chunks; i++) {
                be64_put(k + SID_LEN + 8, nw->chunks[i].index);
                if (db_get(s, txn, s->db_nodechunks, k, sizeof(k), &old) == 0)
                        continue; /* first capture wins: it is the older content */
                memcpy(v, nw->chunks[i].digest.b, 32);
                le32_put(v + 32, nw->chunks[i].len);
                if ((r = db_put(s, txn, s->db_nodechunks, k, sizeof(k), v, sizeof(v))) < 0 ||
                    (r = ref_add(s, txn, REF_CHUNK, &nw->chunks[i].digest, 1)) < 0)
                        return r;
        }
        return 0;
}

static int validate_chunks(nono_store *s, MDB_txn *txn, struct node_work *nw)
{
        int r;
        for (size_t i = 0; i < nw->n_chunks; i++) {
                if (nw->chunks[i].len > NONO_CHUNK_SIZE)
                        return store_err(-EINVAL, "chunk ref of %u bytes exceeds NONO_CHUNK_SIZE",
                                         nw->chunks[i].len);
                if ((r = require_content(s, txn, REF_CHUNK, &nw->chunks[i].digest)) < 0)
                        return r;
        }
        return 0;
}

static int node_put_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct node_work *nw = (struct node_work *)w;
        uint8_t k[SID_LEN + 8];
        MDB_val v;
        int r;

        if ((r = session_require(s, txn, nw->sid)) < 0)
                return r;
        node_key(k, nw->sid, nw->node);
        if (db_get(s, txn, s->db_nodes, k, sizeof(k), &v) == 0)
                return store_err(-EEXIST,
                                 "session %s already has a pre-image for node %llu (the first one wins)",
                                 nw->sid, (unsigned long long)nw->node);
        if (nw->complete && (r = require_content(s, txn, REF_OBJECT, &nw->object)) < 0)
                return r;
        if ((r = validate_chunks(s, txn, nw)) < 0)
                return r;
        if ((r = db_put(s, txn, s->db_nodes, k, sizeof(k), nw->rec.p, nw->rec.len)) < 0)
                return r;
        if (nw->complete && (r = ref_add(s, txn, REF_OBJECT, &nw->object, 1)) < 0)
                return r;
        return nw->complete ? 0 : add_chunk_refs(s, txn, nw);
}

int nono_node_put(nono_store *st, const char *session, const struct nono_node *n, unsigned flags)
{
        int r = store_session_check(session);
        if (r < 0)
                return r;
        if (n->type == NONO_FT_ABSENT || n->type > NONO_FT_SOCK)
                return store_err(-EINVAL, "node %llu: invalid type %u", (unsigned long long)n->id, n->type);
        struct node_work *nw =
            node_work_new(session, n->id, n->complete ? NULL : n->chunks, n->complete ? 0 : n->n_chunks);
        if (!nw)
                return store_err(-ENOMEM, "out of memory");
        nw->w.run = node_put_run;
        nw->complete = n->complete;
        nw->object = n->object;
        node_encode(&nw->rec, n);
        if (nw->rec.oom) {
                node_work_destroy(&nw->w);
                return store_err(-ENOMEM, "out of memory");
        }
        nw->w.bytes = nw->rec.len + nw->n_chunks * sizeof(*nw->chunks);
        return writer_submit_owned(st, &nw->w, flags & NONO_ASYNC);
}

static int add_chunks_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct node_work *nw = (struct node_work *)w;
        struct nono_node n;
        MDB_val v;
        int r;

        if ((r = session_require(s, txn, nw->sid)) < 0 ||
            (r = require_node(s, txn, nw->sid, nw->node, &v)) < 0)
                return r;
        if ((r = node_decode(v.mv_data, v.mv_size, &n)) < 0)
                return store_err(r, "session %s node %llu: damaged record", nw->sid,
                                 (unsigned long long)nw->node);
        bool complete = n.complete;
        nono_node_clear(&n);
        if (complete) /* the whole content is saved already */
                return 0;
        if ((r = validate_chunks(s, txn, nw)) < 0)
                return r;
        return add_chunk_refs(s, txn, nw);
}

int nono_node_add_chunks(nono_store *st, const char *session, uint64_t node, const struct nono_chunkref *c,
                         size_t n, unsigned flags)
{
        int r = store_session_check(session);
        if (r < 0)
                return r;
        struct node_work *nw = node_work_new(session, node, c, n);
        if (!nw)
                return store_err(-ENOMEM, "out of memory");
        nw->w.run = add_chunks_run;
        nw->w.bytes = n * sizeof(*c);
        return writer_submit_owned(st, &nw->w, flags & NONO_ASYNC);
}

static int drop_nodechunk(nono_store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
        if (v->mv_size != 36)
                return 0;
        nono_digest d;
        memcpy(d.b, v->mv_data, 32);
        ref_add(s, txn, REF_CHUNK, &d, -1);
        return 0;
}

static int set_object_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct node_work *nw = (struct node_work *)w;
        uint8_t k[SID_LEN + 8];
        struct nono_node n;
        struct wbuf b = {0};
        MDB_val v;
        int r;

        if ((r = session_require(s, txn, nw->sid)) < 0 ||
            (r = require_node(s, txn, nw->sid, nw->node, &v)) < 0)
                return r;
        if ((r = require_content(s, txn, REF_OBJECT, &nw->object)) < 0)
                return r;
        if ((r = node_decode(v.mv_data, v.mv_size, &n)) < 0)
                return store_err(r, "session %s node %llu: damaged record", nw->sid,
                                 (unsigned long long)nw->node);
        if (n.complete && !memcmp(&n.object, &nw->object, 32)) {
                nono_node_clear(&n);
                return 0;
        }
        if (n.complete)
                ref_add(s, txn, REF_OBJECT, &n.object, -1);
        n.complete = true;
        n.object = nw->object;
        node_encode(&b, &n);
        nono_node_clear(&n);
        if (b.oom)
                return store_err(-ENOMEM, "out of memory");
        node_key(k, nw->sid, nw->node);
        r = db_put(s, txn, s->db_nodes, k, sizeof(k), b.p, b.len);
        wb_free(&b);
        if (r == 0)
                r = ref_add(s, txn, REF_OBJECT, &nw->object, 1);
        /* The object supersedes the captured chunks (with aligned chunking they are its own chunks). */
        if (r == 0)
                r = db_del_prefix(s, txn, s->db_nodechunks, k, sizeof(k), drop_nodechunk);
        return r;
}

int nono_node_set_object(nono_store *st, const char *session, uint64_t node, const nono_digest *object,
                         unsigned flags)
{
        int r = store_session_check(session);
        if (r < 0)
                return r;
        struct node_work *nw = node_work_new(session, node, NULL, 0);
        if (!nw)
                return store_err(-ENOMEM, "out of memory");
        nw->w.run = set_object_run;
        nw->object = *object;
        return writer_submit_owned(st, &nw->w, flags & NONO_ASYNC);
}

int nono_node_get(nono_store *st, const char *session, uint64_t node, struct nono_node *out)
{
        uint8_t k[SID_LEN + 8];
        MDB_txn *txn;
        MDB_cursor *c;
        MDB_val v, ck, cv;
        size_t cap = 0;
        int r, rc;

        *out = (struct nono_node){0};
        if ((r = store_session_check(session)) < 0)
                return r;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        if ((r = require_node(st, txn, session, node, &v)) < 0)
                goto out;
        if ((r = node_decode(v.mv_data, v.mv_size, out)) < 0) {
                r = store_err(r, "session %s node %llu: damaged record", session, (unsigned long long)node);
                goto out;
        }
        out->id = node;
        node_key(k, session, node);
        if ((rc = mdb_cursor_open(txn, st->db_nodechunks, &c))) {
                r = store_mdb_err(st, rc, "reading node chunks");
                goto out;
        }
        ck = (MDB_val){sizeof(k), k};
        for (rc = mdb_cursor_get(c, &ck, &cv, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(c, &ck, &cv, MDB_NEXT)) {
                if (ck.mv_size != sizeof(k) + 8 || memcmp(ck.mv_data, k, sizeof(k)) || cv.mv_size != 36)
                        break;
                if (out->n_chunks == cap) {
                        cap = cap ? cap * 2 : 16;
                        struct nono_chunkref *nc = realloc(out->chunks, cap * sizeof(*nc));
                        if (!nc) {
                                r = store_err(-ENOMEM, "out of memory");
                                break;
                        }
                        out->chunks = nc;
                }
                struct nono_chunkref *cr = &out->chunks[out->n_chunks++];
                cr->index = be64_get((uint8_t *)ck.mv_data + sizeof(k));
                memcpy(cr->digest.b, cv.mv_data, 32);
                cr->len = le32_get((uint8_t *)cv.mv_data + 32);
        }
        mdb_cursor_close(c);
out:
        rtxn_end(st, txn);
        if (r < 0)
                nono_node_clear(out);
        return r;
}

/* ---- path records ---- */

static size_t path_key(uint8_t *k, const char *sid, uint32_t root, const char *path)
{
        memcpy(k, sid, SID_LEN);
        be32_put(k + SID_LEN, root);
        return SID_LEN + 4 + long_key(k + SID_LEN + 4, path, strlen(path));
}
#define PATH_KEY_BUF (SID_LEN + 4 + LONG_KEY_BUF)

static void path_encode(struct wbuf *w, const struct nono_path_rec *r)
{
        wb_u8(w, 1);
        wb_str(w, r->path);
        wb_varint(w, r->pre_node);
        wb_u8(w, r->has_post);
        if (!r->has_post)
                return;
        wb_varint(w, r->post_type);
        wb_varint(w, r->post_mode);
        wb_varint(w, r->post_size);
        wb_varint(w, r->post_node);
        wb_u8(w, r->post_has_digest);
        if (r->post_has_digest)
                wb_bytes(w, r->post_digest.b, 32);
        wb_str(w, r->post_link_target);
        wb_svarint(w, r->post_mtime_ns);
}

static int path_decode(uint32_t root, const void *p, size_t len, struct nono_path_rec *o)
{
        struct rbuf r = rb_init(p, len);

        *o = (struct nono_path_rec){.root = root};
        if (rb_u8(&r) != 1)
                r.err = true;
        o->path = rb_str(&r, NULL);
        o->pre_node = rb_varint(&r);
        o->has_post = rb_u8(&r);
        if (o->has_post) {
                o->post_type = (uint32_t)rb_varint(&r);
                o->post_mode = (uint32_t)rb_varint(&r);
                o->post_size = rb_varint(&r);
                o->post_node = rb_varint(&r);
                o->post_has_digest = rb_u8(&r);
                if (o->post_has_digest) {
                        const uint8_t *b = rb_bytes(&r, 32);
                        if (b)
                                memcpy(o->post_digest.b, b, 32);
                }
                o->post_link_target = rb_str(&r, NULL);
                o->post_mtime_ns = rb_svarint(&r);
        }
        if (r.err || !o->path) {
                nono_path_rec_clear(o);
                return store_err(-EBADMSG, "damaged path record");
        }
        return 0;
}

void nono_path_rec_clear(struct nono_path_rec *r)
{
        if (!r)
                return;
        free(r->path);
        free(r->post_link_target);
        *r = (struct nono_path_rec){0};
}

void nono_path_list_free(struct nono_path_rec *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                nono_path_rec_clear(&v[i]);
        free(v);
}

struct path_work {
        struct work w;
        char sid[SID_LEN + 1];
        uint8_t key[PATH_KEY_BUF];
        size_t kl;
        struct wbuf rec;
        struct nono_path_rec post; /* put_post: the post part; path not owned */
        bool is_post;
};

static void path_work_destroy(struct work *w)
{
        struct path_work *pw = (struct path_work *)w;
        wb_free(&pw->rec);
        free(pw->post.path);
        free(pw->post.post_link_target);
        free(pw);
}

static int path_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct path_work *pw = (struct path_work *)w;
        struct nono_path_rec cur;
        struct wbuf b = {0};
        MDB_val v;
        int r;

        if ((r = session_require(s, txn, pw->sid)) < 0)
                return r;
        bool exists = db_get(s, txn, s->db_paths, pw->key, pw->kl, &v) == 0;
        if (!pw->is_post) /* first change wins */
                return exists ? 0 : db_put(s, txn, s->db_paths, pw->key, pw->kl, pw->rec.p, pw->rec.len);
        pw->post.pre_node = 0;
        if (exists) {
                if ((r = path_decode(pw->post.root, v.mv_data, v.mv_size, &cur)) < 0)
                        return r;
                pw->post.pre_node = cur.pre_node;
                nono_path_rec_clear(&cur);
        }
        pw->post.has_post = true;
        path_encode(&b, &pw->post);
        if (b.oom)
                return store_err(-ENOMEM, "out of memory");
        r = db_put(s, txn, s->db_paths, pw->key, pw->kl, b.p, b.len);
        wb_free(&b);
        return r;
}

static struct path_work *path_work_new(const char *sid, uint32_t root, const char *path)
{
        struct path_work *pw = calloc(1, sizeof(*pw));
        if (!pw)
                return NULL;
        memcpy(pw->sid, sid, SID_LEN);
        pw->kl = path_key(pw->key, sid, root, path);
        pw->w.run = path_run;
        pw->w.destroy = path_work_destroy;
        return pw;
}

static int check_path(const char *path)
{
        if (!path || strlen(path) > 4095 || path[0] == '/')
                return store_err(-EINVAL,
                                 "path \"%s\" must be relative to its root (no leading /) and shorter "
                                 "than 4096 bytes",
                                 path ? path : "(null)");
        return 0;
}

int nono_path_put_pre(nono_store *st, const char *session, uint32_t root, const char *path, uint64_t pre_node,
                      unsigned flags)
{
        int r;
        if ((r = store_session_check(session)) < 0 || (r = check_path(path)) < 0)
                return r;
        struct path_work *pw = path_work_new(session, root, path);
        if (!pw)
                return store_err(-ENOMEM, "out of memory");
        struct nono_path_rec rec = {.root = root, .path = (char *)path, .pre_node = pre_node};
        path_encode(&pw->rec, &rec);
        pw->w.bytes = pw->rec.len;
        if (pw->rec.oom) {
                path_work_destroy(&pw->w);
                return store_err(-ENOMEM, "out of memory");
        }
        return writer_submit_owned(st, &pw->w, flags & NONO_ASYNC);
}

int nono_path_put_post(nono_store *st, const char *session, const struct nono_path_rec *rec, unsigned flags)
{
        int r;
        if ((r = store_session_check(session)) < 0 || (r = check_path(rec->path)) < 0)
                return r;
        struct path_work *pw = path_work_new(session, rec->root, rec->path);
        if (!pw)
                return store_err(-ENOMEM, "out of memory");
        pw->is_post = true;
        pw->post = *rec;
        pw->post.path = strdup(rec->path);
        pw->post.post_link_target = rec->post_link_target ? strdup(rec->post_link_target) : NULL;
        if (!pw->post.path || (rec->post_link_target && !pw->post.post_link_target)) {
                path_work_destroy(&pw->w);
                return store_err(-ENOMEM, "out of memory");
        }
        return writer_submit_owned(st, &pw->w, flags & NONO_ASYNC);
}

int nono_path_get(nono_store *st, const char *session, uint32_t root, const char *path,
                  struct nono_path_rec *out)
{
        uint8_t k[PATH_KEY_BUF];
        MDB_txn *txn;
        MDB_val v;
        int r;

        *out = (struct nono_path_rec){0};
        if ((r = store_session_check(session)) < 0 || (r = check_path(path)) < 0)
                return r;
        size_t kl = path_key(k, session, root, path);
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        r = db_get(st, txn, st->db_paths, k, kl, &v);
        if (r == 0)
                r = path_decode(root, v.mv_data, v.mv_size, out);
        else if (r == -ENOENT)
                store_err(r, "session %s has no record of %u:%s", session, root, path);
        rtxn_end(st, txn);
        return r;
}

static int path_cmp(const void *a, const void *b)
{
        const struct nono_path_rec *x = a, *y = b;
        if (x->root != y->root)
                return x->root < y->root ? -1 : 1;
        return strcmp(x->path, y->path);
}

int nono_path_list(nono_store *st, const char *session, struct nono_path_rec **out, size_t *n)
{
        MDB_txn *txn;
        MDB_cursor *c;
        MDB_val k, v;
        struct nono_path_rec *vec = NULL;
        size_t cnt = 0, cap = 0;
        int r, rc;

        *out = NULL;
        *n = 0;
        if ((r = store_session_check(session)) < 0)
                return r;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        if ((rc = mdb_cursor_open(txn, st->db_paths, &c))) {
                rtxn_end(st, txn);
                return store_mdb_err(st, rc, "listing paths");
        }
        k = (MDB_val){SID_LEN, (void *)session};
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                if (k.mv_size < SID_LEN + 4 || memcmp(k.mv_data, session, SID_LEN))
                        break;
                if (cnt == cap) {
                        cap = cap ? cap * 2 : 64;
                        struct nono_path_rec *nv = realloc(vec, cap * sizeof(*nv));
                        if (!nv) {
                                r = store_err(-ENOMEM, "out of memory");
                                break;
                        }
                        vec = nv;
                }
                if ((r = path_decode(be32_get((uint8_t *)k.mv_data + SID_LEN), v.mv_data, v.mv_size,
                                     &vec[cnt])) < 0)
                        break;
                cnt++;
        }
        mdb_cursor_close(c);
        rtxn_end(st, txn);
        if (r < 0) {
                nono_path_list_free(vec, cnt);
                return r;
        }
        if (cnt)
                qsort(vec, cnt, sizeof(*vec), path_cmp);
        *out = vec;
        *n = cnt;
        return 0;
}

/* ---- session delete ---- */

static int drop_node(nono_store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v)
{
        struct nono_node n;
        if (node_decode(v->mv_data, v->mv_size, &n) < 0)
                return 0; /* a damaged record holds nothing we can name */
        if (n.complete)
                ref_add(s, txn, REF_OBJECT, &n.object, -1);
        nono_node_clear(&n);
        return 0;
}

int change_delete_session(nono_store *s, MDB_txn *txn, const char *sid)
{
        int r;
        if ((r = db_del_prefix(s, txn, s->db_nodes, sid, SID_LEN, drop_node)) < 0 ||
            (r = db_del_prefix(s, txn, s->db_nodechunks, sid, SID_LEN, drop_nodechunk)) < 0)
                return r;
        return db_del_prefix(s, txn, s->db_paths, sid, SID_LEN, NULL);
}
