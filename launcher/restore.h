/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore.h - undoing a session: the rollback engine behind `nono rollback restore`, and its whole contract.
 *
 * A restore returns every path a session touched (or a subset) to its state at the session start, from the
 * session's node and path records in the store, and removes what the session created. It:
 *   - writes its plan to the store's journal before changing anything, records progress, and when killed is
 *     completed by calling nono_restore() again for the same session (the journal wins over new arguments);
 *   - refuses a running session; lists conflicts (a touched path that changed after the session ended) and
 *     stops unless force;
 *   - is itself a session (kind RESTORE, parent = the restored id) whose pre-images are what the restore
 *     overwrote, so restoring the restore puts the tree back;
 *   - touches the real tree only fd-relative beneath each root (see restore_fs.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "store/store.h"

struct nono_restore_opts {
        const char *const *paths; /* user paths (absolute or relative to the cwd) to restore; NULL: all */
        size_t n_paths;
        bool dry_run;  /* print the plan and the conflicts; change nothing */
        bool force;    /* restore over conflicts */
        bool progress; /* progress line on stderr (callers pass isatty(2)) */
        char **argv;   /* recorded as the restore session's command line (may be NULL) */
        FILE *out;     /* plan, conflicts and notes (NULL: stdout) */
};

struct nono_restore_report {
        char restore_id[NONO_SESSION_ID_LEN + 1]; /* the restore session ("" with dry_run) */
        size_t restored, removed, created;        /* paths whose state was changed, by kind */
        size_t conflicts;                         /* with -ESTALE: how many (listed on out) */
        bool resumed;                             /* an interrupted restore was completed */
};

/* Returns 0, or -EBUSY (session running), -ESTALE (conflicts, nothing changed), -ENOENT (no such session
 * or path), -ENODATA (a pre-image the restore needs is missing), another negative errno; the message is
 * in nono_restore_errmsg(). */
int nono_restore(nono_store *st, const char *session, const struct nono_restore_opts *o,
                 struct nono_restore_report *rep);
const char *nono_restore_errmsg(void);

/* Maps a user's path (absolute, or relative to the cwd; need not exist) to a root of roots (NULL-terminated)
 * and the path relative to it. -ENOENT when it is under none. */
int nono_rollback_user_path(char *const *roots, const char *arg, uint32_t *root, char **rel);
