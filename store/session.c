/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - session records: ids, create/update/get/list/delete, and crash detection.
 *
 * Ids are 13 Crockford base32 characters: 10 for the creation time in milliseconds (48 bits), 3 for a
 * 15-bit counter. The pair is allocated inside the write transaction from meta "idgen" (never below the last
 * one handed out), so ids are unique and sort by creation time even across processes and clock steps back.
 * Lookups accept a unique prefix, case-insensitively, with Crockford's I/L -> 1 and O -> 0.
 *
 * Crash detection: a RUNNING session whose owner pid is gone, or now belongs to a process with another start
 * time (pid reuse), is reported CRASHED. This assumes the reader shares the owner's pid namespace.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "store/enc.h"
#include "store/evpack.h"
#include "store/internal.h"

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void make_id(uint64_t ms, uint32_t ctr, char out[SID_LEN + 1])
{
        for (int i = 9; i >= 0; i--, ms >>= 5)
                out[i] = b32[ms & 31];
        for (int i = 12; i >= 10; i--, ctr >>= 5)
                out[i] = b32[ctr & 31];
        out[SID_LEN] = 0;
}

/* Normalises user input to the canonical alphabet; -EINVAL on a character outside it. */
static int normalise_id(const char *in, char *out, size_t cap)
{
        size_t n = strlen(in);
        if (n > SID_LEN || n >= cap)
                return store_err(-EINVAL, "\"%s\" is not a session id (too long; ids have %d characters)", in,
                                 SID_LEN);
        for (size_t i = 0; i < n; i++) {
                char c = (char)toupper((unsigned char)in[i]);
                if (c == 'I' || c == 'L')
                        c = '1';
                else if (c == 'O')
                        c = '0';
                if (!strchr(b32, c) || !c)
                        return store_err(-EINVAL, "\"%s\" is not a session id (see `nono audit list`)", in);
                out[i] = c;
        }
        out[n] = 0;
        return 0;
}

int nono_pid_start_time(pid_t pid, uint64_t *out)
{
        char path[64], buf[1024];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        /* After ") " come fields 3..: state is field 3, starttime is field 22. */
        p += 2;
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EIO;
                p++;
        }
        *out = strtoull(p, NULL, 10);
        return 0;
}

static bool owner_alive(int32_t pid, uint64_t pid_start)
{
        uint64_t st;

        if (pid <= 0)
                return true; /* unknown owner: do not guess */
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return false;
        if (!pid_start)
                return true;
        if (nono_pid_start_time(pid, &st) < 0)
                return kill(pid, 0) == 0 || errno == EPERM; /* /proc hidden: trust the pid */
        return st == pid_start;
}

static void session_encode(struct wbuf *w, const struct nono_session *s)
{
        wb_u8(w, 1);
        wb_varint(w, s->kind);
        wb_varint(w, s->state);
        wb_strv(w, s->argv);
        wb_str(w, s->cwd);
        wb_str(w, s->policy_json);
        wb_strv(w, s->roots);
        wb_str(w, s->parent);
        wb_u8(w, s->rollback);
        wb_svarint(w, s->start_ns);
        wb_svarint(w, s->end_ns);
        wb_svarint(w, s->pid);
        wb_varint(w, s->pid_start);
        wb_svarint(w, s->exit_status);
        wb_varint(w, s->preimage_bytes);
        wb_bytes(w, s->seal, 64);
        wb_bytes(w, s->seal_pub, 32);
        wb_varint(w, s->sealed_events);
}

static int session_decode(const char *id, const void *p, size_t len, struct nono_session *s)
{
        struct rbuf r = rb_init(p, len);
        const uint8_t *b;

        *s = (struct nono_session){0};
        memcpy(s->id, id, SID_LEN);
        if (rb_u8(&r) != 1)
                r.err = true;
        s->kind = (uint32_t)rb_varint(&r);
        s->state = (uint32_t)rb_varint(&r);
        s->argv = rb_strv(&r);
        s->cwd = rb_str(&r, NULL);
        s->policy_json = rb_str(&r, NULL);
        s->roots = rb_strv(&r);
        s->parent = rb_str(&r, NULL);
        s->rollback = rb_u8(&r);
        s->start_ns = rb_svarint(&r);
        s->end_ns = rb_svarint(&r);
        s->pid = (int32_t)rb_svarint(&r);
        s->pid_start = rb_varint(&r);
        s->exit_status = (int32_t)rb_svarint(&r);
        s->preimage_bytes = rb_varint(&r);
        if ((b = rb_bytes(&r, 64)))
                memcpy(s->seal, b, 64);
        if ((b = rb_bytes(&r, 32)))
                memcpy(s->seal_pub, b, 32);
        s->sealed_events = rb_varint(&r);
        if (r.err) {
                nono_session_clear(s);
                return store_err(-EBADMSG, "session %.*s: damaged record", SID_LEN, id);
        }
        if (s->state == NONO_SESSION_RUNNING && !owner_alive(s->pid, s->pid_start))
                s->state = NONO_SESSION_CRASHED;
        return 0;
}

