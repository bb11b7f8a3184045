/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model.h - test support for the rollback engine: writes a session's node and path records through the
 * real store exactly as store.h's contract says fs/ does (pre-image before the first change of a name or
 * an object, whole content or captured 64 KiB chunks, post-images at the end), so restore can be tested
 * before and independently of the FUSE layer; plus a canonical dump of a tree for exact comparisons.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "store/store.h"

struct model {
        nono_store *st;
        char sid[NONO_SESSION_ID_LEN + 1];
        char root[4096];
        int rootfd;
        struct {
                dev_t dev;
                ino_t ino;
                uint64_t id;
                int pin; /* O_PATH fd: keeps the inode (and its number) alive, as fs/'s inode table does */
        } * nodes;
        size_t n_nodes;
        char **paths; /* recorded paths */
        size_t n_paths;
};

/* Creates a RUNNING rollback session over root. */
int model_begin(struct model *m, nono_store *st, const char *root);
/* The same with another owner pid (dead_pid(): a pid that is gone, so the session reads as crashed). */
int model_begin_owner(struct model *m, nono_store *st, const char *root, pid_t owner);
pid_t dead_pid(void);
/* Records the pre-image of the name rel (and of its parent directory), whole content. */
void model_touch(struct model *m, const char *rel);
/* The same with another owner pid (dead_pid(): a pid that is gone, so the session reads as crashed). */
int model_begin_owner(struct model *m, nono_store *st, const char *root, pid_t owner);
pid_t dead_pid(void);
/* Records the pre-image of the object at rel with only the chunks covering [off, off+len) (block level). */
void model_touch_blocks(struct model *m, const char *rel, uint64_t off, uint64_t len);
/* Writes the post-images and marks the session finished; crashed=true leaves it RUNNING with a dead pid. */
void model_end(struct model *m, bool crashed);
void model_free(struct model *m);

/* Canonical text of a tree: every entry with type, mode, size, content hash, link target, xattrs, times
 * (file mtimes; directory mtimes when with_dir_times), link count and hard-link group. malloc'ed. */
char *tree_dump(const char *root, bool with_dir_times);
/* Prints the first differing line of two dumps to stderr. */
void dump_diff(const char *a, const char *b);

/* mkdir -p of a scratch directory under $TMPDIR; returns malloc'ed path. */
char *scratch_dir(const char *tag);
void rm_rf(const char *path);
