/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops-entry.c - FUSE handlers for names and attributes: lookup, forget, getattr, setattr, readlink, mknod,
 * mkdir, symlink, link, unlink, rmdir, rename, statfs, access.
 *
 * Security (every handler): the agent controls every name and may race us. A name is checked to be one
 * component (name_ok) and only ever used relative to the O_PATH fd of its parent, never followed when it is a
 * symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS, O_NOFOLLOW,
 * AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH on O_PATH fds). A symlink swapped in between two of our calls is
 * therefore operated on as a symlink, never through. Permission checks are the kernel's
 * (default_permissions); fs/ adds read-only roots and deny rules on top (EROFS / EACCES, recorded as
 * violations).
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "fs/cow.h"
#include "fs/fs-internal.h"
#include "fs/ops.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
            .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        return (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
}

void fill_entry(struct nono_fs *fs, struct fuse_entry_param *e, struct fsino *i, const struct stat *st)
{
        memset(e, 0, sizeof(*e));
        e->ino = i == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
        e->attr = *st;
        cow_hide_stash_links(fs, &e->attr);
        e->attr_timeout = S_ISDIR(st->st_mode) ? NONO_FS_FRESH : fs->timeout; /* fs-internal.h FRESHNESS */
        atomic_store_explicit(&i->served_ctime, ctime_ns(st), memory_order_relaxed); /* watch.c */
        e->entry_timeout = fs->timeout;
}

/* Looks name up in dir, adding it to the table (one kernel reference). Returns 0 or a positive errno.
 * A non-directory costs one fstatat and gets no fd (inode.c); a directory new to the table is opened. */
int do_lookup(struct nono_fs *fs, struct fsino *dir, const char *name, struct fuse_entry_param *e,
              struct fsino **out)
{
        struct stat st;

        if (!name_ok(name))
                return bad_name(name) == EACCES ? ENOENT : EINVAL;
        if (dir->type != S_IFDIR)
                return ENOTDIR;
        evict_throttle(fs, dir);
        if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno;
        unsigned deny = 0;
        if (fs->cfg.n_rules) {
                char *p = fsino_child_path(fs, dir, name);
                deny = p ? rules_match(fs->rules, fs->cfg.n_rules, p) : 0;
                free(p);
        }
        struct fsino *i = fsino_find_or_add(fs, -1, &st, dir, name, deny);
        if (!i && errno == EAGAIN) {
                int fd = open_beneath(dir->fd, name, O_PATH, 0);
                if (fd < 0)
                        return errno == ELOOP ? ENOENT : errno;
                if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                        int r = errno;
                        close(fd);
                        return r;
                }
                i = fsino_find_or_add(fs, fd, &st, dir, name, deny);
        }
        if (!i)
                return errno;
        fill_entry(fs, e, i, &st);
        if (out)
                *out = i;
        return 0;
}

/* Policy for a change at path (NULL: use inode i's path). Returns 0 or EROFS/EACCES, recording a violation.
 */
int policy_write(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, const char *path)
{
        int r = 0;

        if (fs->cfg.read_only)
                r = EROFS;
        else if (i && (i->deny & NONO_DENY_WRITE))
                r = EACCES;
        else if (path && fs->cfg.n_rules && (rules_match(fs->rules, fs->cfg.n_rules, path) & NONO_DENY_WRITE))
                r = EACCES;
        if (r)
                violation(fs, req, op, i, path, r, 0);
        return r;
}

int policy_read(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, uint32_t oflags)
{
        if (!(i->deny & NONO_DENY_READ))
                return 0;
        violation(fs, req, op, i, NULL, EACCES, oflags);
        return EACCES;
}

void violation(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, const char *path, int r,
               uint32_t oflags)
{
        char *own = NULL;

        atomic_fetch_add(&fs->violations, 1);
        if (!path && i)
                path = own = fsino_path(fs, i);
        rec_event(fs, req, op, path ? path : "?", NULL, r, NONO_EVF_VIOLATION, oflags, 0, 0);
        free(own);
}

