/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - nono's durable state, and the whole contract of store/.
 *
 * One LMDB environment at $NONO_HOME/store (default $XDG_DATA_HOME/nono/store, else
 * ~/.local/share/nono/store) holds:
 *
 *   - chunks:   content-addressed blobs of at most NONO_CHUNK_SIZE bytes, keyed by SHA-256 of the bytes,
 *               reference counted;
 *   - objects:  a whole content, as the list of its chunk digests; an object's id is
 *               SHA-256("nono-object-v1" || le64 size || chunk digests...), so content is hashed once
 *               (per chunk) and equal chunks dedupe across files and sessions;
 *   - sessions: one record per `nono run` (and per restore), created durably before the agent starts;
 *   - nodes and paths: the pre-image of everything a session changed (see "Change records");
 *   - events:   the audit trail of a session, with a hash chain;
 *   - journal:  restore plans and their progress.
 *
 * Conventions: every function returns 0 (or a documented non-negative value) on success and a negative errno
 * on failure; on failure nono_store_errmsg() returns a thread-local message that names the problem and the
 * fix ("store at X was written by a newer nono (schema 3, this nono reads 1): upgrade nono"). Strings and
 * arrays returned to the caller are owned by the caller and freed with the matching *_free() function.
 *
 * Durability: every mutating call is handed to the store's single writer thread, which commits queued work of
 * all callers in one LMDB transaction (group commit). A call returns after its work is durable on disk
 * unless it takes NONO_ASYNC, in which case it returns once queued and nono_store_sync() waits for it.
 * Several processes may open the same store at once (LMDB serialises their writers).
 *
 * Security: SHA-256 is the only thing that decides two contents are equal; xxHash is used for in-memory
 * tables only (the agent is an adversary that can craft xxHash collisions).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define NONO_STORE_SCHEMA_VERSION 1
#define NONO_CHUNK_SIZE           (64u * 1024u)
#define NONO_SESSION_ID_LEN       13 /* characters, without the NUL */

typedef struct nono_store nono_store;

typedef struct nono_digest {
        uint8_t b[32];
} nono_digest;

/* Flag for mutating calls: return once queued; nono_store_sync() makes it durable. */
#define NONO_ASYNC 0x1u

/* ---- environment ---------------------------------------------------------------------------------- */

#define NONO_STORE_RDONLY 0x1u /* open for reading only; no writer thread */

/* The nono home: $NONO_HOME, else $XDG_DATA_HOME/nono, else $HOME/.local/share/nono. */
int nono_store_home(char *buf, size_t len);

/* Opens (creating with 0700 dirs / 0600 files when missing) the store under home (NULL: nono_store_home()).
 * Refuses a store with an unknown or newer schema, a corrupt file, wrong ownership or permissions. */
int nono_store_open(const char *home, unsigned flags, nono_store **out);

/* The process-wide malloc tuning the first writable open applies (writer.c, "Memory"). mallopt consolidates
 * the whole heap, writing to every free chunk: a process that forks after its heap grew and opens the store
 * afterwards (nono run) calls this before the fork, or each of those pages is copied on write. Idempotent. */
void nono_store_tune_process(void);

void nono_store_close(nono_store *s);

/* Waits until everything this process queued so far is durable (committed only, while deferred). */
int nono_store_sync(nono_store *s);
/* The first failure of NONO_ASYNC work that has run so far (0: none), taken (a later nono_store_sync() does
 * not report it again); its message through nono_store_errmsg(). Neither waits nor syncs. */
int nono_store_async_result(nono_store *s);
/* Gets content hashing ready (libcrypto, loaded on first use, and its SHA-256): about 5 ms of CPU that the
 * first pre-image of a --rollback session would otherwise wait for. For a thread with nothing else to do. */
void nono_store_warm_content_hash(nono_store *st);
/* On: until it is turned off, calls that would wait for durability wait for their commit only (readable,
 * kept across a crash of this process, not yet across a power cut); each commit then costs one fdatasync
 * instead of two. Off, then nono_store_sync(): everything is durable. For a sequence of sync calls of which
 * only the outcome of the last must be durable (see writer.c). Addition by launcher/ (nono run). */