void nono_session_clear(struct nono_session *s)
{
        if (!s)
                return;
        strv_free(s->argv);
        strv_free(s->roots);
        free(s->cwd);
        free(s->policy_json);
        free(s->parent);
        s->argv = s->roots = NULL;
        s->cwd = s->policy_json = s->parent = NULL;
}

void nono_session_list_free(struct nono_session *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                nono_session_clear(&v[i]);
        free(v);
}

int session_require(nono_store *s, MDB_txn *txn, const char *sid)
{
        MDB_val v;
        int r = db_get(s, txn, s->db_sessions, sid, SID_LEN, &v);
        if (r == -ENOENT)
                return store_err(-ENOENT, "no session %s in the store (deleted?): see `nono audit list`",
                                 sid);
        return r;
}

/* ---- create ---- */

struct sess_work {
        struct work w;
        struct nono_session *sess; /* create: filled with the id; update: the source */
        const char *id;            /* delete */
        bool assigned;             /* create: sess->id was handed out by an earlier attempt (keep it) */
};

static int create_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct sess_work *sw = (struct sess_work *)w;
        uint64_t ms = (uint64_t)(sw->sess->start_ns / 1000000), last_ms = 0;
        uint32_t ctr = 0;
        uint8_t gen[12];
        MDB_val v;
        struct wbuf b = {0};
        int r;

        if (db_get(s, txn, s->db_meta, "idgen", 5, &v) == 0 && v.mv_size == 12) {
                last_ms = le64_get(v.mv_data);
                ctr = le32_get((uint8_t *)v.mv_data + 8);
                if (ms <= last_ms) {
                        ms = last_ms;
                        if (++ctr >= (1u << 15)) {
                                ms++;
                                ctr = 0;
                        }
                } else {
                        ctr = 0;
                }
        }
        ms &= (1ull << 48) - 1;
        if (sw->assigned) {
                /* A retry of the transaction (the map grew) after nono_session_create_begin handed the id
                 * out: keep it, unless another process took it meanwhile; the generator stays ahead. */
                uint64_t mine = 0;
                uint32_t mctr = 0;
                for (int i = 0; i < 10; i++)
                        mine = mine << 5 | (uint64_t)(strchr(b32, sw->sess->id[i]) - b32);
                for (int i = 10; i < 13; i++)
                        mctr = mctr << 5 | (uint32_t)(strchr(b32, sw->sess->id[i]) - b32);
                if (db_get(s, txn, s->db_sessions, sw->sess->id, SID_LEN, &v) == 0)
                        return store_err(-EEXIST,
                                         "the new session's id %s was taken by another nono "
                                         "meanwhile: run the command again",
                                         sw->sess->id);
                if (mine > ms || (mine == ms && mctr > ctr))
                        ms = mine, ctr = mctr;
        } else {
                make_id(ms, ctr, sw->sess->id);
                sw->assigned = true;
        }
        le64_put(gen, ms);
        le32_put(gen + 8, ctr);
        session_encode(&b, sw->sess);
        if (b.oom)
                return store_err(-ENOMEM, "out of memory");
        r = db_put(s, txn, s->db_sessions, sw->sess->id, SID_LEN, b.p, b.len);
        wb_free(&b);
        if (r == 0)
                r = db_put(s, txn, s->db_meta, "idgen", 5, gen, 12);
        if (r == 0 && sw->sess->rollback && s->has_rbsess)
                r = db_put(s, txn, s->db_rbsess, sw->sess->id, SID_LEN, "", 0);
        return r;
}