/* Records a change event on i (or dir/name). */
void event_on(struct nono_fs *fs, fuse_req_t req, uint16_t op, struct fsino *i, struct fsino *dir,
              const char *name, int r)
{
        if (!fs->rec)
                return;
        char *p = dir ? fsino_child_path(fs, dir, name) : fsino_path(fs, i);
        rec_event(fs, req, op, p ? p : "?", NULL, r, 0, 0, 0, 0);
        free(p);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fuse_entry_param e;

        int r = do_lookup(fs, fsino_peek(fs, parent), name, &e, NULL);
        if (r == ENOENT) {
                /* a negative entry: kept briefly (fs-internal.h FRESHNESS) */
                memset(&e, 0, sizeof(e));
                e.entry_timeout = NONO_FS_FRESH;
                fuse_reply_entry(req, &e);
                return;
        }
        if (r)
                fuse_reply_err(req, r);
        else
                fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
        struct nono_fs *fs = fuse_req_userdata(req);

        fsino_forget(fs, fsino_peek(fs, ino), n);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
        struct nono_fs *fs = fuse_req_userdata(req);

        for (size_t k = 0; k < count; k++)
                fsino_forget(fs, fsino_peek(fs, f[k].ino), f[k].nlookup);
        fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct stat st;

        struct fsino *i = fsino_peek(fs, ino);
        int r = fsino_stat(fs, i, &st);
        if (r < 0)
                return (void)fuse_reply_err(req, -r);
        cow_hide_stash_links(fs, &st);
        atomic_store_explicit(&i->served_ctime, ctime_ns(&st), memory_order_relaxed); /* watch.c */
        fuse_reply_attr(req, &st, S_ISDIR(st.st_mode) ? NONO_FS_FRESH : fs->timeout);
}

static int set_times(struct fsino *i, int fh, const struct stat *attr, int valid)
{
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

        if (valid & FUSE_SET_ATTR_ATIME_NOW)
                ts[0].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_ATIME)
                ts[0] = attr->st_atim;
        if (valid & FUSE_SET_ATTR_MTIME_NOW)
                ts[1].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_MTIME)
                ts[1] = attr->st_mtim;
        if (fh >= 0)
                return futimens(fh, ts);
        return utimensat(i->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

static int truncate_ino(struct fsino *i, int fh, off_t size)
{
        if (fh >= 0)
                return ftruncate(fh, size);
        int fd = reopen(i, O_WRONLY);
        if (fd < 0)
                return -1;
        int r = ftruncate(fd, size);
        int e = errno;
        close(fd);
        errno = e;
        return r;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        int fh = fi ? ((struct fshandle *)(uintptr_t)fi->fh)->fd : -1;
        uint16_t op = (valid & FUSE_SET_ATTR_SIZE)                        ? NONO_OP_TRUNCATE
                      : (valid & FUSE_SET_ATTR_MODE)                      ? NONO_OP_CHMOD
                      : (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) ? NONO_OP_CHOWN
                                                                          : NONO_OP_UTIMENS;
        int r = policy_write(fs, req, op, i, NULL);

        thread_prepare();
        if (!r && i->fd < 0)
                r = ESTALE; /* another object at its name now (changed outside nono; inode.c) */
        if (r)
                return (void)fuse_reply_err(req, r);
        if (valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_ATIME |
                     FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
                r = -cow_before_meta(fs, i);
        if (!r && (valid & FUSE_SET_ATTR_SIZE))
                r = -cow_before_truncate(fs, i, fh, (uint64_t)attr->st_size);
        if (r)
                goto out;
        if (valid & FUSE_SET_ATTR_MODE) {
                int x = fh >= 0
                            ? fchmod(fh, attr->st_mode & 07777)
                            : (int)syscall(SYS_fchmodat2, i->fd, "", attr->st_mode & 07777, AT_EMPTY_PATH);
                if (x < 0) {
                        r = errno;
                        goto out;
                }
        }
        if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
                uid_t u = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
                gid_t g = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
                if (fchownat(i->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                        r = errno;
                        goto out;
                }
        }
        if ((valid & FUSE_SET_ATTR_SIZE) && truncate_ino(i, fh, attr->st_size) < 0) {
                r = errno;
                goto out;
        }
        if ((valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                      FUSE_SET_ATTR_MTIME_NOW)) &&
            set_times(i, fh, attr, valid) < 0) {
                r = errno;
                goto out;
        }
out:
        event_on(fs, req, op, i, NULL, NULL, r);
        if (r)
                return (void)fuse_reply_err(req, r);
        if (valid & FUSE_SET_ATTR_SIZE || valid & FUSE_SET_ATTR_MODE)
                atomic_fetch_add(&fs->files_changed, 1);
        op_getattr(req, ino, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        char buf[PATH_MAX + 1];

        int r = policy_read(fs, req, NONO_OP_READLINK, i, 0);
        if (!r && i->fd < 0)
                r = ESTALE;
        if (r)
                return (void)fuse_reply_err(req, r);
        ssize_t n = readlinkat(i->fd, "", buf, sizeof(buf));
        if (n < 0)
                return (void)fuse_reply_err(req, errno);
        if (n == sizeof(buf))
                return (void)fuse_reply_err(req, ENAMETOOLONG);
        buf[n] = 0;
        event_on(fs, req, NONO_OP_READLINK, i, NULL, NULL, 0);
        fuse_reply_readlink(req, buf);
}

/* Gives a just-created object the caller's owner, as the kernel would have (a root daemon creates as root),
 * and then *st its new attributes. */
int chown_to_caller(struct nono_fs *fs, fuse_req_t req, struct fsino *dir, int fd, struct stat *st)
{
        const struct fuse_ctx *c = fuse_req_ctx(req);
        struct stat ds;
        uid_t u = c->uid;
        gid_t g = c->gid;

        if (!fs->is_root_daemon || (st->st_uid == u && st->st_gid == g))
                return 0; /* already the caller's (the common case: no need to look at the directory) */
        if (fstatat(dir->fd, "", &ds, AT_EMPTY_PATH) == 0 && (ds.st_mode & S_ISGID))
                g = ds.st_gid;
        if (st->st_uid == u && st->st_gid == g)
                return 0;
        if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return errno;
        /* chown drops set-id bits of non-directories; the caller asked for them */
        if (S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)))
                syscall(SYS_fchmodat2, fd, "", st->st_mode & 07777, AT_EMPTY_PATH);
        fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        return 0;
}