void nono_store_defer_sync(nono_store *s, bool on);

/* An exclusive advisory lock named name (a file <store>/<name>.lock, flock), for work that two nono
 * processes must not do at once on one store (restore, cleanup). Never waits: -EBUSY when another process
 * holds it, with its pid in *holder (0 if unknown). The kernel drops the lock when the holder exits or is
 * killed, so a crash never leaves it stuck. Release with nono_store_unlock(*fd). */
int nono_store_lock(nono_store *s, const char *name, int *fd, int *holder);
void nono_store_unlock(int fd);
/* " (pid N)" for a lock holder's pid, "" when it is not known yet (static buffer: for one message). */
const char *nono_pid_note(int pid);

/* Garbage collection frees unreferenced content only when it was last put more than this many seconds ago
 * (default 3600), so a put whose referencing node_put has not committed yet is never freed (see gc.c).
 * Tests set 0. Addition by store/. */
void nono_store_set_gc_grace(nono_store *s, int64_t seconds);

/* The start time of pid (field 22 of /proc/PID/stat), for nono_session.pid_start. Addition by store/. */
int nono_pid_start_time(pid_t pid, uint64_t *out);

/* Message for the last failure of this thread ("" when none). */
const char *nono_store_errmsg(void);

void nono_digest_hex(const nono_digest *d, char out[65]);
int nono_digest_parse(const char *hex, nono_digest *out);

/* ---- chunks and objects --------------------------------------------------------------------------- */

/* A chunk is at most NONO_CHUNK_SIZE bytes. */
int nono_chunk_put(nono_store *s, const void *buf, size_t len, nono_digest *out, unsigned flags);
/* Copies the chunk into buf (cap >= NONO_CHUNK_SIZE is always enough); *len gets its size. */
int nono_chunk_get(nono_store *s, const nono_digest *d, void *buf, size_t cap, size_t *len);

int nono_object_put_buf(nono_store *s, const void *buf, size_t len, nono_digest *out, unsigned flags);
/* Streams fd from offset 0 to EOF (pread, so the fd offset is untouched). */
int nono_object_put_fd(nono_store *s, int fd, nono_digest *out, uint64_t *size_out, unsigned flags);
int nono_object_get_buf(nono_store *s, const nono_digest *d, void **buf, size_t *len); /* free() buf */
int nono_object_get_fd(nono_store *s, const nono_digest *d, int fd); /* writes from fd's offset */
int nono_object_size(nono_store *s, const nono_digest *d, uint64_t *size);
int nono_object_has(nono_store *s, const nono_digest *d);    /* 1 present, 0 absent, <0 error */
int nono_object_verify(nono_store *s, const nono_digest *d); /* 0, -ENOENT missing, -EBADMSG mismatch */
/* The id nono_object_put_* would give the content of fd (read from offset 0; size: its length) or of buf,
 * without storing it. Addition for restore and the past view, which compare live files with the store. */
int nono_object_id_fd(int fd, nono_digest *out, uint64_t *size);
int nono_object_id_buf(const void *buf, size_t len, nono_digest *out);

/* ---- sessions ------------------------------------------------------------------------------------- */

enum nono_session_state {
        NONO_SESSION_RUNNING = 0,
        NONO_SESSION_FINISHED = 1,
        NONO_SESSION_CRASHED = 2,  /* derived on read: RUNNING whose pid is gone (see nono_session_get) */
        NONO_SESSION_RESTORED = 3, /* its changes were undone by a restore session */
};

enum nono_session_kind {
        NONO_SESSION_RUN = 0,
        NONO_SESSION_RESTORE = 1, /* a restore, itself undoable; `parent` names the restored session */
};

