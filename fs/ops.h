/* SPDX-License-Identifier: Apache-2.0 */
/* ops.h - helpers shared by the FUSE handler modules (ops-entry.c, ops-file.c); internal to fs/. */
#pragma once

#include <string.h>

#include "fs/fs-internal.h"

int open_beneath(int dirfd, const char *name, int flags, mode_t mode);
void fill_entry(struct nono_fs *fs, struct fuse_entry_param *e, struct fsino *i, const struct stat *st);
int do_lookup(struct nono_fs *fs, struct fsino *dir, const char *name, struct fuse_entry_param *e,
              struct fsino **out);
int policy_write(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, const char *path);
int policy_read(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, uint32_t oflags);
void violation(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, const char *path, int r,
               uint32_t oflags);
void event_on(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, struct fsino *dir,
              const char *name, int r);
int chown_to_caller(struct nono_fs *fs, fuse_req_t req, struct fsino *dir, int fd, struct stat *st);

/* The error for a name refused by name_ok(): fs/'s reserved names look like permission problems. */
static inline int bad_name(const char *name)
{
        return name && !strncmp(name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX)) ? EACCES : EINVAL;
}

void ops_entry(struct fuse_lowlevel_ops *o);
void ops_file(struct fuse_lowlevel_ops *o);
