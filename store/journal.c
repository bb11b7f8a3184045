/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.c - the restore journal: one opaque record per restored session (the plan and its progress),
 * written durably so that an interrupted restore can be completed by re-running it. Its progress is a
 * separate 8-byte record under the key "SID+" (the plan of a 10,000-file restore is megabytes; rewriting it
 * at every progress mark cost a second per restore).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "store/internal.h"

#define PROGRESS_MARK '+'

enum journal_op { J_PUT, J_DEL, J_PROGRESS };

struct journal_work {
        struct work w;
        char sid[SID_LEN + 1];
        char pkey[SID_LEN + 1]; /* the progress record's key: sid and PROGRESS_MARK */
        const void *buf;
        size_t len;
        enum journal_op op;
};

static int journal_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct journal_work *j = (struct journal_work *)w;
        int r;

        if ((r = session_require(s, txn, j->sid)) < 0)
                return r;
        if (j->op == J_PROGRESS)
                return db_put(s, txn, s->db_journal, j->pkey, sizeof j->pkey, j->buf, j->len);
        r = db_del(s, txn, s->db_journal, j->pkey, sizeof j->pkey);
        if (r < 0 && r != -ENOENT)
                return r;
        if (j->op == J_DEL) {
                r = db_del(s, txn, s->db_journal, j->sid, SID_LEN);
                return r == -ENOENT ? 0 : r;
        }
        return db_put(s, txn, s->db_journal, j->sid, SID_LEN, j->buf, j->len);
}

static int journal_submit(nono_store *st, const char *session, const void *buf, size_t len,
                          enum journal_op op)
{
        int r = store_session_check(session);
        if (r < 0)
                return r;
        struct journal_work j = {.w.run = journal_run, .buf = buf, .len = len, .op = op, .w.bytes = len};
        memcpy(j.sid, session, SID_LEN);
        memcpy(j.pkey, session, SID_LEN);
        j.pkey[SID_LEN] = PROGRESS_MARK;
        return writer_submit(st, &j.w, false);
}

int nono_journal_put(nono_store *st, const char *session, const void *buf, size_t len)
{
        return journal_submit(st, session, buf, len, J_PUT);
}

int nono_journal_delete(nono_store *st, const char *session)
{
        return journal_submit(st, session, NULL, 0, J_DEL);
}

int nono_journal_progress_put(nono_store *st, const char *session, uint64_t done)
{
        uint64_t le = htole64(done);
        return journal_submit(st, session, &le, sizeof le, J_PROGRESS);
}

int nono_journal_progress_get(nono_store *st, const char *session, uint64_t *done)
{
        char key[SID_LEN + 1];
        MDB_txn *txn;
        MDB_val v;
        uint64_t le;
        int r;

        if ((r = store_session_check(session)) < 0)
                return r;
        memcpy(key, session, SID_LEN);
        key[SID_LEN] = PROGRESS_MARK;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        r = db_get(st, txn, st->db_journal, key, sizeof key, &v);
        if (r == 0 && v.mv_size == sizeof le) {
                memcpy(&le, v.mv_data, sizeof le);
                *done = le64toh(le);
        } else if (r == 0) {
                r = store_err(-EBADMSG, "the restore progress of session %s is damaged", session);
        }
        rtxn_end(st, txn);
        return r;
}

int nono_journal_get(nono_store *st, const char *session, void **buf, size_t *len)
{
        MDB_txn *txn;
        MDB_val v;
        int r;

        *buf = NULL;
        *len = 0;
        if ((r = store_session_check(session)) < 0)
                return r;
        if ((r = rtxn_begin(st, &txn)) < 0)
                return r;
        r = db_get(st, txn, st->db_journal, session, SID_LEN, &v);
        if (r == 0) {
                if ((*buf = malloc(v.mv_size ? v.mv_size : 1))) {
                        memcpy(*buf, v.mv_data, v.mv_size);
                        *len = v.mv_size;
                } else {
                        r = store_err(-ENOMEM, "out of memory");
                }
        } else if (r == -ENOENT) {
                store_err(r, "session %s has no restore journal", session);
        }
        rtxn_end(st, txn);
        return r;
}
