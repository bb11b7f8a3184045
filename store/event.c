/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event.c - the audit event API: append (seq and chain assigned in the writer's transaction), iterate and
 * verify (chain recomputed from the content), counts, raw access for tamper tests, and session cleanup.
 * The stored format is in evpack.c.
 */
#include <errno.h>
#include <string.h>

#include "store/evpack.h"

/* ---- append ---- */

struct append_work {
        struct work w;
        char sid[SID_LEN + 1];
        struct nono_event *ev; /* copies; strings in arena */
        size_t n;
        char *arena;
        struct nono_event *out; /* sync: the caller's array, to report seq and chain */
};

static void append_destroy(struct work *w)
{
        struct append_work *a = (struct append_work *)w;
        free(a->ev);
        free(a->arena);
        free(a);
}

static int append_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct append_work *a = (struct append_work *)w;
        struct evstate es;
        int r;

        if ((r = session_require(s, txn, a->sid)) < 0 || (r = evstate_load(s, txn, a->sid, &es)) < 0)
                return r;
        size_t cap = a->n < BATCH_EVENTS ? a->n : BATCH_EVENTS;
        /* Writer-thread scratch, kept between appends: a fresh 100+ KiB array per append would be mmapped
         * and faulted in every time. */
        if (s->scratch_cap < cap * sizeof(struct rawev)) {
                void *p = realloc(s->scratch, cap * sizeof(struct rawev));
                if (!p)
                        return store_err(-ENOMEM, "out of memory");
                s->scratch = p;
                s->scratch_cap = cap * sizeof(struct rawev);
        }
        struct rawev *v = s->scratch;
        for (size_t i = 0; i < a->n; i += BATCH_EVENTS) {
                size_t m = a->n - i < BATCH_EVENTS ? a->n - i : BATCH_EVENTS;
                for (size_t j = 0; j < m; j++) {
                        struct nono_event *e = &a->ev[i + j];
                        e->seq = es.next_seq++;
                        nono_event_chain(&es.head, e, &e->chain);
                        es.head = e->chain;
                        count_event(&es.counts, e);
                        if ((r = rawev_from(s, txn, a->sid, &es, e, &v[j])) < 0)
                                return r;
                }
                if ((r = put_batch(s, txn, a->sid, v, m)) < 0)
                        return r;
        }
        if ((r = evstate_save(s, txn, a->sid, &es)) < 0)
                return r;
        if (a->out)
                for (size_t i = 0; i < a->n; i++) {
                        a->out[i].seq = a->ev[i].seq;
                        a->out[i].chain = a->ev[i].chain;
                }
        return 0;
}

static char *arena_str(char **cur, const char *s)
{
        if (!s)
                return NULL;
        size_t n = strlen(s) + 1;
        char *d = *cur;
        memcpy(d, s, n);
        *cur += n;
        return d;
}

int nono_events_append(nono_store *st, const char *session, struct nono_event *ev, size_t n, unsigned flags)
{
        bool async = flags & NONO_ASYNC;
        size_t bytes = 0;
        int r;

        if ((r = store_session_check(session)) < 0)
                return r;
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                if (ev[i].path && strlen(ev[i].path) > 4095)
                        return store_err(-EINVAL, "event path longer than 4095 bytes");
                bytes += (ev[i].path ? strlen(ev[i].path) + 1 : 0) +
                         (ev[i].path2 ? strlen(ev[i].path2) + 1 : 0) +
                         (ev[i].detail ? strlen(ev[i].detail) + 1 : 0);
        }
        struct append_work *a = calloc(1, sizeof(*a));
        if (!a)
                return store_err(-ENOMEM, "out of memory");
        a->w.run = append_run;
        a->w.destroy = append_destroy;
        a->w.bytes = n * sizeof(*ev) + bytes;
        memcpy(a->sid, session, SID_LEN);
        a->n = n;
        a->ev = malloc(n * sizeof(*ev));
        a->arena = malloc(bytes ? bytes : 1);
        if (!a->ev || !a->arena) {
                append_destroy(&a->w);
                return store_err(-ENOMEM, "out of memory");
        }
        char *cur = a->arena;
        for (size_t i = 0; i < n; i++) {
                a->ev[i] = ev[i];
                a->ev[i].path = arena_str(&cur, ev[i].path);
                a->ev[i].path2 = arena_str(&cur, ev[i].path2);
                a->ev[i].detail = arena_str(&cur, ev[i].detail);
        }
        if (!async)
                a->out = ev;
        return writer_submit_owned(st, &a->w, async);
}

/* ---- reading ---- */

struct pathtab {
        char **v;
        size_t cap;
};

