/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs-internal.h - shared between the modules of fs/ only (never included outside fs/).
 *
 * The inode table follows libfuse's passthrough_hp: every object the kernel knows is an O_PATH fd keyed by
 * (dev, ino), and the FUSE node id is the address of its struct fsino. On top of that each inode keeps one
 * "binding" (parent inode + name) so fs/ can name it for audit events and deny rules without ever resolving a
 * path string: a path is only ever built, never walked. A binding holds a reference on its parent, so the
 * chain up to the root is always walkable.
 */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"

/* Names that fs/ reserves for itself (the pre-image stash); never visible through any nono_fs. */
#define NONO_STASH_PREFIX "..nono-stash."
/*
 * FRESHNESS: names and attributes are cached by the kernel for fs->timeout (a day: fs/ is the only writer of
 * the tree through the mount, and tells the kernel itself when it changes something). Changes made behind
 * the mount (the user's editor, a build outside the sandbox) are not seen by the kernel then, except where
 * fs/ checks at open (ops-file.c "CACHE"). Two caches would hide them for the whole day: a name looked up
 * while it did not exist (a negative entry) and a directory's listing (valid while the directory's cached
 * mtime is unchanged). Both are kept for NONO_FS_FRESH seconds only: a negative entry is looked up again, and
 * a directory's attributes are fetched again at the first path walk or stat after that, which drops a cached
 * listing whose directory changed. So a file created behind the mount shows by name and in listings within
 * a second. A name removed or replaced behind the mount stays cached (positive) as it was: an open of it
 * checks (inode.c "REPLACED"), a stat does not, and a file's attributes stay as fs/ last served them until
 * its next open (ops-file.c "CACHE").
 */
#define NONO_FS_FRESH 1.0
/* directory listings kept open between two READDIRs (ops-file.c "LISTINGS"): each holds an fd */
#define NONO_FS_DIRSTREAMS 16

struct fsino {
        int fd; /* O_PATH|O_NOFOLLOW; -1 for a non-directory not yet used beyond lookup/getattr (inode.c) */
        dev_t dev;
        ino_t ino;
        mode_t type;      /* S_IFMT bits */
        uint64_t nlookup; /* kernel references (protected by fs->lock) */
        uint64_t refs;    /* bindings of children pointing here (protected by fs->lock) */
        struct fsino *parent;
        char *name;    /* binding; NULL for the root */
        bool gone;     /* its binding name was unlinked */
        unsigned deny; /* NONO_DENY_* seen on any name this inode was reached by (sticky) */
        uint64_t used; /* fs->ev_clock when last named by a request (relaxed atomics; evict.c) */
        /* (mtime, size) of the file for which the kernel's page cache of it is known current, hashed;
         * 0 = never opened (ops-file.c "CACHE") */
        _Atomic uint64_t data_stamp;
        /* open handles of this file (passthrough.c; the kernel takes one mode at a time) and the backing
         * file registered for the passthrough ones (0: none); under fs->lock */
        uint32_t pt_opens, cached_opens;
        int32_t backing_id;
        int wd;                        /* its inotify watch (directories; watch.c), 0: none; under fs->lock */
        _Atomic uint64_t served_ctime; /* the ctime in the attributes fs/ last gave the kernel (watch.c) */
        struct fsino *hnext;
};

/* An open file or directory (fuse_file_info.fh). */
struct fshandle {
        int fd;
        struct fsino *ino;
        uint32_t oflags;
        uint32_t pid, uid;
        _Atomic uint64_t bytes_read, bytes_written;
        bool pt;           /* passthrough: the kernel reads and writes the file itself (bytes not counted) */
        uint64_t pt_stamp; /* passthrough: the file's (mtime, size) at open, to tell whether it changed */
        char *path;        /* recording: the name it was opened by (its event is written at release, when a
                            * rename or unlink may have changed what fsino_path says) */
        struct fshandle *prev, *next; /* fs->handles, under fs->lock */
};

struct nono_rec;
struct nono_cow;

