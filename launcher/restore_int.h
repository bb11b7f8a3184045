/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_int.h - the rollback engine's plan, shared by restore_plan.c (builds it without changing
 * anything), restore_journal.c (persists it and its progress) and restore_apply.c (executes it).
 *
 * A plan is a list of idempotent steps in three phases, so that re-running any suffix of it after a kill
 * converges to the same tree:
 *   1. detach (deepest path first): every object that is at a touched path now and is not already the
 *      right one is renamed into a private stash directory beneath its root (".nono-restore-ID"): nodes
 *      that will be reused under "n<node>", everything else (what the session created) under "x<item>";
 *   2. attach (shallowest first): each touched path gets its pre-image: the stashed or in-place live inode
 *      (so untouched children of a moved directory come back with it), content rebuilt from the store
 *      (whole objects, or captured chunks over the live inode) into a temporary next to the path and
 *      renamed over it, hard links re-made, then mode/owner/xattrs, then times (directories last, deepest
 *      first, since every change inside a directory moves its mtime);
 *   3. clean: the stash is deleted (its contents were recorded in the restore session first).
 * Progress is journaled at every phase boundary and every 2048 steps.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "launcher/restore.h"
#include "store/store.h"

#define RB_STASH_PREFIX ".nono-restore-"
#define RB_TMP_PREFIX   ".nono-rb-"

enum rb_op {
        RB_OPENUP = 1, /* give ourselves u+rwx on a directory the agent locked (mode restored by META) */
        RB_STASH,      /* rename path -> stash/path2 */
        RB_PLACE,      /* put node at path (how) */
        RB_LINK,       /* link path2 (already placed) -> path */
        RB_META,       /* mode, owner, xattrs of node at path */
        RB_TIMES,      /* atime/mtime of node at path */
        RB_CLEAN,      /* remove the stash of root */
        RB_PHASE,      /* phase boundary: progress is journaled here */
        RB_ROOTTIMES,  /* directory path (untracked) gets back path2 = "atime_ns mtime_ns" captured at plan
                          time */
        RB_REWRITE,    /* the file node (several names, none of them recorded) whose live inode is in
                          stash/path2 gets its content, attributes and times in place (path: where it was) */
};

enum rb_how {
        RB_FROM_STASH = 1, /* the live inode is in stash/path2 */
        RB_INPLACE,        /* the live inode is at path */
        RB_FRESH,          /* build from the store */
        RB_COPY,           /* content from the live file at path2 (outside the restored subset) */
        RB_FROM_FSLINK,    /* the live inode is fs/'s stash entry h<node> (a multiply-linked file): its
                              content is restored in place and path is linked to it */
};

struct rb_step {
        uint8_t op, how;
        uint32_t root;
        uint64_t node;
        char *path, *path2;
};

/* One touched path (or, extra, a descendant of a directory the restore removes). */
struct rb_item {
        uint32_t root;
        char *path;
        uint64_t target; /* node at session start; 0: absent */
        bool has_post;
        struct nono_path_rec rec;
        bool cur_exists;
        struct stat cur; /* now (at plan time) */
        uint64_t k;      /* restore-session node id of the current object; 0: absent */
        bool extra;
        bool trash; /* an extra that needs its own move to the trash (a name not at start, not recorded) */
        /* A small regular file's content as the conflict check read it (NULL: not kept): the restore
         * session stores it as its pre-image without reading the file again, if the file's inode, size,
         * mtime and ctime are still those of cur. Memory only. */
        char *content;
        size_t content_len;
};

/* A regular file this process built and renamed into place (restore_apply.c): not any object the plan saw
 * (a reused inode had another path's content), and when built from a whole object its content is known,
 * so the restore session's post-image need not read it back (record_post). */
struct rb_placed {
        dev_t dev;
        ino_t ino;
        uint64_t size;
        nono_digest object;
        bool object_known;
};

struct rb_plan {
        char session[NONO_SESSION_ID_LEN + 1];
        char restore_id[NONO_SESSION_ID_LEN + 1];
        char **roots;    /* NULL-terminated, from the session */
        int *rootfds;    /* O_PATH dir fds, one per root (-1: root missing) */
        char **filebase; /* roots that are files: rootfds[] is their directory, this their name; else NULL */
        int *fsstash;    /* fs/'s stash directory of each root ("..nono-stash.SESSION.ROOT"), -1: none */
        bool crashed;    /* the session has no final post-images (only fs/'s interim ones) */
        bool resumed;    /* completing a killed restore (from the journal) */
        size_t n_roots;
        struct rb_item *items;
        size_t n_items;
        size_t n_recorded; /* items[0..n_recorded) are the session's records, sorted; then extras */
        struct rb_step *steps;
        size_t n_steps, done;
        bool full;                /* every path of the session (not a subset): the session becomes RESTORED */
        struct rb_placed *placed; /* memory only (a resumed restore reads the files instead) */
        size_t n_placed, cap_placed;
        /* Inodes relinked from fs/'s h<node> (RB_FROM_FSLINK): the restore session records each as a node of
         * its own (no path: its other names are unknown) and the path it is linked to names that node as
         * its post-image, so undoing the restore writes the content back into the inode (RB_REWRITE).
         * Memory only: after a resumed restore, undoing it leaves those other names with the start content.
         */
        struct rb_placed *relinked; /* .size: the restore session's node id */
        size_t n_relinked;
        size_t n_conflicts;
        size_t content_bytes; /* sum of items' content (bounded by RB_CONTENT_MAX) */
};

#define RB_CONTENT_FILE_MAX (256 * 1024)       /* larger files are streamed, twice */
#define RB_CONTENT_MAX      (64 * 1024 * 1024) /* content kept between the plan and the undo's record */

#define RB_FS_STASH_PREFIX "..nono-stash."

void rb_plan_free(struct rb_plan *p);
/* O_PATH fd of fs/'s stash entry of node (the base content of a block-level node, cow.c "content rule"),
 * or -ENOENT. */
int rb_fs_stash_entry(const struct rb_plan *p, uint32_t root, uint64_t node);
/* O_PATH fd of fs/'s stash name h<node> of a file that had several names (fs/cow.c "Hard links"), or
 * -ENOENT. name (may be NULL, >= 32 bytes) gets the entry's name. */
int rb_fs_hlink_entry(const struct rb_plan *p, uint32_t root, uint64_t node, char *name);
int rb_open_roots(struct rb_plan *p);

/* restore_plan.c: fills items and steps; lists conflicts on out. */
int rb_plan_build(nono_store *st, const struct nono_session *s, const struct nono_restore_opts *o,
                  struct rb_plan *p, FILE *out);
void rb_plan_print(const struct rb_plan *p, FILE *out);

/* restore_locate.c: a crashed session's post-images at paths that no longer exist, translated through
 * the live location of their parent, become items at the live path (called with items sorted). */
int rb_locate_moved(nono_store *st, struct rb_plan *p);

/* restore_journal.c */
int rb_journal_save(nono_store *st, const struct rb_plan *p);
int rb_journal_load(nono_store *st, const char *session, struct rb_plan *p);

/* restore_apply.c: runs steps from p->done, journaling progress. */
int rb_apply(nono_store *st, struct rb_plan *p, bool progress);

/* restore.c */
/* NONO_RESTORE_TIMING set: prints the time since the previous call on stderr (NULL: just starts). */
void rb_timing(const char *what);
void rb_set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rb_step_add(struct rb_plan *p, uint8_t op, uint8_t how, uint32_t root, uint64_t node, const char *path,
                const char *path2);