static void pathtab_free(struct pathtab *t)
{
        for (size_t i = 0; i < t->cap; i++)
                free(t->v[i]);
        free(t->v);
}

static int pathtab_get(nono_store *s, MDB_txn *txn, const char *sid, struct pathtab *t, uint64_t id,
                       const char **out)
{
        uint8_t k[SID_LEN + 8];
        MDB_val v;
        int r;

        if (id >= t->cap) {
                size_t cap = t->cap ? t->cap : 256;
                while (cap <= id)
                        cap *= 2;
                if (id > (1ull << 32))
                        return store_err(-EBADMSG, "session %s: damaged event (path id %llu)", sid,
                                         (unsigned long long)id);
                char **nv = realloc(t->v, cap * sizeof(char *));
                if (!nv)
                        return store_err(-ENOMEM, "out of memory");
                memset(nv + t->cap, 0, (cap - t->cap) * sizeof(char *));
                t->v = nv;
                t->cap = cap;
        }
        if (!t->v[id]) {
                memcpy(k, sid, SID_LEN);
                be64_put(k + SID_LEN, id);
                if ((r = db_get(s, txn, s->db_pathstr, k, sizeof(k), &v)) < 0)
                        return store_err(r == -ENOENT ? -EBADMSG : r,
                                         "session %s: event path %llu is missing", sid,
                                         (unsigned long long)id);
                if (!(t->v[id] = strndup(v.mv_data, v.mv_size)))
                        return store_err(-ENOMEM, "out of memory");
        }
        *out = t->v[id];
        return 0;
}

struct walk_report {
        uint64_t bad_seq; /* first event whose stored chain prefix or seq does not fit; 0 none */
        uint64_t last_seq, count;
        nono_digest head;
};

/*
 * Walks every event of the session in order, recomputing the chain, and calls cb for those with seq >= from.
 * One read transaction per batch, released before the callbacks run, so a callback may write to the store.
 */
static int events_walk(nono_store *s, const char *sid, uint64_t from, nono_event_cb cb, void *ud,
                       struct walk_report *rep)
{
        struct pathtab pt = {0};
        nono_digest chain;
        uint64_t next_key = 0, expect = 1;
        uint8_t k[SID_LEN + 8];
        MDB_txn *txn;
        int r = 0;
        bool first = true;

        nono_event_chain_seed(sid, &chain);
        memcpy(k, sid, SID_LEN);
        for (;;) {
                struct rawev *v = NULL;
                size_t n = 0;
                void *copy = NULL;
                MDB_cursor *c;
                MDB_val key, val;
                int rc;

                if ((r = rtxn_begin(s, &txn)) < 0)
                        break;
                if (first && (r = session_require(s, txn, sid)) < 0) {
                        rtxn_end(s, txn);
                        break;
                }
                first = false;
                be64_put(k + SID_LEN, next_key);
                key = (MDB_val){sizeof(k), k};
                if ((rc = mdb_cursor_open(txn, s->db_events, &c))) {
                        rtxn_end(s, txn);
                        r = store_mdb_err(s, rc, "reading events");
                        break;
                }
                rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
                mdb_cursor_close(c);
                if (rc || key.mv_size != sizeof(k) || memcmp(key.mv_data, sid, SID_LEN)) {
                        rtxn_end(s, txn);
                        break; /* no more batches */
                }
                uint64_t first_seq = be64_get((uint8_t *)key.mv_data + SID_LEN);
                next_key = first_seq + 1;
                /* Copy the batch so detail strings outlive the transaction. */
                if (!(copy = malloc(val.mv_size ? val.mv_size : 1))) {
                        rtxn_end(s, txn);
                        r = store_err(-ENOMEM, "out of memory");
                        break;
                }
                memcpy(copy, val.mv_data, val.mv_size);
                r = decode_batch(copy, val.mv_size, first_seq, &v, &n);
                if (r < 0)
                        r = store_err(r, "session %s: damaged event batch at seq %llu", sid,
                                      (unsigned long long)first_seq);
                for (size_t i = 0; i < n && r == 0; i++) {
                        if (v[i].has_path)
                                r = pathtab_get(s, txn, sid, &pt, v[i].path_id, &v[i].e.path);
                        if (r == 0 && v[i].has_path2)
                                r = pathtab_get(s, txn, sid, &pt, v[i].path2_id, &v[i].e.path2);
                }
                rtxn_end(s, txn);
                for (size_t i = 0; i < n && r == 0; i++) {
                        struct nono_event *e = &v[i].e;
                        char *detail = NULL;
                        if (v[i].has_detail) {
                                if (!(detail = strndup(v[i].detail, v[i].detail_len))) {
                                        r = store_err(-ENOMEM, "out of memory");
                                        break;
                                }
                                e->detail = detail;
                        }
                        nono_event_chain(&chain, e, &e->chain);
                        chain = e->chain;
                        if (rep) {
                                if (!rep->bad_seq &&
                                    (e->seq != expect || memcmp(v[i].chain8, e->chain.b, CHAIN_STORED)))
                                        rep->bad_seq = e->seq;
                                rep->last_seq = e->seq;
                                rep->count++;
                        }
                        expect = e->seq + 1;
                        next_key = e->seq + 1;
                        if (cb && e->seq >= from)
                                r = cb(e, ud);
                        free(detail);
                }
                free(v);
                free(copy);
                if (r != 0)
                        break;
        }
        if (rep)
                rep->head = chain;
        pathtab_free(&pt);
        return r < 0 ? r : 0;
}