struct nono_session {
        char id[NONO_SESSION_ID_LEN + 1];
        uint32_t kind;  /* enum nono_session_kind */
        uint32_t state; /* enum nono_session_state */
        char **argv;    /* NULL-terminated */
        char *cwd;
        char *policy_json;        /* the resolved policy, as `nono run --dry-run --json` prints it */
        char **roots;             /* NULL-terminated absolute paths of the granted roots; index = root id */
        char *parent;             /* restore sessions: the session restored; else NULL */
        bool rollback;            /* pre-images were kept */
        int64_t start_ns, end_ns; /* CLOCK_REALTIME; end 0 while running */
        int32_t pid;              /* the nono process that owns the session */
        uint64_t pid_start;       /* its start time (from /proc/PID/stat) so pid reuse is not mistaken */
        int32_t exit_status;      /* as nono's exit status: code, or 128+signal */
        uint64_t preimage_bytes;  /* bytes of content captured as pre-images */
        uint8_t seal[64];       /* Ed25519 signature of the audit head (audit issue); all zero: not sealed */
        uint8_t seal_pub[32];   /* public key that made seal */
        uint64_t sealed_events; /* event count covered by the seal */
};

/* Creates the session durably; fills s->id (unique and sorting by start time across processes).
 * pid 0 means this process; pid_start 0 is filled from /proc; start_ns 0 means now. */
int nono_session_create(nono_store *st, struct nono_session *s);
/* The same in two steps: _begin returns once s->id is assigned (the record is in the writer's transaction,
 * not yet durable; work queued from now on commits after it), _end once it is durable (or failed), and
 * frees p. s must stay valid until _end. After a failed _begin, *p (if set) still goes to _end. `nono run`
 * starts serving the roots between the two, while the record's flush is under way. */
struct nono_session_pending;
int nono_session_create_begin(nono_store *st, struct nono_session *s, struct nono_session_pending **p);
int nono_session_create_end(nono_store *st, struct nono_session_pending *p);
/* Rewrites the mutable fields: state, end_ns, exit_status, preimage_bytes, seal*, sealed_events. */
int nono_session_update(nono_store *st, const struct nono_session *s);
/* Accepts a full id or a unique prefix; -ENOENT none, -EEXIST ambiguous. Reports a RUNNING session whose
 * owner process is gone as CRASHED. */
int nono_session_get(nono_store *st, const char *id, struct nono_session *out);
/* All sessions, oldest first. */
int nono_session_list(nono_store *st, struct nono_session **out, size_t *n);
/* The rollback sessions only, oldest first: read through an index, so the cost follows their number, not
 * that of all sessions (each record holds its policy: reading 500 of them cost 20 ms). */
int nono_session_list_rollback(nono_store *st, struct nono_session **out, size_t *n);
/* Deletes a session and everything it owns (nodes, paths, events, journal), dropping its references. */
int nono_session_delete(nono_store *st, const char *id);
void nono_session_clear(struct nono_session *s);
void nono_session_list_free(struct nono_session *v, size_t n);

/* ---- change records (pre- and post-images) -------------------------------------------------------- */
/*
 * A session's changes are described by two tables:
 *
 *   node  (session, node id) -> the state of one filesystem object at session start: type, mode, owner,
 * times, xattrs, symlink target, directory entry names, and its content, either complete (an object) or as
 *         the chunks captured so far (chunk index -> digest) plus the original size; chunks not captured are
 *         unchanged in the live file. Node ids are chosen by fs/ (unique within a session; e.g. a counter).
 *         A file with several names is one node with several paths.
 *   path  (session, root id, relative path) -> which node was at that path at session start (or ABSENT),
 *         written before the first change to that name; and at session end, the post-image: what is there
 *         now (type, mode, size, content digest when a regular file, symlink target) and which node.
 *
 * Paths are relative to their root, without a leading slash; "" is the root itself.
 */

enum nono_ftype {
        NONO_FT_ABSENT = 0,
        NONO_FT_FILE = 1,
        NONO_FT_DIR = 2,
        NONO_FT_SYMLINK = 3,
        NONO_FT_FIFO = 4,
        NONO_FT_SOCK = 5,
};

/* The nono_ftype of a stat(2) mode; NONO_FT_ABSENT for devices (which nono never records). */
static inline uint32_t nono_ftype_from_mode(mode_t m)
{
        switch (m & S_IFMT) {
        case S_IFREG:
                return NONO_FT_FILE;
        case S_IFDIR:
                return NONO_FT_DIR;
        case S_IFLNK:
                return NONO_FT_SYMLINK;
        case S_IFIFO:
                return NONO_FT_FIFO;
        case S_IFSOCK:
                return NONO_FT_SOCK;
        default:
                return NONO_FT_ABSENT;
        }
}

