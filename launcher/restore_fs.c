/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_fs.c - fd-relative primitives for the rollback engine (see restore_fs.h for what the resolution
 * rules stop). Objects are reached through O_PATH fds; operations that the kernel offers only on paths
 * (chmod, xattrs, reopening for read/write) go through /proc/self/fd/N, which names the inode already
 * resolved, never a path an agent could swap.
 */
#include "launcher/restore_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#define RESOLVE_FLAGS (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

static int openat2_beneath(int dirfd, const char *path, int flags)
{
        struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_FLAGS};
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);

        return fd < 0 ? -errno : (int)fd;
}

static int absent_errno(int r)
{
        /* A symlink or non-directory on the way means the path does not exist as a path beneath the root. */
        if (r == -ELOOP || r == -ENOTDIR || r == -EXDEV)
                return -ENOENT;
        return r;
}

int rfs_open_parent(int rootfd, const char *rel, const char **name)
{
        const char *slash = strrchr(rel, '/');
        char dir[4096];

        if (!*rel)
                return -EINVAL;
        if (!slash) {
                *name = rel;
                return absent_errno(openat2_beneath(rootfd, ".", O_PATH | O_DIRECTORY));
        }
        if ((size_t)(slash - rel) >= sizeof dir)
                return -ENAMETOOLONG;
        memcpy(dir, rel, slash - rel);
        dir[slash - rel] = 0;
        *name = slash + 1;
        return absent_errno(openat2_beneath(rootfd, dir, O_PATH | O_DIRECTORY));
}

int rfs_open_path(int rootfd, const char *rel)
{
        /* One resolution: with O_PATH|O_NOFOLLOW, RESOLVE_NO_SYMLINKS returns a trailing symlink itself
         * (openat2(2)) and refuses one anywhere before it. */
        return absent_errno(openat2_beneath(rootfd, *rel ? rel : ".", O_PATH | O_NOFOLLOW));
}

int rfs_lstat(int rootfd, const char *rel, struct stat *st)
{
        _cleanup_close_ int fd = rfs_open_path(rootfd, rel);

        if (fd < 0)
                return fd;
        return fstat(fd, st) < 0 ? -errno : 0;
}