int nono_events_iterate(nono_store *st, const char *session, uint64_t from, nono_event_cb cb, void *userdata)
{
        int r = store_session_check(session);
        return r < 0 ? r : events_walk(st, session, from, cb, userdata, NULL);
}

int nono_events_verify(nono_store *st, const char *session, uint64_t *bad_seq, nono_digest *head)
{
        struct walk_report rep = {0};
        struct evstate es;
        MDB_txn *txn;
        int r;

        if (bad_seq)
                *bad_seq = 0;
        if ((r = store_session_check(session)) < 0)
                return r;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        r = evstate_load(st, txn, session, &es);
        rtxn_end(st, txn);
        if (r < 0)
                return r;
        if ((r = events_walk(st, session, 1, NULL, NULL, &rep)) < 0)
                return r;
        if (head)
                *head = rep.head;
        if (!rep.bad_seq && rep.last_seq != es.next_seq - 1)
                rep.bad_seq = rep.last_seq + 1; /* events missing at the end */
        if (!rep.bad_seq && memcmp(&rep.head, &es.head, 32))
                rep.bad_seq = rep.last_seq;
        if (rep.bad_seq) {
                if (bad_seq)
                        *bad_seq = rep.bad_seq;
                return store_err(-EBADMSG,
                                 "session %s: the audit chain breaks at event %llu (altered, inserted "
                                 "or deleted events)",
                                 session, (unsigned long long)rep.bad_seq);
        }
        return 0;
}

/* The session's event state, in a read transaction of its own. */
static int evstate_read(nono_store *st, const char *session, struct evstate *es)
{
        MDB_txn *txn;
        int r;

        if ((r = store_session_check(session)) < 0)
                return r;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        if ((r = session_require(st, txn, session)) == 0)
                r = evstate_load(st, txn, session, es);
        rtxn_end(st, txn);
        return r;
}

int nono_events_count(nono_store *st, const char *session, struct nono_event_counts *out)
{
        struct evstate es;
        int r = evstate_read(st, session, &es);

        *out = r == 0 ? es.counts : (struct nono_event_counts){0};
        return r;
}

/* ---- raw access (tamper tests, tools) ---- */

struct raw_work {
        struct work w;
        char sid[SID_LEN + 1];
        struct nono_event ev; /* strings owned */
        bool del;
};

static void raw_destroy(struct work *w)
{
        struct raw_work *x = (struct raw_work *)w;
        free((char *)x->ev.path);
        free((char *)x->ev.path2);
        free((char *)x->ev.detail);
        free(x);
}

/* Finds the batch whose first seq is the largest <= seq. */
static int find_batch(nono_store *s, MDB_txn *txn, const char *sid, uint64_t seq, uint64_t *first,
                      MDB_val *val)
{
        uint8_t k[SID_LEN + 8];
        MDB_cursor *c;
        MDB_val key;
        int rc;

        memcpy(k, sid, SID_LEN);
        be64_put(k + SID_LEN, seq);
        key = (MDB_val){sizeof(k), k};
        if ((rc = mdb_cursor_open(txn, s->db_events, &c)))
                return store_mdb_err(s, rc, "reading events");
        rc = mdb_cursor_get(c, &key, val, MDB_SET_RANGE);
        if (rc == 0 && key.mv_size == sizeof(k) && !memcmp(key.mv_data, k, sizeof(k)))
                goto found;
        rc = rc == MDB_NOTFOUND ? mdb_cursor_get(c, &key, val, MDB_LAST)
                                : mdb_cursor_get(c, &key, val, MDB_PREV);
        if (rc == 0 && key.mv_size == sizeof(k) && !memcmp(key.mv_data, sid, SID_LEN))
                goto found;
        mdb_cursor_close(c);
        return -ENOENT;
found:
        *first = be64_get((uint8_t *)key.mv_data + SID_LEN);
        mdb_cursor_close(c);
        return 0;
}

