/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run-session.h - the session record of one `nono run` in the store: created durably before the agent
 * starts (so a crash never leaves an unlisted session), finalised with the exit status. Compiled in when
 * store/ is (NONO_HAVE_STORE).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "launcher/policy.h"
#include "launcher/seal.h"
#include "store/store.h"

struct nono_run_session {
        nono_store *st;
        struct nono_session s;
        struct nono_session_pending *pending; /* between _begin and _recorded */
        struct nono_audit_key key;            /* the seal key when the caller loaded it early (have_key) */
        bool have_key;
};

/* Opens the store and creates the session (state running): returns once its id (rs->s.id) is assigned,
 * while the record's flush may still be under way; what is written to the store from then on commits after
 * it. nono_run_session_recorded() waits until it is durable. roots: NULL-terminated root paths.
 * policy_json: nono_policy_to_json(p), which the caller also puts in the start event (made once); it,
 * argv and roots must stay valid until _recorded. */
int nono_run_session_begin(struct nono_run_session *rs, const struct nono_policy *p, const char *policy_json,
                           char **argv, char **roots, char *err, size_t errlen);
/* Waits until the session record is durable (or failed: the store is then closed). */
int nono_run_session_recorded(struct nono_run_session *rs, char *err, size_t errlen);
/* Ends the deferral and waits until everything written so far is durable. */
int nono_run_session_durable(struct nono_run_session *rs);
/* The agent is gone: defers durability again, so that the roots' last events, the end event and the seal
 * commit one fdatasync each; nono_run_session_end() flushes them all at its end. */
void nono_run_session_ending(struct nono_run_session *rs);
/* Marks it finished with the status, sealed, and durable. The store stays open: fs/ may still use it. */
int nono_run_session_end(struct nono_run_session *rs, int status, uint64_t preimage_bytes);
/* Closes the store, after everything that writes to it (fs/ roots, supervisor, proxy) is freed. */
void nono_run_session_close(struct nono_run_session *rs);