/* Creates a non-regular object (dir, fifo, socket, symlink) and replies with its entry. */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
                      const char *link, uint16_t op)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *dir = fsino_get(fs, parent);
        struct fuse_entry_param e;
        struct stat st;
        int r;

        thread_prepare();
        if (!name_ok(name))
                return (void)fuse_reply_err(req, bad_name(name));
        char *path = fsino_child_path(fs, dir, name);
        r = policy_write(fs, req, op, NULL, path);
        if (r)
                goto out;
        if (S_ISCHR(mode) || S_ISBLK(mode)) {
                r = EPERM; /* devices are never created through nono */
                goto out;
        }
        r = -cow_before_create(fs, dir, name);
        if (r)
                goto out;
        watch_own(fs, dir, name);
        if (link)
                r = symlinkat(link, dir->fd, name) < 0 ? errno : 0;
        else if (S_ISDIR(mode))
                r = mkdirat(dir->fd, name, mode & 07777) < 0 ? errno : 0;
        else
                r = mknodat(dir->fd, name, mode, rdev) < 0 ? errno : 0;
        if (r)
                goto out;
        int fd = open_beneath(dir->fd, name, O_PATH, 0);
        if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r = errno;
                if (fd >= 0)
                        close(fd);
                goto out;
        }
        r = chown_to_caller(fs, req, dir, fd, &st);
        struct fsino *i = fsino_find_or_add(fs, fd, &st, dir, name, 0);
        if (!i) {
                r = errno;
                goto out;
        }
        cow_after_create(fs, i);
        fill_entry(fs, &e, i, &st);
