/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cow.h - the write-ahead pre-image recorder of fs/ (internal interface, see cow.c for the record format).
 *
 * ops.c calls a cow_before_*() hook before every change it makes to the real tree; the hook returns only
 * once everything needed to undo that change is durable in the store, or fails (and the operation fails with
 * that error, so nothing changes that could not be undone). The cow_after_*() hooks update the in-memory
 * view of which object was where at session start. With pre-images off every hook is a no-op.
 */
#pragma once

#include "fs/fs-internal.h"

int cow_new(struct nono_fs *fs);
void cow_free(struct nono_fs *fs);

/* chmod, chown, utimens, setxattr, removexattr on x. */
int cow_before_meta(struct nono_fs *fs, struct fsino *x);
/* Bytes [off, off+len) of regular file x change (write, fallocate, copy_file_range destination); fd is any
 * fd open on x (for reading the old bytes; -1 to reopen). */
int cow_before_data(struct nono_fs *fs, struct fsino *x, int fd, uint64_t off, uint64_t len);
/* True when no write to x's data owes the store anything more (pre-images off, x created in this session,
 * or all of its original bytes captured): such writes may bypass the daemon (passthrough.c). */
bool cow_data_free(struct nono_fs *fs, struct fsino *x);
/* x is truncated to size (ftruncate, O_TRUNC). */
int cow_before_truncate(struct nono_fs *fs, struct fsino *x, int fd, uint64_t size);
/* name is created in dir (create, mkdir, mknod, symlink, link target). */
int cow_before_create(struct nono_fs *fs, struct fsino *dir, const char *name);
/* name is removed from dir (unlink, rmdir). */
int cow_before_remove(struct nono_fs *fs, struct fsino *dir, const char *name);
/* rename (flags: RENAME_*): whatever is at sdir/sname moves to ddir/dname, over what is there. */
int cow_before_rename(struct nono_fs *fs, struct fsino *sdir, const char *sname, struct fsino *ddir,
                      const char *dname, unsigned flags);
/* link: x gets a new name (x's link count changes). */
int cow_before_link(struct nono_fs *fs, struct fsino *x, struct fsino *ddir, const char *dname);

/* x was created in this session (it has no pre-image; things below it neither). */
void cow_after_create(struct nono_fs *fs, struct fsino *x);

/* st is what the backing filesystem says of an object about to be shown to the agent: drops from st_nlink
 * the name fs/ itself gave the inode in its stash (cow-stash.c), so link counts are as without fs/. */
void cow_hide_stash_links(struct nono_fs *fs, struct stat *st);

/* Session end: waits for background ingests, writes post-images of every recorded path. */
int cow_finish(struct nono_fs *fs);
