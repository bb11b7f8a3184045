/* SPDX-License-Identifier: Apache-2.0 */
/* run-session.c - see run-session.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher/audit.h"
#include "launcher/retention.h"
#include "launcher/run-session.h"
#include "launcher/sandbox-util.h"
#include "launcher/seal.h"

static int64_t now_ns(void)
{
        struct timespec t;

        clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int nono_run_session_begin(struct nono_run_session *rs, const struct nono_policy *p, const char *policy_json,
                           char **argv, char **roots, char *err, size_t errlen)
{
        static char *empty[] = {NULL}; /* read again if the writer retries (run-session.h) */
        int r;

        *rs = (struct nono_run_session){0};
        if ((r = nono_store_open(NULL, 0, &rs->st)) < 0) {
                snprintf(err, errlen, "cannot open the store: %s", nono_store_errmsg());
                return r;
        }
        nono_trace("session: store open");
        rs->s.kind = NONO_SESSION_RUN;
        rs->s.state = NONO_SESSION_RUNNING;
        rs->s.argv = argv;
        rs->s.cwd = p->workdir;
        rs->s.policy_json = (char *)policy_json;
        rs->s.roots = roots ? roots : empty;
        rs->s.rollback = p->rollback;
        rs->s.start_ns = now_ns();
        rs->s.pid = getpid();
        r = nono_session_create_begin(rs->st, &rs->s, &rs->pending);
        if (r < 0) {
                char e[256];
                snprintf(e, sizeof(e), "%s", nono_store_errmsg());
                (void)nono_run_session_recorded(rs, NULL, 0);
                snprintf(err, errlen, "cannot record the session: %s", e);
        }
        return r;
}

int nono_run_session_recorded(struct nono_run_session *rs, char *err, size_t errlen)
{
        if (!rs->st)
                return -ENOTCONN;
        int r = nono_session_create_end(rs->st, rs->pending);
        rs->pending = NULL;
        rs->s.policy_json = NULL;
        rs->s.argv = NULL;
        rs->s.cwd = NULL;
        rs->s.roots = NULL;
        if (r < 0) {
                if (err)
                        snprintf(err, errlen, "cannot record the session: %s", nono_store_errmsg());
                nono_store_close(rs->st);
                rs->st = NULL;
        }
        return r;
}

int nono_run_session_durable(struct nono_run_session *rs)
{
        nono_store_defer_sync(rs->st, false);
        return nono_store_sync(rs->st);
}

void nono_run_session_ending(struct nono_run_session *rs)
{
        if (rs->st)
                nono_store_defer_sync(rs->st, true);
}

int nono_run_session_end(struct nono_run_session *rs, int status, uint64_t preimage_bytes)
{
        int r, d;

        if (!rs->st)
                return 0;
        rs->s.state = NONO_SESSION_FINISHED;
        rs->s.end_ns = now_ns();
        rs->s.exit_status = status;
        rs->s.preimage_bytes = preimage_bytes;
        /* the end event, then the final record with the seal, last, in one update: nothing may be written
         * to the session after it. A session whose end event or seal failed is still finished (unsealed). */
        bool ended;
        r = nono_audit_end_sealed(rs->st, &rs->s, rs->have_key ? &rs->key : NULL, &ended);
        nono_trace("end: end event and seal");
        /* the events queued before it (roots, supervisor, proxy) ran in the same commit or before */
        if (nono_store_async_result(rs->st) < 0)
                fprintf(stderr, "nono: some audit events of session %s could not be stored: %s\n", rs->s.id,
                        nono_store_errmsg());
        if (r < 0 && !ended)
                fprintf(stderr, "nono: %s\n", nono_audit_errmsg());
        else if (r < 0)
                fprintf(stderr, "nono: cannot seal session %s: %s\n", rs->s.id, nono_audit_errmsg());
        if (r < 0 && nono_session_update(rs->st, &rs->s) < 0)
                fprintf(stderr, "nono: cannot finalise session %s: %s\n", rs->s.id, nono_store_errmsg());
        /* the roots' last events, the end event and the seal were committed together with one fdatasync
         * (deferred since nono_run_session_ending): one more makes it durable */
        if ((d = nono_run_session_durable(rs)) < 0) {
                fprintf(stderr, "nono: the end of session %s may not be on disk: %s\n", rs->s.id,
                        nono_store_errmsg());
                r = r < 0 ? r : d;
        }
        nono_trace("end: durable");
        /* automatic retention (config.json): old rollback sessions go, never this one nor a running one */
        if (rs->s.rollback && nono_retention_apply(rs->st) < 0)
                fprintf(stderr,
                        "nono: warning: automatic rollback retention failed: %s (see `nono rollback "
                        "cleanup --dry-run`)\n",
                        nono_store_errmsg());
        return r;
}

void nono_run_session_close(struct nono_run_session *rs)
{
        explicit_bzero(&rs->key, sizeof(rs->key));
        rs->have_key = false;
        nono_store_close(rs->st);
        rs->st = NULL;
}
