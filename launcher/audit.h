/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.h - the events a session records about itself (start and end), and the small vocabulary the audit
 * commands share (operation names). `nono run` calls, in this order:
 *
 *     nono_audit_session_start()   after the session record exists, before the agent starts;
 *     ... the agent runs; fs/ and the supervisor append events ...
 *     nono_supervisor_stop()       after the agent and its descendants are reaped;
 *     nono_session_update()        with end_ns, exit_status, state = FINISHED;
 *     nono_audit_session_end()     the end event (durable on return);
 *     nono_audit_seal()            last (seal.h).
 */
#pragma once

#include <stdint.h>

#include "store/store.h"

/* The session start event: argv, the policy summary (a JSON object or NULL), the Landlock ABI (a negative
 * value: ask the kernel), the kernel release and nono's version. Durable on return. */
int nono_audit_session_start(nono_store *st, const char *session, char *const *argv, const char *policy_json,
                             int landlock_abi);
/* The same with store flags: NONO_ASYNC queues it (nono_store_sync() makes it durable), so that `nono run`
 * serves the roots while it commits; events appended after it still follow it in the chain. Addition by
 * the run start path. */
int nono_audit_session_start_flags(nono_store *st, const char *session, char *const *argv,
                                   const char *policy_json, int landlock_abi, unsigned flags);

/* The session end event: exit status (as nono's: code or 128+signal), duration and the event counts.
 * An agent killed by SIGSYS (the deny filter's KILL action) adds a violation event, because that death is the
 * only trace a killed syscall leaves without kernel audit. Durable on return. */
int nono_audit_session_end(nono_store *st, const char *session, int exit_status, int64_t duration_ns);
/* The same end event, made but not appended (a SIGSYS violation event is appended, durably): for a caller
 * that signs the seal over it before it is written (nono_audit_end_sealed, seal.h). ev->detail is malloc'd:
 * the caller frees it. */
int nono_audit_end_event(nono_store *st, const char *session, int exit_status, int64_t duration_ns,
                         struct nono_event *ev);
/* Its parts: the end event from the session's counts before it (ev->detail malloc'd), and the violation
 * event of an agent killed by SIGSYS (flags as nono_events_append's). */
int nono_audit_end_fill(const struct nono_event_counts *c, int exit_status, int64_t duration_ns,
                        struct nono_event *ev);
int nono_audit_sigsys_event(nono_store *st, const char *session, unsigned flags);

/* "open", "exec", "connect", ... ("?" for unknown). */
const char *nono_op_name(unsigned op);
/* "file", "exec", "net", "session" ("?" for unknown). */
const char *nono_event_type_name(unsigned type);