static void create_defaults(struct nono_session *s)
{
        if (!s->pid) {
                s->pid = getpid();
                s->pid_start = 0;
        }
        if (!s->pid_start)
                nono_pid_start_time(s->pid, &s->pid_start);
        if (!s->start_ns)
                s->start_ns = now_ns();
}

int nono_session_create(nono_store *st, struct nono_session *s)
{
        struct sess_work w = {.w.run = create_run, .sess = s};

        create_defaults(s);
        return writer_submit(st, &w.w, false);
}

struct nono_session_pending {
        struct sess_work w;
};

int nono_session_create_begin(nono_store *st, struct nono_session *s, struct nono_session_pending **out)
{
        struct nono_session_pending *p = calloc(1, sizeof(*p));

        *out = NULL;
        if (!p)
                return store_err(-ENOMEM, "out of memory");
        p->w = (struct sess_work){.w.run = create_run, .sess = s};
        create_defaults(s);
        int r = writer_submit_nowait(st, &p->w.w);
        if (r < 0) {
                free(p);
                return r;
        }
        *out = p;
        r = writer_wait_ran(st, &p->w.w);
        if (r < 0)
                store_err_set_raw(p->w.w.msg);
        return r;
}

int nono_session_create_end(nono_store *st, struct nono_session_pending *p)
{
        if (!p)
                return 0;
        int r = writer_wait(st, &p->w.w);
        free(p);
        return r;
}

/* ---- update ---- */

static int update_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct sess_work *sw = (struct sess_work *)w;
        const struct nono_session *in = sw->sess;
        struct nono_session cur;
        struct wbuf b = {0};
        MDB_val v;
        int r;

        if ((r = session_require(s, txn, in->id)) < 0)
                return r;
        db_get(s, txn, s->db_sessions, in->id, SID_LEN, &v);
        if ((r = session_decode(in->id, v.mv_data, v.mv_size, &cur)) < 0)
                return r;
        cur.state = in->state == NONO_SESSION_CRASHED ? NONO_SESSION_CRASHED : in->state;
        cur.end_ns = in->end_ns;
        cur.exit_status = in->exit_status;
        cur.preimage_bytes = in->preimage_bytes;
        memcpy(cur.seal, in->seal, 64);
        memcpy(cur.seal_pub, in->seal_pub, 32);
        cur.sealed_events = in->sealed_events;
        session_encode(&b, &cur);
        nono_session_clear(&cur);
        if (b.oom)
                return store_err(-ENOMEM, "out of memory");
        r = db_put(s, txn, s->db_sessions, in->id, SID_LEN, b.p, b.len);
        wb_free(&b);
        return r;
}

int nono_session_update(nono_store *st, const struct nono_session *s)
{
        struct sess_work w = {.w.run = update_run, .sess = (struct nono_session *)s};
        int r = store_session_check(s->id);
        return r < 0 ? r : writer_submit(st, &w.w, false);
}

/* ---- the sealed end (event.c's append and update_run in one item) ---- */

struct end_work {
        struct work w;
        const struct nono_session *fin;
        const struct nono_end_ops *ops;
};

/* Re-runnable (the writer retries an item alone after an LMDB failure): everything is computed from the
 * transaction's state, and the writes come after both callbacks, so a failed one writes nothing. */
static int end_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct end_work *ew = (struct end_work *)w;
        const struct nono_session *fin = ew->fin;
        struct nono_session cur;
        struct nono_event e = {0};
        struct evstate es;
        struct rawev v;
        struct wbuf b = {0};
        MDB_val val;
        int r;

        if ((r = session_require(s, txn, fin->id)) < 0 || (r = evstate_load(s, txn, fin->id, &es)) < 0)
                return r;
        if ((r = ew->ops->fill(&es.counts, &e, ew->ops->arg)) < 0) {
                free((char *)e.detail);
                return store_err(r, "cannot make the end event of session %s", fin->id);
        }
        e.seq = es.next_seq++;
        nono_event_chain(&es.head, &e, &e.chain);
        es.head = e.chain;
        count_event(&es.counts, &e);
        db_get(s, txn, s->db_sessions, fin->id, SID_LEN, &val);
        if ((r = session_decode(fin->id, val.mv_data, val.mv_size, &cur)) < 0) {
                free((char *)e.detail);
                return r;
        }
        cur.state = fin->state;
        cur.end_ns = fin->end_ns;
        cur.exit_status = fin->exit_status;
        cur.preimage_bytes = fin->preimage_bytes;
        if ((r = ew->ops->sign(&cur, &e, ew->ops->arg)) < 0) {
                nono_session_clear(&cur);
                free((char *)e.detail);
                return store_err(r, "cannot sign session %s", fin->id);
        }
        session_encode(&b, &cur);
        nono_session_clear(&cur);
        if (b.oom)
                r = store_err(-ENOMEM, "out of memory");
        if (r == 0 && (r = rawev_from(s, txn, fin->id, &es, &e, &v)) == 0 &&
            (r = put_batch(s, txn, fin->id, &v, 1)) == 0 && (r = evstate_save(s, txn, fin->id, &es)) == 0)
                r = db_put(s, txn, s->db_sessions, fin->id, SID_LEN, b.p, b.len);
        wb_free(&b);
        free((char *)e.detail);
        return r;
}

