/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs.h - the recording copy-on-write FUSE filesystem (libfuse3 low-level API), the whole contract of fs/.
 *
 * A nono_fs serves one real directory (or one file) from an fd opened by the launcher before the sandbox
 * existed. Every operation that reads or changes the tree becomes an audit event in the store (batched);
 * with preimages on, the pre-image of every object is durable in the store before its first change in the
 * session (write-ahead). All access to the real tree is fd-relative and never follows a symlink out of the
 * root. Policy is handed in (read-only root, deny patterns); fs/ decides nothing else.
 *
 * The same module serves the read-only view of a past session (nono rollback mount).
 *
 * What fs/ writes into the store (the exact contract, and how to rebuild a file's start content, is the
 * comment at the top of fs/cow.c):
 *   - events: one NONO_EV_FILE event per changing operation, per opened file at release (bytes read and
 *     written), per directory listing, and per denied operation (NONO_EVF_VIOLATION); batched.
 *   - with preimages: a node per object changed (node id root_id << 40 | 1, 2, ...), written with its content
 *     (<= 256 KiB: complete) or 64 KiB chunks captured before they change; a path record (root_id, path at
 *     session start) -> node or 0 before the first change to that name; interim post parts on rename
 *     targets; stash entries "..nono-stash.<session>.<root_id>/<node>" beside (or inside) the root for
 *     partly captured files that lose or change a name, turned into complete nodes in the background; and
 *     at nono_fs_stop the post part of every path record.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

#define NONO_DENY_READ  0x1u
#define NONO_DENY_WRITE 0x2u

/* A deny rule inside a root: a glob on the path relative to the root ("**" crosses '/', "*" and "?" do not;
 * a pattern without '/' matches the last component at any depth, like .gitignore). */
struct nono_fs_rule {
        const char *pattern;
        unsigned deny; /* NONO_DENY_* */
};

struct nono_fs_config {
        int root_fd;           /* O_PATH fd of the real root (a directory or a file); nono_fs dup()s it */
        const char *root_path; /* for messages only; never resolved */
        uint32_t root_id;      /* index of this root in the session's roots */
        bool read_only;        /* --read: every change fails with EROFS and is a violation */
        bool preimages;        /* --rollback: write-ahead pre-images */
        bool record;           /* audit events on (off with --no-audit) */
        const struct nono_fs_rule *rules;
        size_t n_rules;
        nono_store *store; /* may be NULL when record and preimages are both off */
        const char *session;
        unsigned threads;    /* max worker threads; 0 = default */
        bool no_passthrough; /* count every byte read and written (no FUSE passthrough, passthrough.c) */
};

typedef struct nono_fs nono_fs;

int nono_fs_new(const struct nono_fs_config *cfg, nono_fs **out);

/* Either mounts at mountpoint itself (fusermount3 when unprivileged), or serves an fd of /dev/fuse that was
 * already mounted by someone else (the sandbox child mounts inside its namespace and passes the fd back). */
int nono_fs_mount(nono_fs *fs, const char *mountpoint);
/* The device of a FUSE mount fs/ serves at path (without a request to the server, so it can be asked
 * before the mount is served). 0 if unknown. */
dev_t nono_fs_mount_dev(const char *path);
/* Raises the kernel's readahead window of the FUSE mount with device dev to two of fs/'s largest reads
 * (about 2 MiB; the kernel starts a new mount at 128 KiB, so a cold sequential read costs one round trip
 * per 128 KiB). Needs root (sysfs): for anyone else it does nothing, and the mount works as before. */
void nono_fs_tune_readahead(dev_t dev);
int nono_fs_attach(nono_fs *fs, int fuse_fd);

/* The mount options a caller that mounts by itself must use (for attach): fills buf with the data string
 * ("fd=N,rootmode=...,user_id=...,group_id=...,default_permissions,allow_other,max_read=..."). user_id and
 * group_id are getuid()/getgid() of the caller; the sandbox child, which mounts inside its user namespace,
 * calls it itself (or substitutes its own ids). The fs type is "fuse.nono" with source "nono". */
int nono_fs_mount_options(nono_fs *fs, int fuse_fd, bool root_is_file, char *buf, size_t len);
/* The same options before the nono_fs exists (the sandbox mounts while the session record is still being
 * written; the nono_fs that records into it is made afterwards). root_is_file as the root fd's type.
 * Addition for the launcher's start path. */
int nono_fs_mount_options_early(int fuse_fd, bool root_is_file, char *buf, size_t len);

/* Starts the worker threads; returns at once. */
int nono_fs_start(nono_fs *fs);
/* An fd that becomes readable when the filesystem stops being served (unmounted, e.g. by fusermount3 -u, or
 * the namespace holding an attached mount is gone); for poll() next to a signalfd. */
int nono_fs_done_fd(nono_fs *fs);
/* Stops serving (the mount goes away when its last user is gone), flushes events, and with preimages writes
 * the post-images of every changed path. Safe to call on SIGTERM paths. After it returns fs/ never uses the
 * store again (late events are dropped, late changes fail with EIO), so the caller may close the store
 * before nono_fs_free(). -EBUSY: the mount was still in use after 5 s (its loop is left running, and
 * nono_fs_free() then leaves the nono_fs allocated for it). */
int nono_fs_stop(nono_fs *fs);
/* The same, but the last events are only queued to the store (NONO_ASYNC): the caller's next sync call
 * commits them with whatever else is queued (nono run: the end event and the seal, one commit), and
 * nono_store_async_result() or nono_store_sync() reports a failure to store them. */
int nono_fs_stop_queued(nono_fs *fs);
void nono_fs_free(nono_fs *fs);

/* Counters for the exit summary. */
struct nono_fs_stats {
        uint64_t files_read, files_changed, violations, events, preimage_bytes;
        uint64_t passthrough_opens; /* opens whose reads and writes the kernel passed to the file itself */
};
void nono_fs_get_stats(nono_fs *fs, struct nono_fs_stats *out);

/* ---- read-only past-session view ------------------------------------------------------------------ */

enum nono_fs_when {
        NONO_FS_BEFORE = 0, /* as it was at the session start (default) */
        NONO_FS_AFTER = 1,  /* as it was at the session end */
};

/* Serves root `root_id` of `session` read-only at mountpoint, as it was before/after the session, and blocks
 * until unmounted (fusermount3 -u) or a SIGINT/SIGTERM arrives. */
int nono_fs_mount_past(nono_store *st, const char *session, uint32_t root_id, enum nono_fs_when when,
                       const char *mountpoint);
