/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nono.h - the public C API of nono (libnono.so), what the Python and TypeScript SDKs bind to.
 *
 * It covers what the `nono` command does, as calls: run an agent in the sandbox, list sessions, read their
 * audit events, show what a --rollback session changed, verify its pre-images, restore it. The `nono`
 * binary and this library share the same code; only option parsing and printing differ.
 *
 * Conventions:
 *   - Functions return 0 (or a count) on success and a negative errno on failure; nono_api_error() then
 *     holds a message for a person that names the problem and the fix (per thread, until the next call).
 *   - Strings are UTF-8, NUL-terminated. Lists of strings are NULL-terminated. What a function allocates
 *     for the caller has a matching *_free / *_clear.
 *   - Only the names in this header are exported; the structs here are the ABI. NONO_API_VERSION grows when
 *     something is added; nothing is removed or changed within a major version.
 *   - Thread safety: a handle may be used by one thread at a time. nono_api_run() forks, blocks SIGINT,
 *     SIGTERM, SIGHUP, SIGQUIT, SIGWINCH and SIGCHLD while the agent runs (they are forwarded to it), and
 *     returns when the agent and all its descendants are gone: call it from a process that can afford that
 *     (an SDK runs it in a child process of its own when it must not block).
 */
#ifndef NONO_H
#define NONO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NONO_API_VERSION 1

/* The API version the library implements (compare with NONO_API_VERSION at build time). */
int nono_api_version(void);
/* The message of the last failed call on this thread ("" if none). */
const char *nono_api_error(void);

/* ---- running an agent --------------------------------------------------------------------------- */

struct nono_api_run_opts {
        const char *profile;              /* NULL: "default" */
        const char *workdir;              /* NULL: the current directory */
        const char *const *allow;         /* read-write grants (directories or files) */
        const char *const *read;          /* read-only grants */
        const char *const *allow_domains; /* network: domains reachable through nono's proxy */
        bool rollback;                    /* keep pre-images so the session can be restored */
        bool allow_net;                   /* no network confinement (still audited) */
        bool no_audit;                    /* do not record exec/network events */
        bool summary;                     /* print the exit summary on stderr */
        bool dry_run;                     /* print the resolved policy on stdout; start nothing */
        bool json;                        /* with dry_run: as JSON */
};

/* Runs argv[0] with argv in the sandbox, as `nono run` does. Returns the agent's exit status as nono's (its
 * code, or 128+N for a signal; 126/127 when the command cannot run), or 1 when the sandbox could not be
 * built (the reason was printed on stderr). argv[0] is looked up on PATH. */
int nono_api_run(const struct nono_api_run_opts *o, char *const argv[]);

/* ---- the store: sessions ------------------------------------------------------------------------ */

typedef struct nono_api nono_api;

/* Opens the store at home (NULL: $NONO_HOME, else $XDG_DATA_HOME/nono, else ~/.local/share/nono). read_only:
 * never writes (list, show, events, verify); restore needs it writable. */
int nono_api_open(const char *home, bool read_only, nono_api **out);
void nono_api_close(nono_api *n);

enum nono_api_state {
        NONO_API_RUNNING = 0,
        NONO_API_FINISHED = 1,
        NONO_API_CRASHED = 2, /* its nono was killed: restorable */
        NONO_API_RESTORED = 3,
};

struct nono_api_session {
        char id[16];      /* 13 characters; any unique prefix names it in the calls below */
        int state;        /* enum nono_api_state */
        bool is_restore;  /* a restore of `parent` (itself undoable) */
        bool rollback;    /* pre-images were kept */
        char *parent;     /* restores: the session restored; else NULL */
        char **argv;      /* the command */
        char *cwd;        /* where it ran */
        char **roots;     /* granted roots seen through fs/ (root ids index this) */
        int64_t start_ns; /* CLOCK_REALTIME */
        int64_t end_ns;   /* 0 while running */
        int exit_status;  /* as nono's */
        uint64_t preimage_bytes;
        size_t created, modified, deleted; /* paths, for rollback sessions (renames count as modified) */
};