int nono_events_end_sealed(nono_store *st, const struct nono_session *fin, const struct nono_end_ops *ops)
{
        struct end_work w = {.w.run = end_run, .fin = fin, .ops = ops};
        int r = store_session_check(fin->id);

        return r < 0 ? r : writer_submit(st, &w.w, false);
}

/* ---- get / list ---- */

/* Finds the one session whose id starts with prefix; fills full[]. */
static int resolve(nono_store *s, MDB_txn *txn, const char *prefix, char full[SID_LEN + 1])
{
        size_t pl = strlen(prefix);
        MDB_cursor *c;
        MDB_val k = {pl, (void *)prefix}, v;
        int n = 0, rc;

        if (pl == SID_LEN && db_get(s, txn, s->db_sessions, prefix, SID_LEN, &v) == 0) {
                memcpy(full, prefix, SID_LEN + 1);
                return 0;
        }
        if ((rc = mdb_cursor_open(txn, s->db_sessions, &c)))
                return store_mdb_err(s, rc, "listing sessions");
        rc = pl ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
        for (; rc == 0 && n < 2; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                if (k.mv_size != SID_LEN || memcmp(k.mv_data, prefix, pl))
                        break;
                if (n++ == 0) {
                        memcpy(full, k.mv_data, SID_LEN);
                        full[SID_LEN] = 0;
                }
        }
        mdb_cursor_close(c);
        if (n == 0)
                return store_err(-ENOENT, "no session %s: see `nono audit list` for the ids", prefix);
        if (n > 1)
                return store_err(-EEXIST, "session id prefix %s is ambiguous: give more characters", prefix);
        return 0;
}

int nono_session_get(nono_store *st, const char *id, struct nono_session *out)
{
        char norm[SID_LEN + 2], full[SID_LEN + 1];
        MDB_txn *txn;
        MDB_val v;
        int r;

        *out = (struct nono_session){0};
        if (!id || !*id)
                return store_err(-EINVAL, "no session id given: see `nono audit list` for the ids");
        if ((r = normalise_id(id, norm, sizeof(norm))) < 0)
                return r;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        if ((r = resolve(st, txn, norm, full)) == 0 &&
            (r = db_get(st, txn, st->db_sessions, full, SID_LEN, &v)) == 0)
                r = session_decode(full, v.mv_data, v.mv_size, out);
        rtxn_end(st, txn);
        return r;
}

/* Decodes a session record onto the end of a growing list. */
static int list_push(struct nono_session **vec, size_t *cnt, size_t *cap, const char *id, const MDB_val *rec)
{
        if (*cnt == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                struct nono_session *nv = realloc(*vec, c * sizeof(*nv));
                if (!nv)
                        return store_err(-ENOMEM, "out of memory");
                *vec = nv;
                *cap = c;
        }
        int r = session_decode(id, rec->mv_data, rec->mv_size, &(*vec)[*cnt]);
        if (r == 0)
                (*cnt)++;
        return r;
}

/* The sessions whose ids are the keys of dbi, oldest first: the records themselves (db_sessions), or looked
 * up by an index's keys (db_rbsess; ids the index holds but the store no longer does are skipped). */