struct nono_fs {
        struct nono_fs_config cfg;
        struct nono_fs_rule *rules; /* deep copy */
        char *session;
        char *root_path;
        int root_fd;
        bool root_is_file;
        struct fsino root;

        pthread_mutex_t lock; /* the inode table and every binding */
        struct fsino **table;
        size_t table_size, table_count;
        size_t fd_count; /* inodes holding an fd (the fd budget counts these, evict.c) */

        struct fuse_session *se;
        _Atomic bool pt_on; /* passthrough.c: opens may be passed through */
        /* fs.c op_init, loop.c: libfuse's connection, whose FUSE_CAP_SPLICE_READ loop.c turns on and off
         * by the requests it sees (splice_adapt: only where INIT allowed receiving by splice) */
        struct fuse_conn_info *conn;
        bool splice_adapt;
        _Atomic uint64_t pt_init_unique; /* the INIT request whose reply gets the passthrough bit */
        bool started, stopped;
        int done_fd; /* eventfd: readable once the loop has ended */
        /* loop.c, under loop_lock: workers, those reading (or woken to), those waiting on loop_cv for a
         * wake-up, wake-ups not yet taken, the cap, whether the reader started, whether the session
         * ended, and every worker started (joined by loop_join) */
        pthread_mutex_t loop_lock;
        pthread_cond_t loop_cv;
        unsigned loop_threads, loop_reading, loop_waiting, loop_wakes, loop_cap;
        bool loop_has_reader, loop_ending;
        pthread_t *loop_tids;
        size_t loop_n_tids, loop_tids_cap;
        char *mountpoint;
        bool is_root_daemon; /* euid 0 in the initial user namespace: chown created objects to the caller */
        double timeout;
        bool writeback;  /* FUSE writeback cache (see fs.c) */
        bool no_opendir; /* the kernel opens directories itself (ops-file.c "LISTINGS") */

        struct fshandle *handles; /* every open handle, so none is lost (or leaked) at stop */
        /* directory listings read part way, kept for the next READDIR (ops-file.c "LISTINGS"); under lock */
        struct dirstream {
                struct fsino *ino; /* holds one reference; NULL: free slot */
                void *dir;         /* DIR * */
                off_t off;         /* the offset of pending, or of the next entry readdir() returns */
                struct dirent *pending;
                uint64_t used;
        } dirs[NONO_FS_DIRSTREAMS];
        uint64_t dirs_clock;

        /* the fd budget (evict.c); all but ev_clock under lock */
        pthread_t ev_thread;
        pthread_cond_t ev_cond; /* wakes the thread */
        pthread_cond_t ev_room; /* wakes lookups throttled above the ceiling */
        bool ev_running, ev_stop, ev_pending;
        bool ev_thread_on;                           /* ev_thread was started (at the first pass) */
        size_t ev_high, ev_low, ev_ceiling, ev_hard; /* in inodes */
        size_t ev_next;                              /* the table_count that may start the next pass */
        unsigned ev_waiters;
        fuse_ino_t ev_cur; /* the directory being notified now (0: none) */
        _Atomic uint64_t ev_clock;

        /* changes behind the mount (watch.c) */
        int watch_fd;               /* inotify */
        bool watch_on;              /* served by the process's watch thread */
        _Atomic size_t watch_count; /* directories watched (watch.c) */
        size_t watch_budget;        /* at most this many */
        pthread_mutex_t watch_lock; /* own */
        struct own_note {
                uint64_t key, t;
        } * own;
        struct wentry {
                int wd;
                struct fsino *i;
        } * wmap; /* under lock */
        size_t wmap_size, wmap_count;

        struct nono_rec *rec;
        struct nono_cow *cow;

        _Atomic uint64_t files_read, files_changed, violations, events, preimage_bytes, passthrough_opens;
};

/* ---- inode table (inode.c) ----------------------------------------------------------------------- */

/* The inode of node id n, with its fd (opened by its binding when it had none; on failure i->fd stays -1
 * and calls on it fail with EBADF). */
