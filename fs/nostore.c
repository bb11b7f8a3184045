/* SPDX-License-Identifier: Apache-2.0 */
/* nostore.c - stands in for rec.c and cow.c while store/ has no implementation: recording and pre-images
 * are refused (-ENOSYS) rather than silently skipped. Removed once the store lands. */
#include "fs/cow.h"
#include "fs/fs-internal.h"

int rec_new(struct nono_fs *fs)
{
        return fs->cfg.record ? -ENOSYS : 0;
}
void rec_free(struct nono_fs *fs)
{
}
int rec_flush(struct nono_fs *fs)
{
        return 0;
}
void rec_event(struct nono_fs *fs, fuse_req_t req, uint16_t op, const char *path, const char *path2, int result,
               uint32_t flags, uint32_t oflags, uint64_t rd, uint64_t wr)
{
}
void rec_event_as(struct nono_fs *fs, uint32_t pid, uint32_t uid, uint16_t op, const char *path, int result,
                  uint32_t oflags, uint64_t rd, uint64_t wr)
{
}
int cow_new(struct nono_fs *fs)
{
        return fs->cfg.preimages ? -ENOSYS : 0;
}
void cow_free(struct nono_fs *fs)
{
}
int cow_before_meta(struct nono_fs *fs, struct fsino *x)
{
        return 0;
}
int cow_before_data(struct nono_fs *fs, struct fsino *x, int fd, uint64_t off, uint64_t len)
{
        return 0;
}
int cow_before_truncate(struct nono_fs *fs, struct fsino *x, int fd, uint64_t size)
{
        return 0;
}
int cow_before_create(struct nono_fs *fs, struct fsino *dir, const char *name)
{
        return 0;
}
int cow_before_remove(struct nono_fs *fs, struct fsino *dir, const char *name)
{
        return 0;
}
int cow_before_rename(struct nono_fs *fs, struct fsino *sdir, const char *sname, struct fsino *ddir,
                      const char *dname, unsigned flags)
{
        return 0;
}
int cow_before_link(struct nono_fs *fs, struct fsino *x, struct fsino *ddir, const char *dname)
{
        return 0;
}
void cow_after_create(struct nono_fs *fs, struct fsino *x)
{
}
int cow_finish(struct nono_fs *fs)
{
        return 0;
}