/* One session (id: full or a unique prefix); -ENOENT none, -EEXIST ambiguous. */
int nono_api_session(nono_api *n, const char *id, struct nono_api_session *out);
/* Every session, oldest first. */
int nono_api_sessions(nono_api *n, struct nono_api_session **out, size_t *count);
void nono_api_session_clear(struct nono_api_session *s);
void nono_api_sessions_free(struct nono_api_session *v, size_t count);

/* ---- audit events ------------------------------------------------------------------------------- */

struct nono_api_event {
        uint64_t seq;        /* 1, 2, ... in the session */
        int64_t time_ns;     /* CLOCK_REALTIME */
        uint32_t pid, uid;   /* the caller */
        const char *type;    /* "file", "exec", "net", "session" */
        const char *op;      /* "open", "rename", "exec", "connect", ... (as `nono audit show` prints) */
        int result;          /* 0 or the errno the caller got */
        bool violation;      /* the policy refused it */
        uint32_t root;       /* file events: index into the session's roots */
        const char *path;    /* file: relative to its root; exec: the executable; else NULL */
        const char *path2;   /* rename/link: the second path; else NULL */
        const char *detail;  /* exec: argv as JSON; net: host:port and the decision; else NULL */
        uint32_t open_flags; /* opens: open(2) flags */
        uint64_t bytes_read, bytes_written; /* opens: totals over the handle's life */
        /* opens: false when the kernel moved the bytes itself (FUSE passthrough, root only) and the two
         * totals above are 0; data_changed then says whether the handle wrote anything */
        bool bytes_counted, data_changed;
};

/* Calls cb for each event from seq `from` (1: the first), in order; the event's strings are valid during
 * the call only. cb returns 0 to go on, > 0 to stop (returned), < 0 to abort (returned). */
typedef int (*nono_api_event_cb)(const struct nono_api_event *ev, void *userdata);
int nono_api_events(nono_api *n, const char *id, uint64_t from, nono_api_event_cb cb, void *userdata);

/* ---- rollback ----------------------------------------------------------------------------------- */

enum nono_api_show_mode {
        NONO_API_SHOW_NAMES = 0, /* one line per path: A/D/M/R and the path */
        NONO_API_SHOW_STAT = 1,  /* like git diff --stat */
        NONO_API_SHOW_DIFF = 2,  /* unified diff from the start state to the end state */
        NONO_API_SHOW_JSON = 3,
};

/* Prints what session id changed (paths: NULL-terminated subset, absolute or relative to the cwd; NULL:
 * all) on out. color: ANSI colors in diffs. */
int nono_api_show(nono_api *n, const char *id, const char *const *paths, int mode, bool color, FILE *out);

/* Checks that every pre-image the session needs is present and matches its SHA-256. Returns 0 when all do,
 * -EBADMSG when some do not (each listed on out, which may be NULL), another negative errno when the
 * store cannot be read. */
int nono_api_verify(nono_api *n, const char *id, FILE *out);

#define NONO_API_RESTORE_DRY_RUN  0x1u /* list the plan and the conflicts; change nothing */
#define NONO_API_RESTORE_FORCE    0x2u /* restore over paths changed after the session ended */
#define NONO_API_RESTORE_PROGRESS 0x4u /* a progress line on stderr */

struct nono_api_restore_result {
        char restore_id[16]; /* the restore's own session (undo it by restoring this) */
        size_t restored, removed,
            created;      /* paths changed back, removed (created by the session), recreated */
        size_t conflicts; /* with -ESTALE: paths changed since the session ended */
        bool resumed;     /* an interrupted restore of this session was completed */
};

/* Returns every path the session touched (or those under paths) to its state at the session start.
 * -EBUSY: the session is still running; -ESTALE: conflicts (listed on out, nothing changed; pass
 * NONO_API_RESTORE_FORCE to restore anyway); -ENODATA: a pre-image is missing. out (NULL: stdout) gets the
 * plan with DRY_RUN, conflicts and notes. The handle must have been opened writable. */
int nono_api_restore(nono_api *n, const char *id, const char *const *paths, unsigned flags, FILE *out,
                     struct nono_api_restore_result *res);

#ifdef __cplusplus
}
#endif
#endif