struct nono_xattr {
        char *name;
        void *value;
        size_t len;
};

struct nono_chunkref {
        uint64_t index; /* covers bytes [index*NONO_CHUNK_SIZE, (index+1)*NONO_CHUNK_SIZE) */
        nono_digest digest;
        uint32_t len; /* bytes in this chunk (the last chunk may be short) */
};

struct nono_node {
        uint64_t id;
        uint32_t type; /* enum nono_ftype (never ABSENT) */
        uint32_t mode; /* permission bits incl. setuid/setgid/sticky */
        uint32_t uid, gid;
        int64_t atime_ns, mtime_ns;
        uint64_t nlink; /* at session start */
        uint64_t size;  /* original size */
        char *link_target;
        struct nono_xattr *xattrs;
        size_t n_xattrs;
        bool complete; /* content is `object`; else `chunks` */
        nono_digest object;
        struct nono_chunkref *chunks; /* sorted by index, unique */
        size_t n_chunks;
        char **entries; /* directories: names at session start, NULL-terminated */
};

struct nono_path_rec {
        uint32_t root;
        char *path;
        /* pre: the node at this path at session start; 0 means absent */
        uint64_t pre_node;
        /* post, filled at session end */
        bool has_post;
        uint32_t post_type;
        uint32_t post_mode;
        uint64_t post_size;
        uint64_t post_node; /* 0: not a node of this session (or absent) */
        bool post_has_digest;
        nono_digest post_digest; /* regular files: content */
        char *post_link_target;
        int64_t post_mtime_ns;
};

/* Writes a node pre-image (first time) - must be durable before fs/ lets the change happen. Its content (the
 * object, or each chunk) must already be in the store (-ENOENT otherwise); -EEXIST if the node exists. */
int nono_node_put(nono_store *st, const char *session, const struct nono_node *n, unsigned flags);
/* Adds captured chunks to an existing node (chunks already captured are kept as they are). */
int nono_node_add_chunks(nono_store *st, const char *session, uint64_t node, const struct nono_chunkref *c,
                         size_t n, unsigned flags);
/* Marks a node complete with its whole content (after a background ingest of a stashed file). The captured
 * chunks are dropped (they are the object's own chunks, by the aligned chunking); node_get then returns
 * n_chunks 0. */
int nono_node_set_object(nono_store *st, const char *session, uint64_t node, const nono_digest *object,
                         unsigned flags);
int nono_node_get(nono_store *st, const char *session, uint64_t node, struct nono_node *out);
void nono_node_clear(struct nono_node *n);

/* The pre part of a path record: writes only if (root, path) has none yet (first change wins). */
int nono_path_put_pre(nono_store *st, const char *session, uint32_t root, const char *path, uint64_t pre_node,
                      unsigned flags);
/* The post part, at session end. */
int nono_path_put_post(nono_store *st, const char *session, const struct nono_path_rec *r, unsigned flags);
int nono_path_get(nono_store *st, const char *session, uint32_t root, const char *path,
                  struct nono_path_rec *out);
/* Every path record of the session, sorted by (root, path). */
int nono_path_list(nono_store *st, const char *session, struct nono_path_rec **out, size_t *n);
void nono_path_rec_clear(struct nono_path_rec *r);
void nono_path_list_free(struct nono_path_rec *v, size_t n);

/* ---- audit events --------------------------------------------------------------------------------- */

enum nono_event_type {
        NONO_EV_FILE = 1,
        NONO_EV_EXEC = 2,
        NONO_EV_NET = 3,
        NONO_EV_SESSION = 4, /* start, end */
};