static int raw_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct raw_work *x = (struct raw_work *)w;
        _cleanup_free_ struct rawev *v = NULL;
        _cleanup_free_ void *copy = NULL;
        uint8_t k[SID_LEN + 8];
        struct evstate es;
        uint64_t first = 0;
        MDB_val val;
        size_t n = 0;
        int r;

        if ((r = session_require(s, txn, x->sid)) < 0 || (r = evstate_load(s, txn, x->sid, &es)) < 0)
                return r;
        r = find_batch(s, txn, x->sid, x->ev.seq, &first, &val);
        if (r == -ENOENT && x->del)
                return store_err(-ENOENT, "session %s has no event %llu", x->sid,
                                 (unsigned long long)x->ev.seq);
        if (r == 0) {
                if (!(copy = malloc(val.mv_size ? val.mv_size : 1)))
                        return store_err(-ENOMEM, "out of memory");
                memcpy(copy, val.mv_data, val.mv_size);
                if ((r = decode_batch(copy, val.mv_size, first, &v, &n)) < 0)
                        return store_err(r, "session %s: damaged event batch", x->sid);
        } else if (r != -ENOENT) {
                return r;
        }
        size_t pos = 0;
        while (pos < n && v[pos].e.seq < x->ev.seq)
                pos++;
        bool exists = pos < n && v[pos].e.seq == x->ev.seq;
        if (x->del && !exists)
                return store_err(-ENOENT, "session %s has no event %llu", x->sid,
                                 (unsigned long long)x->ev.seq);
        struct rawev *nv = realloc(v, (n + 1) * sizeof(*nv));
        if (!nv)
                return store_err(-ENOMEM, "out of memory");
        v = nv;
        if (x->del) {
                memmove(&v[pos], &v[pos + 1], (n - pos - 1) * sizeof(*v));
                n--;
        } else {
                if (!exists) {
                        memmove(&v[pos + 1], &v[pos], (n - pos) * sizeof(*v));
                        n++;
                }
                if ((r = rawev_from(s, txn, x->sid, &es, &x->ev, &v[pos])) < 0)
                        return r;
        }
        memcpy(k, x->sid, SID_LEN);
        if (copy) {
                be64_put(k + SID_LEN, first);
                if ((r = db_del(s, txn, s->db_events, k, sizeof(k))) < 0)
                        return r;
        }
        if (n && (r = put_batch(s, txn, x->sid, v, n)) < 0)
                return r;
        return evstate_save(s, txn, x->sid, &es); /* only the path id counter may have moved */
}

static int raw_submit(nono_store *st, const char *session, const struct nono_event *ev, uint64_t seq,
                      bool del)
{
        int r = store_session_check(session);
        if (r < 0)
                return r;
        if (seq == 0)
                return store_err(-EINVAL, "event sequence numbers start at 1");
        struct raw_work *x = calloc(1, sizeof(*x));
        if (!x)
                return store_err(-ENOMEM, "out of memory");
        x->w.run = raw_run;
        x->w.destroy = raw_destroy;
        memcpy(x->sid, session, SID_LEN);
        x->del = del;
        if (ev) {
                x->ev = *ev;
                x->ev.path = ev->path ? strdup(ev->path) : NULL;
                x->ev.path2 = ev->path2 ? strdup(ev->path2) : NULL;
                x->ev.detail = ev->detail ? strdup(ev->detail) : NULL;
        }
        x->ev.seq = seq;
        return writer_submit_owned(st, &x->w, false);
}

int nono_events_raw_put(nono_store *st, const char *session, const struct nono_event *ev)
{
        return raw_submit(st, session, ev, ev->seq, false);
}

int nono_events_raw_delete(nono_store *st, const char *session, uint64_t seq)
{
        return raw_submit(st, session, NULL, seq, true);
}

int event_delete_session(nono_store *s, MDB_txn *txn, const char *sid)
{
        int r;
        if ((r = db_del_prefix(s, txn, s->db_events, sid, SID_LEN, NULL)) < 0 ||
            (r = db_del_prefix(s, txn, s->db_pathids, sid, SID_LEN, NULL)) < 0 ||
            (r = db_del_prefix(s, txn, s->db_pathstr, sid, SID_LEN, NULL)) < 0)
                return r;
        /* The cache may hold this session's paths; ids are never reused, but drop them to free memory. */
        intern_cache_reset(s);
        r = db_del(s, txn, s->db_evstate, sid, SID_LEN);
        return r == -ENOENT ? 0 : r;
}