struct fsino *fsino_get(struct nono_fs *fs, fuse_ino_t n);
/* The inode of node id n as it is (its fd may be -1): for getattr, forget, and directories. */
struct fsino *fsino_peek(struct nono_fs *fs, fuse_ino_t n);
/* Gives i an fd when it has none (see inode.c). Returns 0 or a negative errno. */
int fsino_materialize(struct nono_fs *fs, struct fsino *i);
/* Before fs/ removes or renames a name: gives the inode (dev, ino) an fd if it is in the table without one.
 */
int fsino_materialize_at(struct nono_fs *fs, dev_t dev, ino_t ino);
/* At an open: -ESTALE when i's name was taken by another file behind the mount (inode.c "REPLACED"). */
int fsino_check_binding(struct nono_fs *fs, struct fsino *i);
/* lstat of i, through its binding when it has no fd. Returns 0 or a negative errno. */
int fsino_stat(struct nono_fs *fs, struct fsino *i, struct stat *st);
void fsino_table_init(struct nono_fs *fs);
void fsino_table_free(struct nono_fs *fs);
/* Looks up or inserts (dev, ino) for fd (consumed; -1 for a non-directory inserted without one), binding it
 * to parent/name when it has no live binding; takes one kernel reference. Returns NULL with errno set
 * (EAGAIN: fd was -1 for a directory not in the table, which needs an fd: open one and call again). */
struct fsino *fsino_find_or_add(struct nono_fs *fs, int fd, const struct stat *st, struct fsino *parent,
                                const char *name, unsigned deny);
struct fsino *fsino_find(struct nono_fs *fs, dev_t dev, ino_t ino);        /* no reference taken */
struct fsino *fsino_find_locked(struct nono_fs *fs, dev_t dev, ino_t ino); /* fs->lock held */
void fsino_forget(struct nono_fs *fs, struct fsino *i, uint64_t n);
/* Rebinds i to parent/name (rename, link of an unbound inode). */
void fsino_rebind(struct nono_fs *fs, struct fsino *i, struct fsino *parent, const char *name);
void fsino_mark_gone(struct nono_fs *fs, dev_t dev, ino_t ino, struct fsino *parent, const char *name);
/* The path of i relative to the root ("" for the root); malloc()ed, NULL on ENOMEM. */
char *fsino_path(struct nono_fs *fs, struct fsino *i);
/* The current path (root-relative) of the inode (dev, ino) by its binding, or NULL (not in the table,
 * unlinked). */
char *fsino_path_of(struct nono_fs *fs, dev_t dev, ino_t ino);
/* The directory of the binding of inode (dev, ino), or NULL; no reference taken (it stays while the inode,
 * which the caller is operating on, is bound). */
struct fsino *fsino_parent_of(struct nono_fs *fs, dev_t dev, ino_t ino);
char *fsino_child_path(struct nono_fs *fs, struct fsino *dir, const char *name);

/* ---- fd budget (evict.c) ------------------------------------------------------------------------ */

/* Starts the thread that keeps the inode table under a share of RLIMIT_NOFILE (after the session exists). */
/* ---- changes behind the mount (watch.c) ---------------------------------------------------------- */

static inline uint64_t ctime_ns(const struct stat *st)
{
        return (uint64_t)st->st_ctim.tv_sec * 1000000000ull + (uint64_t)st->st_ctim.tv_nsec;
}

int watch_start(struct nono_fs *fs);
void watch_stop(struct nono_fs *fs);
void watch_add(struct nono_fs *fs, struct fsino *i);           /* a directory that just got its fd */
void watch_forget_locked(struct nono_fs *fs, struct fsino *i); /* before i's fd is closed */
void watch_own(struct nono_fs *fs, const struct fsino *dir, const char *name); /* before fs/ changes a name */

/* ---- the workers (loop.c) ------------------------------------------------------------------------- */