/* Operations (nono_event.op). File operations match fs/ handlers. */
enum nono_op {
        NONO_OP_NONE = 0,
        /* file */
        NONO_OP_OPEN,
        NONO_OP_CREATE,
        NONO_OP_UNLINK,
        NONO_OP_RMDIR,
        NONO_OP_MKDIR,
        NONO_OP_MKNOD,
        NONO_OP_SYMLINK,
        NONO_OP_LINK,
        NONO_OP_RENAME,
        NONO_OP_CHMOD,
        NONO_OP_CHOWN,
        NONO_OP_UTIMENS,
        NONO_OP_TRUNCATE,
        NONO_OP_SETXATTR,
        NONO_OP_REMOVEXATTR,
        NONO_OP_FALLOCATE,
        NONO_OP_COPY_RANGE,
        NONO_OP_READDIR,
        NONO_OP_READLINK,
        NONO_OP_LOOKUP,
        NONO_OP_ACCESS,
        NONO_OP_GETXATTR,
        /* exec */
        NONO_OP_EXEC = 64,
        /* net */
        NONO_OP_CONNECT = 96,
        NONO_OP_SENDTO,
        NONO_OP_PROXY,
        NONO_OP_BIND,
        /* session */
        NONO_OP_START = 120,
        NONO_OP_END,
        /* seccomp / landlock denials that are not one of the above */
        NONO_OP_SYSCALL = 126,
        NONO_OP_OTHER = 127,
};

#define NONO_EVF_VIOLATION 0x1u /* a denied operation: policy said no */
/* file open events: bytes_read/bytes_written were not counted (0): the kernel read and wrote the file itself
 * (FUSE passthrough, fs/passthrough.c) */
#define NONO_EVF_UNCOUNTED 0x2u
/* with NONO_EVF_UNCOUNTED: the file's size or mtime changed while it was open (it was written) */
#define NONO_EVF_DATA_CHANGED 0x4u

struct nono_event {
        uint64_t seq;    /* assigned by the store on append: 1, 2, ... per session */
        int64_t time_ns; /* CLOCK_REALTIME */
        uint32_t pid, ppid, uid;
        uint16_t type;   /* enum nono_event_type */
        uint16_t op;     /* enum nono_op */
        int32_t result;  /* 0 or a positive errno */
        uint32_t flags;  /* NONO_EVF_* */
        uint32_t oflags; /* open(2) flags for opens */
        uint32_t root;   /* root id for file events */
        uint64_t bytes_read, bytes_written;
        const char *path;   /* file events: relative to root; exec: the executable */
        const char *path2;  /* rename/link target; NULL if none */
        const char *detail; /* exec: argv as a JSON array; net: "host:port" and decision; NULL if none */
        /* Hash chain: chain = SHA-256(previous chain || canonical bytes of this event), previous chain of
         * seq 1 = SHA-256("nono-audit-v1" || session id). Computed by the store on append. */
        nono_digest chain;
};

/* Appends n events (seq and chain are assigned; strings copied; paths interned). */
int nono_events_append(nono_store *st, const char *session, struct nono_event *ev, size_t n, unsigned flags);

/* Iterates in sequence order from seq `from` (1 = first). Callback returns 0 to continue, >0 to stop,
 * <0 to abort with that error. Strings in ev are valid during the callback only. */
typedef int (*nono_event_cb)(const struct nono_event *ev, void *userdata);
int nono_events_iterate(nono_store *st, const char *session, uint64_t from, nono_event_cb cb, void *userdata);

/* Counts by type (index = enum nono_event_type, [0] = total) and violations. */
struct nono_event_counts {
        uint64_t by_type[5];
        uint64_t violations;
        uint64_t reads, writes; /* file opens that read / wrote bytes */
};
int nono_events_count(nono_store *st, const char *session, struct nono_event_counts *out);

/* The end of a session in one transaction, after everything queued before it: fill() makes the end event
 * from the session's counts as they stand before it (its detail malloc'd; the store frees it), which is
 * appended as the session's last event (seq and chain assigned as by nono_events_append); then the record is
 * stored with fin's state, end_ns, exit_status and preimage_bytes and the seal that sign() fills in (seal,
 * seal_pub, sealed_events) over that record and the event with its seq and chain. Both run on the store's
 * writer thread inside the transaction (perhaps more than once, should it be retried); when either fails,
 * nothing is written and its error is the result. So the events queued before (NONO_ASYNC) need no commit of
 * their own before the counts and the seal. */