out:
        if (fs->rec)
                rec_event(fs, req, op, path ? path : "?", link, r, 0, 0, 0, 0);
        free(path);
        if (r)
                return (void)fuse_reply_err(req, r);
        fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        make_node(req, parent, name, mode, rdev, NULL, NONO_OP_MKNOD);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        make_node(req, parent, name, S_IFDIR | mode, 0, NULL, NONO_OP_MKDIR);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
        make_node(req, parent, name, S_IFLNK | 0777, 0, link, NONO_OP_SYMLINK);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino), *dir = fsino_get(fs, parent);
        struct fuse_entry_param e;
        struct stat st;
        char p[64];
        int r;

        thread_prepare();
        if (!name_ok(name))
                return (void)fuse_reply_err(req, EINVAL);
        if (i->fd < 0)
                return (void)fuse_reply_err(req, ESTALE);
        char *path = fsino_child_path(fs, dir, name), *src = fsino_path(fs, i);
        r = policy_write(fs, req, NONO_OP_LINK, NULL, path);
        if (!r && (i->deny & (NONO_DENY_READ | NONO_DENY_WRITE))) {
                r = EACCES; /* a new name would escape the rule */
                violation(fs, req, NONO_OP_LINK, i, NULL, r, 0);
        }
        if (!r)
                r = -cow_before_create(fs, dir, name);
        if (!r)
                r = -cow_before_link(fs, i, dir, name);
        if (r)
                goto out;
        watch_own(fs, dir, name);
        if (linkat(i->fd, "", dir->fd, name, AT_EMPTY_PATH) < 0) {
                snprintf(p, sizeof(p), "/proc/self/fd/%d", i->fd);
                if (errno != ENOENT && errno != EPERM)
                        r = errno;
                else if (i->type == S_IFLNK)
                        r = EPERM; /* cannot be done without CAP_DAC_READ_SEARCH (rare) */
                else if (linkat(AT_FDCWD, p, dir->fd, name, AT_SYMLINK_FOLLOW) < 0)
                        r = errno;
        }
        if (r)
                goto out;
        if (fstatat(i->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                r = errno;
                goto out;
        }
        pthread_mutex_lock(&fs->lock);
        i->nlookup++;
        pthread_mutex_unlock(&fs->lock);
        fill_entry(fs, &e, i, &st);
out:
        if (fs->rec)
                rec_event(fs, req, NONO_OP_LINK, src ? src : "?", path, r, 0, 0, 0, 0);
        free(path);
        free(src);
        if (r)
                return (void)fuse_reply_err(req, r);
        fuse_reply_entry(req, &e);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir_)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *dir = fsino_get(fs, parent);
        uint16_t op = dir_ ? NONO_OP_RMDIR : NONO_OP_UNLINK;
        struct stat st;
        int r;

        thread_prepare();
        if (!name_ok(name))
                return (void)fuse_reply_err(req, bad_name(name) == EACCES ? ENOENT : EINVAL);
        char *path = fsino_child_path(fs, dir, name);
        r = policy_write(fs, req, op, NULL, path);
        if (!r && dir_ && fs->cfg.n_rules && path &&
            (rules_below(fs->rules, fs->cfg.n_rules, path) & NONO_DENY_WRITE)) {
                r = EACCES;
                violation(fs, req, op, NULL, path, r, 0);
        }
        if (r)
                goto out;
        if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = errno;
                goto out;
        }
        r = -cow_before_remove(fs, dir, name);
        /* its binding is about to go (inode.c): an object that other names or open files keep needs its fd
         * (open files gave it one already); failing (changed outside nono) only loses that */
        if (!r && (S_ISDIR(st.st_mode) || st.st_nlink > 1))
                (void)fsino_materialize_at(fs, st.st_dev, st.st_ino);
        if (!r)
                watch_own(fs, dir, name);
        if (!r && unlinkat(dir->fd, name, dir_ ? AT_REMOVEDIR : 0) < 0)
                r = errno;
        if (!r)
                fsino_mark_gone(fs, st.st_dev, st.st_ino, dir, name);
