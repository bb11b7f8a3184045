/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_fs.h - fd-relative file-system primitives of the rollback engine.
 *
 * Every path handed to these functions is relative to a root directory fd and is resolved with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); the last component is then used
 * with the *at() calls and AT_SYMLINK_NOFOLLOW / O_NOFOLLOW. This stops an agent that left symlinks (or
 * "..") in the tree from steering a restore outside its root: a directory component that is a symlink
 * makes the path "absent" instead of being followed. It does not stop a concurrent process that renames
 * directories while the restore runs from making the restore fail (it fails, it does not escape).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

static inline void rfs_closep(int *fd)
{
        if (*fd >= 0) {
                int e = errno;
                close(*fd);
                errno = e;
        }
}
#define _cleanup_close_ __attribute__((cleanup(rfs_closep)))

/* Opens the parent directory of rel beneath rootfd (O_PATH|O_DIRECTORY) and points *name at the last
 * component inside rel. rel "" (the root itself) is refused with -EINVAL. */
int rfs_open_parent(int rootfd, const char *rel, const char **name);
/* O_PATH|O_NOFOLLOW fd of rel itself (rel "" is the root). */
int rfs_open_path(int rootfd, const char *rel);
/* lstat of rel; -ENOENT also when a directory component is missing, not a directory or a symlink. */
int rfs_lstat(int rootfd, const char *rel, struct stat *st);

/* Reads an object's full state into a node (type, mode, owner, times, nlink, size, link target, xattrs,
 * directory entries). Content is not read. */
int rfs_read_meta(int fd_opath, const struct stat *st, struct nono_node *out);
/* Opens an O_PATH fd for reading; adds u+r for the duration when the owner lacks it. */
int rfs_open_read(int fd_opath);
/* Reads all of fd (from offset 0) into a new buffer if it is at most max bytes; -EFBIG if larger. */
int rfs_read_all(int fd, size_t max, char **buf, size_t *len);

/* Applies mode, owner (when permitted), xattrs (exact set) of n to the object at fd_opath. */
int rfs_apply_meta(int fd_opath, const struct nono_node *n);
/* Sets atime/mtime of name in parent (no follow). */
int rfs_apply_times(int parentfd, const char *name, const struct nono_node *n);
/* chmod through /proc/self/fd (an O_PATH fd cannot fchmod). */
int rfs_chmod(int fd_opath, mode_t mode);

/* Removes rel and everything below it (fd-relative, no follow). */
int rfs_remove_tree(int parentfd, const char *name);
/* Copies the whole content of src into dst (both open fds), from offset 0. */
int rfs_copy_fd(int src, int dst);