struct nono_end_ops {
        int (*fill)(const struct nono_event_counts *before, struct nono_event *end, void *arg);
        int (*sign)(struct nono_session *rec, const struct nono_event *end, void *arg);
        void *arg;
};
int nono_events_end_sealed(nono_store *st, const struct nono_session *fin, const struct nono_end_ops *ops);

/* Canonical bytes of an event (what the chain hashes): fixed little-endian layout of every field but chain,
 * strings as le32 length + bytes. Returns the length; writes at most cap bytes.
 * Exactly: le64 seq, le64 time_ns, le32 pid, le32 ppid, le32 uid, le16 type, le16 op, le32 result,
 * le32 flags, le32 oflags, le32 root, le64 bytes_read, le64 bytes_written (64 bytes), then path, path2,
 * detail, each as le32 length + bytes, a NULL string as le32 0xffffffff (so NULL and "" differ). */
size_t nono_event_canonical(const struct nono_event *ev, uint8_t *buf, size_t cap);
/* Recomputes the chain value of ev given the previous one. */
void nono_event_chain(const nono_digest *prev, const struct nono_event *ev, nono_digest *out);
void nono_event_chain_seed(const char *session, nono_digest *out);

/* Raw access for tools and tamper tests: overwrite (as given, chain included) or delete one stored event,
 * bypassing the chain computation. Never used by nono itself on a live session.
 * Storage: each event keeps only the first 8 bytes of its chain; the session's full head chain is kept
 * beside the events. nono_events_iterate() returns the chain recomputed from the content (never the stored
 * one), so a raw_put of altered content shows up as a different recomputed chain from that event on, and
 * nono_events_verify() reports the first event whose stored prefix or sequence number does not fit.
 * raw_put inserts the event if seq is not stored; counts (nono_events_count) are not adjusted. */
int nono_events_raw_put(nono_store *st, const char *session, const struct nono_event *ev);
int nono_events_raw_delete(nono_store *st, const char *session, uint64_t seq);

/* Recomputes the chain of every event and compares it with the stored chain prefixes, the sequence
 * numbers (1, 2, ... without gaps) and the stored head. 0 when all fit; -EBADMSG with *bad_seq = the first
 * event that does not; *head gets the recomputed head (what a seal signs). Either pointer may be NULL.
 * Addition by store/. */
int nono_events_verify(nono_store *st, const char *session, uint64_t *bad_seq, nono_digest *head);

/* ---- restore journal ------------------------------------------------------------------------------ */

/* One opaque record per restore, keyed by the restored session id: the plan and its progress. */
int nono_journal_put(nono_store *st, const char *session, const void *buf, size_t len);
int nono_journal_get(nono_store *st, const char *session, void **buf, size_t *len); /* -ENOENT if none */
int nono_journal_delete(nono_store *st, const char *session);
/* A restore's progress (how many steps are done), kept beside its journal record so that recording
 * progress does not rewrite the whole plan; durable on return. nono_journal_put() and
 * nono_journal_delete() drop it. _get: -ENOENT if none. Addition by the rollback part. */
int nono_journal_progress_put(nono_store *st, const char *session, uint64_t done);
int nono_journal_progress_get(nono_store *st, const char *session, uint64_t *done);

/* ---- space ---------------------------------------------------------------------------------------- */

struct nono_gc_stats {
        uint64_t chunks_freed, bytes_freed, objects_freed;
};
/* Frees chunks and objects that no session references. */
int nono_store_gc(nono_store *st, struct nono_gc_stats *out);
/* The same without the grace period: also what was put moments ago and is referenced by nothing, such as
 * the chunks of a pre-image refused for lack of space. Only when no put can be waiting for its reference
 * (no session of this store running): a put that races it has its reference refused (-ENOENT). */
int nono_store_gc_now(nono_store *st, struct nono_gc_stats *out);

struct nono_store_stats {
        uint64_t chunks, chunk_bytes, objects, sessions, map_size, used_bytes;
};
int nono_store_stats(nono_store *st, struct nono_store_stats *out);
