/* SPDX-License-Identifier: Apache-2.0 */
/* harness.h - mounts a temporary directory through fs/ in-process for the fs/ unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fs/fs.h"

struct mnt {
        char base[256];   /* temporary directory holding everything */
        char back[300];   /* the real directory served */
        char native[300]; /* a plain directory for native comparisons */
        char mp[300];     /* the mountpoint */
        nono_fs *fs;
};

/* Creates base/{back,native,mnt} and mounts back at mnt with cfg (root_fd and root_path are filled in;
 * cfg may be NULL). Returns 0, or -1 after printing why. */
int mnt_up(struct mnt *m, const struct nono_fs_config *cfg);
int mnt_serve(struct mnt *m, const struct nono_fs_config *cfg); /* the mount part only */
void mnt_down(struct mnt *m);                                   /* unmounts, frees and removes base */
void mnt_unmount(struct mnt *m);                                /* unmounts and frees, keeps the files */
void rm_rf(const char *path);
/* Appends a formatted line to a growing trace string. */
void tr(char **trace, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool is_root(void);
/* Makes a temporary directory $TMPDIR/nono-fs-TAG.XXXXXX in buf and points NONO_HOME at it (the store's
 * home for tests that record). Returns 0 or -1. */
int store_home_up(char *buf, size_t len, const char *tag);
