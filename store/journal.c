/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.c - the restore journal: one opaque record per restored session (the plan and its progress),
 * written durably so that an interrupted restore can be completed by re-running it.
 */
#include <errno.h>
#include <string.h>

#include "store/internal.h"

struct journal_work {
        struct work w;
        char sid[SID_LEN + 1];
        const void *buf;
        size_t len;
        bool del;
};

static int journal_run(nono_store *s, MDB_txn *txn, struct work *w)
{
        struct journal_work *j = (struct journal_work *)w;
        int r;

        if ((r = session_require(s, txn, j->sid)) < 0)
                return r;
        if (j->del) {
                r = db_del(s, txn, s->db_journal, j->sid, SID_LEN);
                return r == -ENOENT ? 0 : r;
        }
        return db_put(s, txn, s->db_journal, j->sid, SID_LEN, j->buf, j->len);
}

static int journal_submit(nono_store *st, const char *session, const void *buf, size_t len, bool del)
{
        int r = store_session_check(session);
        if (r < 0)
                return r;
        struct journal_work j = {.w.run = journal_run, .buf = buf, .len = len, .del = del, .w.bytes = len};
        memcpy(j.sid, session, SID_LEN);
        return writer_submit(st, &j.w, false);
}

int nono_journal_put(nono_store *st, const char *session, const void *buf, size_t len)
{
        return journal_submit(st, session, buf, len, false);
}

int nono_journal_delete(nono_store *st, const char *session)
{
        return journal_submit(st, session, NULL, 0, true);
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
