/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal.h - integrity of a session's audit trail: the Ed25519 audit key, sealing, verification.
 *
 * The store chains every event to the one before it (chain = SHA-256(previous chain || canonical bytes)).
 * At session end nono_audit_seal() signs
 *
 *     "nono-seal-v1" NUL || session id || le64 event count || chain head || SHA-256(session canonical bytes)
 *
 * with the user's audit key and stores the signature, the public key and the count in the session record.
 * nono_audit_verify() has the store recompute the chain and compare it with what it stored
 * (nono_events_verify), checks the sequence for gaps and against the sealed count, and checks the signature
 * of the recomputed head against a key the user trusts.
 *
 * What it stops: an edit, deletion, reordering, insertion or truncation of events, or an edit of the session
 * record (argv, cwd, policy, roots, times, exit status), made after the seal by anyone who does not hold the
 * private key; also a re-seal with another key, when verify is given the trusted public key (--public-key,
 * or the local key by default). What it does not stop: someone who holds the private key (it lives in
 * $XDG_CONFIG_HOME/nono/keys, readable by the user, outside every sandbox) can rewrite and re-seal; events
 * lost before they were durable (a SIGKILL of nono) are simply absent, and a session that was never sealed
 * can be truncated at its tail without detection (verify says it was not sealed).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct nono_audit_key {
        uint8_t priv[32];
        uint8_t pub[32];
};

/* $XDG_CONFIG_HOME/nono/keys, else $HOME/.config/nono/keys. */
int nono_audit_key_dir(char *buf, size_t len);

/* Loads the key from dir (NULL: nono_audit_key_dir()); with create, makes one on first use (dir 0700, key
 * 0600, written to a temporary name and linked into place so concurrent first uses agree). Refuses a key
 * file that others can read or that belongs to someone else. -ENOENT when absent and !create. */
int nono_audit_key_load(const char *dir, bool create, struct nono_audit_key *out);

/* Reads a public key file: the PEM written next to the key (audit.pub), or 64 hex digits. */
int nono_audit_pubkey_read(const char *file, uint8_t pub[32]);

/* "ed25519:" + first 16 hex digits of SHA-256(pub); out >= 32 bytes. */
void nono_audit_key_fingerprint(const uint8_t pub[32], char *out, size_t len);

/* Canonical bytes of the sealed part of a session record: everything but state, pid, pid_start,
 * preimage_bytes and the seal fields (those change legitimately after the seal, e.g. on restore).
 * Returns a malloc'd buffer and its length, NULL on allocation failure. */
uint8_t *nono_session_canonical(const struct nono_session *s, size_t *len);

/*
 * Seals a finished session: waits for queued events, recomputes the chain (refusing a broken one with
 * -EBADMSG), signs with key (NULL: nono_audit_key_load(NULL, true)), stores seal, seal_pub and
 * sealed_events. Call it last: after the session record holds its end time and exit status, after the end
 * event, and never write the session afterwards with a stale in-memory copy (that would clear the seal).
 */
int nono_audit_seal(nono_store *st, const char *session);
int nono_audit_seal_with(nono_store *st, const char *session, const struct nono_audit_key *key);
/*
 * `nono run`'s end: the end event (as nono_audit_end_event makes it) and the seal over it, in one
 * transaction of the store's writer (nono_events_end_sealed), after every event queued before it: the
 * counts in the end event and the chain head the seal signs are the writer's own, so the events queued
 * before (the roots' last ones, NONO_ASYNC) need no commit of their own, nothing can come between the end
 * event and the seal, and there is no walk over the session's events. The record's final state, end_ns,
 * exit_status and preimage_bytes (from fin, whose id names the session) are signed and stored with the seal.
 * If that transaction fails, nothing of it was written, and the end event is appended alone and sealed the
 * slow way. key: loaded earlier (NULL: nono_audit_key_load(NULL, true)). Returns 0; or < 0 with *ended
 * telling whether the end event was recorded and nono_audit_errmsg() what failed; when the seal failed the
 * caller stores the final fields unsealed.
 */
int nono_audit_end_sealed(nono_store *st, const struct nono_session *fin, const struct nono_audit_key *key,
                          bool *ended);

enum nono_verdict {
        NONO_VERIFY_OK = 0,       /* chain intact, sealed, signature good by a trusted key */
        NONO_VERIFY_BAD = 1,      /* something was changed: see first_bad and problem */
        NONO_VERIFY_UNSEALED = 3, /* chain intact as far as it goes, but never sealed */
};

struct nono_verify_report {
        enum nono_verdict verdict;
        uint64_t events;    /* events stored */
        uint64_t first_bad; /* seq of the first bad event; 0 when the problem is not one event */
        bool sealed;
        bool signature_ok;
        bool key_trusted;     /* signature checked against --public-key or the local key */
        char key_source[160]; /* where the trusted key came from, or why none */
        char fingerprint[40]; /* of the key that made the seal */
        char problem[512];    /* the first problem in words ("" when OK) */
        bool running;         /* the session is still running (unsealed for that reason) */
};

/* Verifies a session. trusted_pub: the key to trust (NULL: the local key if there is one, else only the key
 * recorded in the session, which proves integrity against accidents but not against someone who can
 * re-seal). Returns 0 with the report filled in (whatever the verdict), or a negative errno when the
 * session could not be read. */
int nono_audit_verify(nono_store *st, const char *session, const uint8_t *trusted_pub,
                      struct nono_verify_report *out);

/* Message for the last failure of this thread ("" when none). */
const char *nono_audit_errmsg(void);