out:
        if (fs->rec)
                rec_event(fs, req, op, path ? path : "?", NULL, r, 0, 0, 0, 0);
        if (!r)
                atomic_fetch_add(&fs->files_changed, 1);
        free(path);
        fuse_reply_err(req, r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_entry(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_entry(req, parent, name, true);
}

static int rename_policy(struct nono_fs *fs, fuse_req_t req, const char *sp, const char *dp, bool src_dir,
                         bool dst_dir)
{
        int r = policy_write(fs, req, NONO_OP_RENAME, NULL, sp);
        if (!r)
                r = policy_write(fs, req, NONO_OP_RENAME, NULL, dp);
        if (r || !fs->cfg.n_rules)
                return r;
        unsigned below = 0;
        if (src_dir || dst_dir)
                below =
                    rules_below(fs->rules, fs->cfg.n_rules, sp) | rules_below(fs->rules, fs->cfg.n_rules, dp);
        unsigned rd =
            rules_match(fs->rules, fs->cfg.n_rules, sp) | rules_match(fs->rules, fs->cfg.n_rules, dp);
        if ((below & (NONO_DENY_WRITE | NONO_DENY_READ)) || (rd & NONO_DENY_READ)) {
                violation(fs, req, NONO_OP_RENAME, NULL, sp, EACCES, 0);
                return EACCES;
        }
        return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *sd = fsino_get(fs, parent), *dd = fsino_get(fs, newparent);
        struct stat ss, ds;
        bool have_dst;
        int r;

        thread_prepare();
        if (!name_ok(name) || !name_ok(newname))
                return (void)fuse_reply_err(req, EINVAL);
        if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
                return (void)fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: not for agents */
        char *sp = fsino_child_path(fs, sd, name), *dp = fsino_child_path(fs, dd, newname);
        if (!sp || !dp) {
                r = ENOMEM;
                goto out;
        }
        if (fstatat(sd->fd, name, &ss, AT_SYMLINK_NOFOLLOW) < 0) {
                r = errno;
                goto out;
        }
        have_dst = fstatat(dd->fd, newname, &ds, AT_SYMLINK_NOFOLLOW) == 0;
        r = rename_policy(fs, req, sp, dp, S_ISDIR(ss.st_mode), have_dst && S_ISDIR(ds.st_mode));
        if (r)
                goto out;
        r = -cow_before_rename(fs, sd, name, dd, newname, flags);
        if (r)
                goto out;
        (void)fsino_materialize_at(fs, ss.st_dev, ss.st_ino); /* bindings about to change (inode.c) */
        if (have_dst)
                (void)fsino_materialize_at(fs, ds.st_dev, ds.st_ino);
        for (int k = 0; k < ((flags & RENAME_EXCHANGE) ? 2 : 1); k++) { /* an exchange moves both ways */
                watch_own(fs, sd, name);
                watch_own(fs, dd, newname);
        }
        if (syscall(SYS_renameat2, sd->fd, name, dd->fd, newname, flags) < 0) {
                r = errno;
                goto out;
        }
        struct fsino *si = fsino_find(fs, ss.st_dev, ss.st_ino);
        if (have_dst && !(flags & RENAME_EXCHANGE))
                fsino_mark_gone(fs, ds.st_dev, ds.st_ino, dd, newname);
        if (si)
                fsino_rebind(fs, si, dd, newname);
        if (have_dst && (flags & RENAME_EXCHANGE)) {
                struct fsino *di = fsino_find(fs, ds.st_dev, ds.st_ino);
                if (di)
                        fsino_rebind(fs, di, sd, name);
        }
out:
        if (fs->rec)
                rec_event(fs, req, NONO_OP_RENAME, sp ? sp : "?", dp, r, 0, flags, 0, 0);
        if (!r)
                atomic_fetch_add(&fs->files_changed, 1);
        free(sp);
        free(dp);
        fuse_reply_err(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct statvfs sv;

        if (fstatvfs(fsino_get(fs, ino)->fd, &sv) < 0)
                return (void)fuse_reply_err(req, errno);
        fuse_reply_statfs(req, &sv);
}

/* Only reached without default_permissions (the kernel answers access() itself otherwise). */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        const struct fuse_ctx *c = fuse_req_ctx(req);
        struct stat st;

        if (fstatat(fsino_get(fs, ino)->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return (void)fuse_reply_err(req, errno);
        if ((mask & W_OK) && fs->cfg.read_only)
                return (void)fuse_reply_err(req, EROFS);
        if (c->uid == 0 || mask == F_OK)
                return (void)fuse_reply_err(
                    req, (mask & X_OK) && !(st.st_mode & 0111) && !S_ISDIR(st.st_mode) ? EACCES : 0);
        int shift = c->uid == st.st_uid ? 6 : c->gid == st.st_gid ? 3 : 0;
        fuse_reply_err(req, ((st.st_mode >> shift) & mask & 7) == (unsigned)(mask & 7) ? 0 : EACCES);
}

void ops_entry(struct fuse_lowlevel_ops *o)
{
        o->lookup = op_lookup;
        o->forget = op_forget;
        o->forget_multi = op_forget_multi;
        o->getattr = op_getattr;
        o->setattr = op_setattr;
        o->readlink = op_readlink;
        o->mknod = op_mknod;
        o->mkdir = op_mkdir;
        o->symlink = op_symlink;
        o->link = op_link;
        o->unlink = op_unlink;
        o->rmdir = op_rmdir;
        o->rename = op_rename;
        o->statfs = op_statfs;
        o->access = op_access;
}