static int list_walk(nono_store *st, MDB_dbi dbi, bool via_index, struct nono_session **out, size_t *n)
{
        MDB_txn *txn;
        MDB_cursor *c;
        MDB_val k, v, rec;
        struct nono_session *vec = NULL;
        size_t cnt = 0, cap = 0;
        int r = 0, rc;

        *out = NULL;
        *n = 0;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        if ((rc = mdb_cursor_open(txn, dbi, &c))) {
                rtxn_end(st, txn);
                return store_mdb_err(st, rc, "listing sessions");
        }
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                char id[SID_LEN + 1];
                if (k.mv_size != SID_LEN)
                        continue;
                memcpy(id, k.mv_data, SID_LEN);
                id[SID_LEN] = 0;
                rec = v;
                if (via_index && db_get(st, txn, st->db_sessions, id, SID_LEN, &rec) < 0) {
                        store_err_clear(); /* deleted by a nono that predates the index */
                        continue;
                }
                if ((r = list_push(&vec, &cnt, &cap, id, &rec)) < 0)
                        break;
        }
        mdb_cursor_close(c);
        rtxn_end(st, txn);
        if (r < 0) {
                nono_session_list_free(vec, cnt);
                return r;
        }
        *out = vec;
        *n = cnt;
        return 0;
}

int nono_session_list(nono_store *st, struct nono_session **out, size_t *n)
{
        return list_walk(st, st->db_sessions, false, out, n);
}

/* The index is filled once, in the transaction that creates it (a store made by an earlier nono): every
 * session is read that one time. */
int session_rbsess_build(nono_store *s, MDB_txn *txn)
{
        MDB_cursor *c;
        MDB_val k, v;
        int rc;

        if ((rc = mdb_cursor_open(txn, s->db_sessions, &c)))
                return store_mdb_err(s, rc, "indexing rollback sessions");
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                struct nono_session x;
                char id[SID_LEN + 1];
                if (k.mv_size != SID_LEN)
                        continue;
                memcpy(id, k.mv_data, SID_LEN);
                id[SID_LEN] = 0;
                if (session_decode(id, v.mv_data, v.mv_size, &x) < 0) {
                        store_err_clear(); /* a damaged record stays out of the index; listing it says so */
                        continue;
                }
                bool rb = x.rollback;
                nono_session_clear(&x);
                MDB_val ik = {SID_LEN, id}, iv = {0, ""};
                if (rb && (rc = mdb_put(txn, s->db_rbsess, &ik, &iv, 0)))
                        break;
        }
        mdb_cursor_close(c);
        return rc && rc != MDB_NOTFOUND ? store_mdb_err(s, rc, "indexing rollback sessions") : 0;
}

int nono_session_list_rollback(nono_store *st, struct nono_session **out, size_t *n)
{
        struct nono_session *vec;
        size_t cnt;
        int r;

        if (st->has_rbsess)
                return list_walk(st, st->db_rbsess, true, out, n);
        /* read-only, a store older than the index: all sessions, filtered */
        if ((r = list_walk(st, st->db_sessions, false, &vec, &cnt)) < 0)
                return r;
        *n = 0;
        for (size_t i = 0; i < cnt; i++) {
                if (vec[i].rollback)
                        vec[(*n)++] = vec[i];
                else
                        nono_session_clear(&vec[i]);
        }
        *out = vec;
        return 0;
}

/* ---- delete ---- */

static int delete_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct sess_work *sw = (struct sess_work *)w;
        int r;

        if ((r = session_require(s, txn, sw->id)) < 0)
                return r;
        if ((r = change_delete_session(s, txn, sw->id)) < 0 || (r = event_delete_session(s, txn, sw->id)) < 0)
                return r;
        db_del(s, txn, s->db_journal, sw->id, SID_LEN);
        if (s->has_rbsess)
                db_del(s, txn, s->db_rbsess, sw->id, SID_LEN);
        r = db_del(s, txn, s->db_sessions, sw->id, SID_LEN);
        return r == -ENOENT ? 0 : r;
}

int nono_session_delete(nono_store *st, const char *id)
{
        struct nono_session cur;
        int r;

        /* Resolve a prefix to the full id first, so the writer works on exact keys. */
        if ((r = nono_session_get(st, id, &cur)) < 0)
                return r;
        nono_session_clear(&cur);
        struct sess_work w = {.w.run = delete_run, .id = cur.id};
        return writer_submit(st, &w.w, false);
}