/* Starts the session's first worker; done_fd is written once the kernel ended the session. */
int loop_start(struct nono_fs *fs);
/* After done_fd: joins every worker. */
void loop_join(struct nono_fs *fs);
/* Called by a request's handler before it waits for what only another request can bring (another
 * process's unlock, FORGETs): makes sure a worker is left reading the session's requests. */
void loop_may_block(struct nono_fs *fs);

int evict_start(struct nono_fs *fs);
void evict_stop(struct nono_fs *fs);
/* Called with fs->lock held after an inode was added: wakes the thread above the high-water mark. */
void evict_note_locked(struct nono_fs *fs);
/* Called with fs->lock held after an inode was freed: wakes throttled lookups. */
void evict_note_release_locked(struct nono_fs *fs);
/* Before a lookup in dir adds an inode: waits (bounded) while the table is above the ceiling. */
void evict_throttle(struct nono_fs *fs, struct fsino *dir);
/* Stamps i as just used. */
void evict_touch(struct nono_fs *fs, struct fsino *i);

/* ---- handles (ops-file.c) ------------------------------------------------------------------------ */

/* Records and closes handles the kernel never released (the connection ended first). */
void handles_close_all(struct nono_fs *fs); /* and the parked directory listings */

/* ---- passthrough (passthrough.c) ------------------------------------------------------------------ */

/* After the session is mounted or attached: routes libfuse's device io through passthrough.c when fs/ may
 * use passthrough (root of the initial namespace, no writeback cache, not turned off). */
int pt_setup(struct nono_fs *fs);
/* At an open of file i (fd: the handle's fd; writes: the open may change data): whether this open is passed
 * through. Counts the open either way (pt_release), and makes the reply sent next on this thread carry the
 * backing file when true (pt_replied clears that). */
bool pt_choose(struct nono_fs *fs, struct fsino *i, int fd, bool writes);
void pt_replied(void);
void pt_release(struct nono_fs *fs, struct fsino *i, bool pt);

/* ---- small helpers (ops-util.c) ------------------------------------------------------------------ */

bool name_ok(const char *name);
int reopen(struct fsino *i, int flags);
int reopen_fd(int opath_fd, int flags); /* an O_PATH fd reopened (also a directory without x) */
/* True when close() on fd's filesystem never reports an error (local disk filesystems, tmpfs): then FUSE's
 * FLUSH, which only exists to report such errors, is not served. */
bool close_is_silent(int fd);
/* Per worker thread: a private fs struct with umask 0 (modes arrive already masked by the kernel). */
void thread_prepare(void);

/* ---- recording (rec.c) ---------------------------------------------------------------------------- */

int rec_new(struct nono_fs *fs);
void rec_free(struct nono_fs *fs);
int rec_flush(struct nono_fs *fs);
int rec_close(struct nono_fs *fs, bool queued);
/* Records one file event. result is 0 or a positive errno. */
void rec_event(struct nono_fs *fs, fuse_req_t req, uint16_t op, const char *path, const char *path2,
               int result, uint32_t flags, uint32_t oflags, uint64_t rd, uint64_t wr);
void rec_event_as(struct nono_fs *fs, uint32_t pid, uint32_t uid, uint16_t op, const char *path, int result,
                  uint32_t flags, uint32_t oflags, uint64_t rd, uint64_t wr);

/* ---- deny rules (rules.c) ------------------------------------------------------------------------- */

/* The NONO_DENY_* bits that apply to path (itself or an ancestor matches a rule). */
unsigned rules_match(const struct nono_fs_rule *r, size_t n, const char *path);
/* The bits of rules that could match something strictly below directory dirpath. */
unsigned rules_below(const struct nono_fs_rule *r, size_t n, const char *dirpath);
bool glob_match(const char *pattern, const char *path);

/* ---- environment switches (fs.c) ------------------------------------------------------------------ */

/* NONO_FS_* 0/1 switches: unset/empty -> dflt; any other value is named on stderr and means 0. */
bool fs_env_flag(const char *name, bool dflt);
