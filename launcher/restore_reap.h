/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_reap.h - frees the inodes a restore replaces after the restore has returned.
 *
 * Why: on ext4 (and others) freeing an inode with allocated blocks costs far more than making one: the
 * truncate at eviction frees its blocks, which on a filesystem mounted with `discard` waits for the disk
 * to discard them, and in no-journal mode the inode allocator skips every inode freed in the last
 * seconds, so making temporaries after many frees gets slower with each one. Measured on the target VM: a
 * 10,000-file restore spent most of its time there. A restore therefore hands each inode it unlinks (the
 * replaced file, now nameless) to a detached helper process as an O_PATH fd before unlinking the name;
 * the kernel evicts an unlinked inode only when its last reference goes, so the helper frees them all when
 * it exits, which it does when the restoring process closes its socket (end of the restore, or a crash).
 *
 * What it changes: nothing visible in the tree (the names are gone at once, as with a plain unlink); the
 * space comes back a moment after the command returns. If the helper cannot be started or cannot take
 * more fds, the caller just unlinks: the restore is slower, never different.
 */
#pragma once

struct rb_reaper;

/* Starts the helper (a grandchild that holds nothing but its socket, at idle I/O priority); NULL on any
 * failure (callers then unlink synchronously). */
struct rb_reaper *rb_reaper_start(void);
/* Takes fd (an O_PATH fd of an inode the caller is about to unlink) and passes it to the helper, in
 * batches. 0: fd is the reaper's now. Negative errno: the helper is gone, fd is still the caller's. */
int rb_reaper_hold(struct rb_reaper *r, int fd);
/* Closes the socket: the helper exits and the kernel frees what it held. NULL is fine. */
void rb_reaper_stop(struct rb_reaper *r);