static void proc_path(int fd, char buf[64])
{
        snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

int rfs_chmod(int fd_opath, mode_t mode)
{
        char p[64];

        proc_path(fd_opath, p);
        return chmod(p, mode & 07777) < 0 ? -errno : 0;
}

static int strcmp_p(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_entries(int fd_opath, char ***out)
{
        int dfd = openat(fd_opath, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        size_t n = 0, cap = 8;
        char **v;
        DIR *d;
        struct dirent *de;

        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -ENOMEM;
        }
        v = calloc(cap, sizeof *v);
        while (v && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (n + 1 >= cap) {
                        char **nv = realloc(v, (cap *= 2) * sizeof *v);
                        if (!nv)
                                break;
                        v = nv;
                }
                v[n++] = strdup(de->d_name);
                v[n] = NULL;
        }
        closedir(d);
        if (!v)
                return -ENOMEM;
        qsort(v, n, sizeof *v, strcmp_p);
        *out = v;
        return 0;
}

static int read_xattrs(int fd_opath, struct nono_node *n)
{
        char p[64], names[65536];
        ssize_t len, off;

        proc_path(fd_opath, p);
        len = listxattr(p, names, sizeof names);
        if (len < 0)
                return errno == ENOTSUP ? 0 : -errno;
        for (off = 0; off < len; off += strlen(names + off) + 1) {
                char val[65536];
                ssize_t vl = getxattr(p, names + off, val, sizeof val);
                struct nono_xattr *nx;

                if (vl < 0)
                        continue;
                nx = realloc(n->xattrs, (n->n_xattrs + 1) * sizeof *nx);
                if (!nx)
                        return -ENOMEM;
                n->xattrs = nx;
                nx[n->n_xattrs].name = strdup(names + off);
                nx[n->n_xattrs].value = malloc(vl ? vl : 1);
                memcpy(nx[n->n_xattrs].value, val, vl);
                nx[n->n_xattrs].len = vl;
                n->n_xattrs++;
        }
        return 0;
}

int rfs_read_meta(int fd_opath, const struct stat *st, struct nono_node *out)
{
        int r;

        out->type = nono_ftype_from_mode(st->st_mode);
        out->mode = st->st_mode & 07777;
        out->uid = st->st_uid;
        out->gid = st->st_gid;
        out->atime_ns = st->st_atim.tv_sec * 1000000000LL + st->st_atim.tv_nsec;
        out->mtime_ns = st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
        out->nlink = st->st_nlink;
        out->size = st->st_size;
        if (S_ISLNK(st->st_mode)) {
                char buf[4096];
                ssize_t l = readlinkat(fd_opath, "", buf, sizeof buf - 1);
                if (l < 0)
                        return -errno;
                buf[l] = 0;
                out->link_target = strdup(buf);
                return 0;
        }
        r = read_xattrs(fd_opath, out);
        if (r < 0)
                return r;
        if (S_ISDIR(st->st_mode))
                return read_entries(fd_opath, &out->entries);
        return 0;
}

int rfs_open_read(int fd_opath)
{
        char p[64];
        struct stat st;
        int fd, e;

        /* The magic link names the inode the O_PATH fd holds; only regular files are reopened, so
         * there is no symlink or device behind it to follow. */
        if (fstat(fd_opath, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        proc_path(fd_opath, p);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || errno != EACCES)
                return fd < 0 ? -errno : fd;
        /* Our own file without u+r (the agent chmod'ed it): open it for the moment it takes. */
        if (st.st_uid != geteuid())
                return -EACCES;
        if (rfs_chmod(fd_opath, st.st_mode | S_IRUSR) < 0)
                return -EACCES;
        fd = open(p, O_RDONLY | O_CLOEXEC);
        e = errno;
        rfs_chmod(fd_opath, st.st_mode);
        return fd < 0 ? -e : fd;
}

int rfs_read_all(int fd, size_t max, char **buf, size_t *len)
{
        size_t cap = 4096, got = 0;
        char *b = malloc(cap);

        while (b) {
                if (got == cap) {
                        char *nb = cap > max ? NULL : realloc(b, cap * 2);
                        if (!nb) {
                                free(b);
                                return cap > max ? -EFBIG : -ENOMEM;
                        }
                        b = nb;
                        cap *= 2;
                }
                ssize_t k = pread(fd, b + got, cap - got, got);
                if (k < 0) {
                        free(b);
                        return -errno;
                }
                if (!k)
                        break;
                got += k;
        }
        if (!b)
                return -ENOMEM;
        if (got > max) {
                free(b);
                return -EFBIG;
        }
        *buf = b;
        *len = got;
        return 0;
}

static bool has_xattr(const struct nono_node *n, const char *name)
{
        for (size_t i = 0; i < n->n_xattrs; i++)
                if (!strcmp(n->xattrs[i].name, name))
                        return true;
        return false;
}

static int apply_xattrs(int fd_opath, const struct nono_node *n)
{
        char p[64], names[65536];
        ssize_t len, off;

        proc_path(fd_opath, p);
        len = listxattr(p, names, sizeof names);
        if (len < 0 && errno != ENOTSUP)
                return -errno;
        for (off = 0; len > 0 && off < len; off += strlen(names + off) + 1)
                if (!has_xattr(n, names + off) && removexattr(p, names + off) < 0 && errno != ENODATA &&
                    !strncmp(names + off, "user.", 5))
                        return -errno;
        for (size_t i = 0; i < n->n_xattrs; i++)
                if (setxattr(p, n->xattrs[i].name, n->xattrs[i].value, n->xattrs[i].len, 0) < 0 &&
                    !(errno == EPERM && strncmp(n->xattrs[i].name, "user.", 5)))
                        return -errno;
        return 0;
}

int rfs_apply_meta(int fd_opath, const struct nono_node *n)
{
        struct stat st;
        int r;

        if (fstat(fd_opath, &st) < 0)
                return -errno;
        if (st.st_uid != n->uid || st.st_gid != n->gid) {
                /* Owner when permitted: an unprivileged user cannot give files away, and that is fine. */
                if (fchownat(fd_opath, "", n->uid, n->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 &&
                    errno != EPERM && errno != EINVAL)
                        return -errno;
        }
        if (S_ISLNK(st.st_mode))
                return 0;
        /* Make sure we can write xattrs (needs the owner's access on some filesystems), then set the mode. */
        r = apply_xattrs(fd_opath, n);
        if (r == -EACCES && st.st_uid == geteuid()) {
                rfs_chmod(fd_opath, st.st_mode | S_IRUSR | S_IWUSR);
                r = apply_xattrs(fd_opath, n);
        }
        if (r < 0)
                return r;
        return rfs_chmod(fd_opath, n->mode);
}

int rfs_apply_times(int parentfd, const char *name, const struct nono_node *n)
{
        struct timespec ts[2] = {
            {.tv_sec = n->atime_ns / 1000000000LL, .tv_nsec = n->atime_ns % 1000000000LL},
            {.tv_sec = n->mtime_ns / 1000000000LL, .tv_nsec = n->mtime_ns % 1000000000LL},
        };

        return utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int rfs_remove_tree(int parentfd, const char *name)
{
        struct stat st;
        DIR *d;
        struct dirent *de;
        int dfd, r = 0;

        if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(parentfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        dfd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 && errno == EACCES && st.st_uid == geteuid()) {
                _cleanup_close_ int p = openat(parentfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (p >= 0)
                        rfs_chmod(p, 0700);
                dfd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (dfd < 0)
                return -errno;
        if ((st.st_mode & 0700) != 0700)
                fchmod(dfd, 0700);
        d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -ENOMEM;
        }
        while (r >= 0 && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        r = rfs_remove_tree(dirfd(d), de->d_name);
        closedir(d);
        if (r < 0)
                return r;
        return unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int rfs_copy_fd(int src, int dst)
{
        char buf[65536];
        loff_t in = 0, outo = 0;

        for (;;) {
                ssize_t k = copy_file_range(src, &in, dst, &outo, 1 << 30, 0);
                if (k == 0)
                        return 0;
                if (k < 0)
                        break;
        }
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                return -errno;
        for (;;) {
                ssize_t k = pread(src, buf, sizeof buf, in);
                if (k < 0)
                        return -errno;
                if (!k)
                        return 0;
                if (pwrite(dst, buf, k, outo) != k)
                        return -EIO;
                in += k;
                outo += k;
        }
}
