/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_apply.c - executes a restore plan (see restore_int.h) step by step. Every step is idempotent
 * with respect to the steps that follow it in the same journal window, so a restore killed anywhere is
 * completed by running it again from the last journaled position:
 *   - a stash move whose source is gone is done;
 *   - a placement from the stash whose stash entry is gone and whose path exists is done;
 *   - content is written either into a finished temporary that is then renamed over the path (whole
 *     pre-images: the user sees the old file or the new one, never half of one) or, for block-level
 *     pre-images and hard-linked files, into the live inode (so untouched blocks and other names stay);
 *     writing the same bytes again is harmless.
 * Durability: syncfs() per root instead of an fsync per file (a SIGKILL loses nothing the kernel already
 * has): before each progress record (every 2048 steps and at each phase), so a record never gets to disk
 * ahead of the steps it lets a re-run skip, and at the end, before the journal is deleted.
 *
 * Cost (a 10,000-file restore, measured with NONO_RESTORE_TIMING=1 and perf): per file, the content,
 * owner, xattrs, mode and times are written into the root's spare temporary in the stash, which is swapped
 * with the path by one RENAME_EXCHANGE; the replaced inode becomes the next spare (see "spare" below), so no
 * inode is allocated or freed per file. What cannot be reused is handed to the reaper (restore_reap.h)
 * before its name is unlinked, so the kernel frees it after the command returns. Progress is an 8-byte
 * store record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "launcher/restore_fs.h"
#include "launcher/restore_int.h"
#include "launcher/restore_reap.h"

#define JOURNAL_EVERY 2048

struct ctx {
        nono_store *st;
        struct rb_plan *p;
        struct rb_reaper *reaper; /* frees replaced inodes after we return (restore_reap.h) */
        bool reaper_failed;
        uint64_t *finished;  /* open-addressing set of nodes whose PLACE also set attributes and times */
        size_t finished_cap; /* a power of two, or 0 */
        int *stash;          /* per root, -1 until made */
        int *spare;          /* per root: O_RDWR fd of the reusable inode at stash/SPARE, -1: none */
        char stash_name[64];
        size_t step; /* index of the running step */
};

static int get_stash(struct ctx *c, uint32_t root);

/* Nodes placed as a finished temporary that already had their mode, owner, xattrs and times when it was
 * renamed in (the user never sees the file with the wrong mode, and the META and TIMES steps, which
 * resolve the path again, are skipped). Memory only: after a kill, the re-run applies them the slow way. */
static void finished_add(struct ctx *c, uint64_t node)
{
        if (!c->finished_cap || !node)
                return;
        for (size_t i = node & (c->finished_cap - 1);; i = (i + 1) & (c->finished_cap - 1))
                if (!c->finished[i] || c->finished[i] == node) {
                        c->finished[i] = node;
                        return;
                }
}

static bool finished_has(const struct ctx *c, uint64_t node)
{
        if (!c->finished_cap)
                return false;
        for (size_t i = node & (c->finished_cap - 1); c->finished[i]; i = (i + 1) & (c->finished_cap - 1))
                if (c->finished[i] == node)
                        return true;
        return false;
}

/* Moves whatever occupies name aside (into the stash) so the pre-image can take its place: something that
 * came back inside a re-attached directory but is not what belongs there. */
static int evict(struct ctx *c, uint32_t root, int parent, const char *name)
{
        char nm[32];
        int sfd = get_stash(c, root);

        if (sfd < 0)
                return sfd;
        snprintf(nm, sizeof nm, "y%zu", c->step);
        if (renameat2(parent, name, sfd, nm, RENAME_NOREPLACE) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* Started at the first inode to free (a fork): a restore that reuses every inode it replaces needs none. */
static struct rb_reaper *reaper(struct ctx *c)
{
        if (!c->reaper && !c->reaper_failed) {
                c->reaper = rb_reaper_start(); /* NULL: replaced inodes are freed at once, slower */
                c->reaper_failed = !c->reaper;
        }
        return c->reaper;
}

/* Unlinks name, a file the restore replaced: its inode goes to the reaper first, so that the cost of
 * freeing it is paid after the restore returns. A directory goes to the stash instead. */
static int drop(struct ctx *c, uint32_t root, int parent, const char *name)
{
        _cleanup_close_ int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
                return evict(c, root, parent, name);
        if (fd >= 0 && st.st_nlink == 1 && reaper(c) && rb_reaper_hold(c->reaper, fd) == 0)
                fd = -1; /* the reaper owns it now */
        return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}

/* Puts the finished temporary tmp in place of name in one rename: RENAME_EXCHANGE when name exists, so
 * the replaced object is left at tmp and can be dropped (freed later) rather than freed by the rename. */
static int replace_with(struct ctx *c, uint32_t root, int parent, const char *tmp, const char *name)
{
        int r;

        if (renameat2(parent, tmp, parent, name, RENAME_EXCHANGE) == 0)
                return drop(c, root, parent, tmp);
        if (errno == ENOENT && renameat2(parent, tmp, parent, name, RENAME_NOREPLACE) == 0)
                return 0;
        if (renameat(parent, tmp, parent, name) == 0)
                return 0;
        if (errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST && errno != ENOTDIR)
                return -errno;
        r = evict(c, root, parent, name);
        if (r < 0 || renameat(parent, tmp, parent, name) < 0)
                return r < 0 ? r : -errno;
        return 0;
}

/* renameat2(NOREPLACE) from the stash, evicting an occupant once. */
static int attach_from(struct ctx *c, uint32_t root, int sfd, const char *sname, int parent, const char *name)
{
        if (renameat2(sfd, sname, parent, name, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EEXIST)
                return -errno;
        int r = evict(c, root, parent, name);
        if (r < 0)
                return r;
        return renameat2(sfd, sname, parent, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
}

/* Links sdir/sname (a file kept by fs/) at parent/name, evicting an occupant once. */
static int link_into(struct ctx *c, uint32_t root, int sdir, const char *sname, int parent, const char *name)
{
        struct stat a, b;

        if (linkat(sdir, sname, parent, name, 0) == 0)
                return 0;
        if (errno != EEXIST)
                return -errno;
        if (fstatat(sdir, sname, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
            fstatat(parent, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
                return 0; /* done by an earlier run */
        int r = evict(c, root, parent, name);
        if (r < 0)
                return r;
        return linkat(sdir, sname, parent, name, 0) < 0 ? -errno : 0;
}

static int get_stash(struct ctx *c, uint32_t root)
{
        int fd;

        if (c->stash[root] >= 0)
                return c->stash[root];
        if (mkdirat(c->p->rootfds[root], c->stash_name, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(c->p->rootfds[root], c->stash_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return c->stash[root] = fd;
}

static int step_openup(struct ctx *c, const struct rb_step *s)
{
        _cleanup_close_ int fd = rfs_open_path(c->p->rootfds[s->root], s->path);
        struct stat st;

        if (fd == -ENOENT)
                return 0;
        if (fd < 0 || fstat(fd, &st) < 0)
                return fd < 0 ? fd : -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                return 0;
        return rfs_chmod(fd, st.st_mode | 0700);
}

static int step_stash(struct ctx *c, const struct rb_step *s)
{
        _cleanup_close_ int parent = -1;
        const char *name;
        int sfd;

        parent = rfs_open_parent(c->p->rootfds[s->root], s->path, &name);
        if (parent == -ENOENT)
                return 0;
        if (parent < 0)
                return parent;
        if (faccessat(parent, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        sfd = get_stash(c, s->root);
        if (sfd < 0)
                return sfd;
        if (renameat2(parent, name, sfd, s->path2, RENAME_NOREPLACE) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

/* Opens the inode behind an O_PATH fd for writing (u+w for the moment it takes if the agent removed it). */
static int open_write(int fd_opath)
{
        char p[64];
        struct stat st;
        int fd;

        if (fstat(fd_opath, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd_opath);
        fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd >= 0 || errno != EACCES)
                return fd < 0 ? -errno : fd;
        if (st.st_uid != geteuid())
                return -EACCES;
        rfs_chmod(fd_opath, st.st_mode | S_IWUSR);
        fd = open(p, O_WRONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd; /* META sets the final mode */
}

/* The node's whole object written into fd at its offset; -ENODATA (with the message) when the store lacks it.
 */
static int get_object(struct ctx *c, const struct nono_node *n, int fd)
{
        if (nono_object_get_fd(c->st, &n->object, fd) < 0) {
                rb_set_err(
                    "the store lacks the pre-image content of a file (%s): run `nono rollback verify %s`",
                    nono_store_errmsg(), c->p->session);
                return -ENODATA;
        }
        return 0;
}

/* Writes the node's recorded content into fd: the whole object, or the captured chunks over what is there. */
static int write_content(struct ctx *c, const struct nono_node *n, int fd, bool whole_over_existing)
{
        int r;

        if (n->complete) {
                if (whole_over_existing && (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0))
                        return -errno;
                if (get_object(c, n, fd) < 0)
                        return -ENODATA;
                /* a fresh temporary has exactly the object's bytes (the object's size is the node's) */
                return whole_over_existing && ftruncate(fd, n->size) < 0 ? -errno : 0;
        }
        char *buf = malloc(NONO_CHUNK_SIZE);
        if (!buf)
                return -ENOMEM;
        r = 0;
        for (size_t i = 0; i < n->n_chunks && r >= 0; i++) {
                size_t len = 0;
                r = nono_chunk_get(c->st, &n->chunks[i].digest, buf, NONO_CHUNK_SIZE, &len);
                if (r < 0) {
                        rb_set_err(
                            "the store lacks a pre-image block of a file: run `nono rollback verify %s`",
                            c->p->session);
                        r = -ENODATA;
                } else if (pwrite(fd, buf, len, (off_t)(n->chunks[i].index * NONO_CHUNK_SIZE)) !=
                           (ssize_t)len)
                        r = -EIO;
        }
        free(buf);
        if (r < 0)
                return r;
        return ftruncate(fd, n->size) < 0 ? -errno : 0;
}

/* Owner (when permitted), xattrs, mode and times of a regular file's temporary, on its open fd: what
 * rfs_apply_meta() and rfs_apply_times() do through the path. cur: its fstat (NULL: we just made it).
 * Returns 1 when all were applied. */
static int finish_tmp_file(int fd, const struct nono_node *n, const struct stat *cur)
{
        struct timespec ts[2] = {{n->atime_ns / 1000000000LL, n->atime_ns % 1000000000LL},
                                 {n->mtime_ns / 1000000000LL, n->mtime_ns % 1000000000LL}};
        uid_t uid = cur ? cur->st_uid : geteuid();
        gid_t gid = cur ? cur->st_gid : getegid();

        if ((n->uid != uid || n->gid != gid) && fchown(fd, n->uid, n->gid) < 0 && errno != EPERM &&
            errno != EINVAL)
                return -errno;
        for (size_t i = 0; i < n->n_xattrs; i++)
                if (fsetxattr(fd, n->xattrs[i].name, n->xattrs[i].value, n->xattrs[i].len, 0) < 0 &&
                    !(errno == EPERM && strncmp(n->xattrs[i].name, "user.", 5)))
                        return -errno;
        if (fchmod(fd, n->mode) < 0 || futimens(fd, ts) < 0)
                return -errno;
        return 1;
}

/* Removes the xattrs a reused inode has and n does not (a new inode has none). */
static int clear_xattrs(int fd, const struct nono_node *n)
{
        char names[65536];
        ssize_t len = flistxattr(fd, names, sizeof names);

        if (len < 0)
                return errno == ENOTSUP ? 0 : -errno;
        for (ssize_t off = 0; off < len; off += strlen(names + off) + 1) {
                bool keep = false;
                for (size_t i = 0; i < n->n_xattrs && !keep; i++)
                        keep = !strcmp(n->xattrs[i].name, names + off);
                if (!keep && fremovexattr(fd, names + off) < 0 && errno != ENODATA &&
                    !strncmp(names + off, "user.", 5))
                        return -errno;
        }
        return 0;
}

/* Remembers a file this process placed (for record_post): its object when it was built from one. */
static void note_placed(struct rb_plan *p, const struct stat *st, const struct nono_node *n)
{
        if (p->n_placed == p->cap_placed) {
                size_t cap = p->cap_placed ? p->cap_placed * 2 : 256;
                struct rb_placed *nv = realloc(p->placed, cap * sizeof *nv);
                if (!nv)
                        return; /* record_post reads the file instead */
                p->placed = nv;
                p->cap_placed = cap;
        }
        p->placed[p->n_placed++] =
            (struct rb_placed){st->st_dev, st->st_ino, n->size, n->object, .object_known = n->complete};
}

/* Builds a finished temporary next to the path: from the live file src (may be -1) and the store. */
static int build_tmp(struct ctx *c, const struct nono_node *n, int parent, const char *tmp, int src_opath)
{
        _cleanup_close_ int fd = -1;
        int r;

        if (n->type != NONO_FT_FILE)
                unlinkat(parent, tmp, 0); /* a leftover of a killed run */
        switch (n->type) {
        case NONO_FT_SYMLINK:
                return symlinkat(n->link_target ? n->link_target : "", parent, tmp) < 0 ? -errno : 0;
        case NONO_FT_FIFO:
                return mknodat(parent, tmp, S_IFIFO | 0600, 0) < 0 ? -errno : 0;
        case NONO_FT_SOCK:
                return mknodat(parent, tmp, S_IFSOCK | 0600, 0) < 0 ? -errno : 0;
        case NONO_FT_FILE:
                break;
        default:
                return -EINVAL;
        }
        fd = openat(parent, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) { /* a leftover of a killed run */
                unlinkat(parent, tmp, 0);
                fd = openat(parent, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return -errno;
        if (!n->complete && src_opath >= 0) {
                _cleanup_close_ int src = rfs_open_read(src_opath);
                if (src < 0)
                        return src;
                r = rfs_copy_fd(src, fd);
                if (r < 0)
                        return r;
        } else if (!n->complete && n->size) {
                return -ENODATA; /* the plan refuses this; defensive */
        }
        r = write_content(c, n, fd, false);
        if (r >= 0)
                r = finish_tmp_file(fd, n, NULL);
        struct stat st;
        if (r > 0 && fstat(fd, &st) == 0)
                note_placed(c->p, &st, n);
        return r;
}

/*
 * Reusing the inodes a restore replaces (the "spare"). Making a new inode for each temporary was most of a
 * 10,000-file restore on ext4 without a journal: its allocator skips every inode freed in the last ~35 s
 * (one buffer lookup each), and a session's own background ingest has just freed thousands, so every
 * allocation scanned thousands of them, and the replaced inodes that a restore frees slowed down the next
 * restore the same way. So one temporary is made per root, in the restore's private stash, as SPARE; each
 * regular file is written there in full (content, owner, xattrs, mode, times) and swapped with the path in
 * one renameat2(RENAME_EXCHANGE), which leaves the replaced object at SPARE; that becomes the temporary of
 * the next file. Nothing is allocated or freed per file.
 *
 * The replaced object is reused only if it is a regular file with one name, ours, that no other process
 * has open: a write lease (F_SETLEASE F_WRLCK), taken and dropped at once, succeeds only when no other
 * open file (or writable shared mapping) refers to the inode. That stops a process that kept the agent's
 * file open from writing into another path's restored content. It does not stop a process that opens the
 * temporary in the 0700 stash by name while the restore runs (as with any temporary). Its content was
 * recorded by the restore session before the journal was written, so overwriting it loses nothing. What
 * is not reused (another type, several names, open elsewhere) is handled as before: a directory is moved
 * aside in the stash, a file goes to the reaper and is unlinked.
 */
#define SPARE "s"

static void spare_close(struct ctx *c, uint32_t root)
{
        if (c->spare[root] >= 0)
                close(c->spare[root]);
        c->spare[root] = -1;
}

/* Whether no other open file refers to fd's inode (see above); false when it cannot tell. */
static bool unshared(int fd)
{
        if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0)
                return false;
        fcntl(fd, F_SETLEASE, F_UNLCK);
        return true;
}

/* Takes over whatever is at stash/SPARE (the object an exchange replaced, or a leftover of a killed run):
 * as the spare, or out of the way. */
static void spare_adopt(struct ctx *c, uint32_t root)
{
        int sfd = c->stash[root];
        _cleanup_close_ int o = openat(sfd, SPARE, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        char nm[32];

        spare_close(c, root);
        if (o < 0 || fstat(o, &st) < 0)
                return;
        if (S_ISREG(st.st_mode) && st.st_nlink == 1) {
                int fd = open_write(o);
                if (fd >= 0 && unshared(fd)) {
                        c->spare[root] = fd;
                        return;
                }
                if (fd >= 0)
                        close(fd);
        }
        if (!S_ISDIR(st.st_mode) && reaper(c) && rb_reaper_hold(c->reaper, o) == 0) {
                o = -1; /* the reaper owns it now */
                unlinkat(sfd, SPARE, 0);
                return;
        }
        snprintf(nm, sizeof nm, "y%zu", c->step);
        renameat2(sfd, SPARE, sfd, nm, RENAME_NOREPLACE);
}

/* Writes the regular file n into the spare of root (made when there is none): on return stash/SPARE has
 * exactly n's content and attributes. src_opath: the base content of a block-level node (may be -1). */
static int fill_spare(struct ctx *c, uint32_t root, const struct nono_node *n, int src_opath)
{
        int sfd = c->stash[root], fd, r;

        if (c->spare[root] < 0)
                spare_adopt(c, root);
        if (c->spare[root] < 0) {
                unlinkat(sfd, SPARE, 0); /* something we could not take over */
                fd = openat(sfd, SPARE, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                c->spare[root] = fd;
        }
        fd = c->spare[root];
        if (!n->complete) {
                if (src_opath < 0 && n->size)
                        return -ENODATA; /* the plan refuses this; defensive */
                if (ftruncate(fd, 0) < 0)
                        return -errno;
                if (src_opath >= 0) {
                        _cleanup_close_ int src = rfs_open_read(src_opath);
                        if (src < 0)
                                return src;
                        r = rfs_copy_fd(src, fd);
                        if (r < 0)
                                return r;
                }
                r = write_content(c, n, fd, false);
        } else {
                /* over the old bytes, then cut to size: no block is freed and allocated again */
                if (lseek(fd, 0, SEEK_SET) < 0)
                        return -errno;
                if (get_object(c, n, fd) < 0)
                        return -ENODATA;
                r = ftruncate(fd, n->size) < 0 ? -errno : 0;
        }
        struct stat st;
        if (r >= 0 && fstat(fd, &st) < 0)
                r = -errno;
        if (r >= 0)
                r = clear_xattrs(fd, n);
        if (r >= 0)
                r = finish_tmp_file(fd, n, &st);
        if (r > 0)
                note_placed(c->p, &st, n);
        return r;
}

/* Puts regular file n at name through the spare. 1: done; 0: this filesystem cannot (no RENAME_EXCHANGE,
 * or the path is on another filesystem than the stash): the caller makes a temporary next to it. */
static int place_via_spare(struct ctx *c, const struct rb_step *s, const struct nono_node *n, int parent,
                           const char *name, int src_opath)
{
        int sfd = get_stash(c, s->root), r;

        if (sfd < 0)
                return sfd;
        r = fill_spare(c, s->root, n, src_opath);
        if (r < 0)
                return r;
        if (renameat2(sfd, SPARE, parent, name, RENAME_EXCHANGE) == 0) {
                finished_add(c, s->node);
                spare_adopt(c, s->root);
                return 1;
        }
        if (errno == ENOENT && renameat2(sfd, SPARE, parent, name, RENAME_NOREPLACE) == 0) {
                finished_add(c, s->node);
                spare_close(c, s->root); /* it is the file now */
                return 1;
        }
        if (errno == EXDEV || errno == EINVAL || errno == ENOTSUP)
                return 0;
        return -errno;
}

static int place_file_like(struct ctx *c, const struct rb_step *s, const struct nono_node *n, int parent,
                           const char *name)
{
        _cleanup_close_ int src = -1;
        char tmp[64], hname[32];
        int sfd = -1, r;
        bool from_stash = s->how == RB_FROM_STASH;

        if (from_stash) {
                sfd = get_stash(c, s->root);
                if (sfd < 0)
                        return sfd;
                src = openat(sfd, s->path2, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (src < 0 && errno == ENOENT && faccessat(parent, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        return 0; /* done by an earlier run */
                if (src < 0)
                        return -errno;
        } else if (s->how == RB_FROM_FSLINK) {
                src = rb_fs_hlink_entry(c->p, s->root, s->node, hname);
                if (src == -ENOENT && faccessat(parent, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        return 0; /* done by an earlier run, whose clean-up removed the entry */
                if (src < 0)
                        return src;
        } else if (s->how == RB_INPLACE && !(n->type == NONO_FT_FILE && n->complete && n->nlink <= 1)) {
                /* the live inode matters unless a whole object replaces a single-named file */
                src = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
        /* a block-level node's base content: fs/'s stash entry when there is one, else the live file */
        _cleanup_close_ int fsst =
            n->type == NONO_FT_FILE && !n->complete ? rb_fs_stash_entry(c->p, s->root, s->node) : -1;
        if (n->type == NONO_FT_FILE && !n->complete && n->size && src < 0 && fsst < 0)
                return -ENODATA;
        /* In place: block-level pre-images (only changed blocks are in the store) and hard-linked files. */
        if (n->type == NONO_FT_FILE && src >= 0 && (!n->complete || n->nlink > 1)) {
                _cleanup_close_ int w = open_write(src);
                struct stat a, b;
                if (w < 0)
                        return w;
                if (fsst >= 0 && fstat(fsst, &a) == 0 && fstat(src, &b) == 0 &&
                    (a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
                        _cleanup_close_ int base = rfs_open_read(fsst);
                        if (base < 0 || ftruncate(w, 0) < 0)
                                return base < 0 ? base : -errno;
                        r = rfs_copy_fd(base, w);
                        if (r < 0)
                                return r;
                }
                r = write_content(c, n, w, true);
                if (r < 0)
                        return r;
                if (s->how == RB_FROM_FSLINK)
                        return link_into(c, s->root, c->p->fsstash[s->root], hname, parent, name);
                return from_stash ? attach_from(c, s->root, sfd, s->path2, parent, name) : 0;
        }
        if (n->type == NONO_FT_FILE || !from_stash) {
                if (s->how == RB_INPLACE && n->type == NONO_FT_SYMLINK && src >= 0) {
                        char buf[4096];
                        ssize_t l = readlinkat(src, "", buf, sizeof buf - 1);
                        if (l >= 0 && (buf[l] = 0, !strcmp(buf, n->link_target ? n->link_target : "")))
                                return 0;
                }
                if (s->how == RB_INPLACE && (n->type == NONO_FT_FIFO || n->type == NONO_FT_SOCK) && src >= 0)
                        return 0;
                if (n->type == NONO_FT_FILE) {
                        r = place_via_spare(c, s, n, parent, name, fsst >= 0 ? fsst : src);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                if (from_stash)
                                        drop(c, s->root, sfd, s->path2);
                                return 0;
                        }
                }
                snprintf(tmp, sizeof tmp, RB_TMP_PREFIX "%llu", (unsigned long long)s->node);
                r = build_tmp(c, n, parent, tmp, fsst >= 0 ? fsst : src);
                if (r < 0)
                        return r;
                bool finished = r == 1;
                r = replace_with(c, s->root, parent, tmp, name);
                if (r < 0)
                        return r;
                if (finished)
                        finished_add(c, s->node);
                if (from_stash)
                        drop(c, s->root, sfd, s->path2);
                return 0;
        }
        /* symlink, fifo or socket coming back from the stash */
        return attach_from(c, s->root, sfd, s->path2, parent, name);
}

static int place_dir(struct ctx *c, const struct rb_step *s, int parent, const char *name)
{
        struct stat st;

        if (s->how == RB_FROM_STASH) {
                int sfd = get_stash(c, s->root);
                if (sfd < 0)
                        return sfd;
                if (faccessat(sfd, s->path2, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        return attach_from(c, s->root, sfd, s->path2, parent, name);
                if (errno != ENOENT)
                        return -errno;
                /* gone from the stash: attached by an earlier run */
        } else if (s->how == RB_FRESH) {
                if (mkdirat(parent, name, 0700) == 0)
                        return 0;
                if (errno != EEXIST)
                        return -errno;
                if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
                        int r = evict(c, s->root, parent, name);
                        if (r < 0)
                                return r;
                        return mkdirat(parent, name, 0700) < 0 ? -errno : 0;
                }
        }
        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int step_place(struct ctx *c, const struct rb_step *s)
{
        _cleanup_close_ int parent = -1;
        struct nono_node n = {0};
        const char *name;
        int r;

        if (!*s->path)
                return 0; /* the root itself stays; META and TIMES restore its attributes */
        r = nono_node_get(c->st, c->p->session, s->node, &n);
        if (r < 0) {
                rb_set_err("the pre-image of %s is missing from the store: run `nono rollback verify %s`",
                           s->path, c->p->session);
                return -ENODATA;
        }
        parent = rfs_open_parent(c->p->rootfds[s->root], s->path, &name);
        if (parent < 0)
                r = parent;
        else if (n.type == NONO_FT_DIR)
                r = place_dir(c, s, parent, name);
        else
                r = place_file_like(c, s, &n, parent, name);
        nono_node_clear(&n);
        return r;
}

static int step_link(struct ctx *c, const struct rb_step *s)
{
        _cleanup_close_ int p1 = -1, p2 = -1;
        const char *n1, *n2;
        struct stat a, b;

        p2 = rfs_open_parent(c->p->rootfds[s->root], s->path2, &n2);
        p1 = rfs_open_parent(c->p->rootfds[s->root], s->path, &n1);
        if (p1 < 0 || p2 < 0)
                return p1 < 0 ? p1 : p2;
        if (linkat(p2, n2, p1, n1, 0) == 0)
                return 0;
        if (errno != EEXIST)
                return -errno;
        if (fstatat(p1, n1, &a, AT_SYMLINK_NOFOLLOW) < 0 || fstatat(p2, n2, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (a.st_ino == b.st_ino && a.st_dev == b.st_dev)
                return 0;
        if (S_ISDIR(a.st_mode))
                return -EISDIR;
        /* a leftover of a killed run: replace it by the link */
        char tmp[64];
        snprintf(tmp, sizeof tmp, RB_TMP_PREFIX "l%llu", (unsigned long long)s->node);
        unlinkat(p1, tmp, 0);
        if (linkat(p2, n2, p1, tmp, 0) < 0 || renameat(p1, tmp, p1, n1) < 0)
                return -errno;
        return 0;
}

static int step_meta(struct ctx *c, const struct rb_step *s, bool times)
{
        struct nono_node n = {0};
        int r;

        if (finished_has(c, s->node))
                return 0;
        r = nono_node_get(c->st, c->p->session, s->node, &n);

        if (r < 0)
                return -ENODATA;
        if (!times) {
                _cleanup_close_ int fd = rfs_open_path(c->p->rootfds[s->root], s->path);
                r = fd < 0 ? fd : rfs_apply_meta(fd, &n);
        } else if (!*s->path) {
                _cleanup_close_ int d =
                    openat(c->p->rootfds[s->root], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                struct timespec ts[2] = {{n.atime_ns / 1000000000LL, n.atime_ns % 1000000000LL},
                                         {n.mtime_ns / 1000000000LL, n.mtime_ns % 1000000000LL}};
                r = d < 0 ? -errno : futimens(d, ts) < 0 ? -errno : 0;
        } else {
                _cleanup_close_ int parent = -1;
                const char *name;
                parent = rfs_open_parent(c->p->rootfds[s->root], s->path, &name);
                r = parent < 0 ? parent : rfs_apply_times(parent, name, &n);
        }
        nono_node_clear(&n);
        return r;
}

/* A full restore removes fs/'s h<node> names (fs/cow.c "Hard links"): the recorded names are the
 * inode's again, and its link count is the start one. A partial restore keeps them for the rest. */
static void drop_hlinks(struct ctx *c, uint32_t root)
{
        int sd = c->p->fsstash && root < c->p->n_roots ? c->p->fsstash[root] : -1;
        int dfd = sd >= 0 ? openat(sd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;

        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                return;
        }
        while ((de = readdir(d)))
                if (de->d_name[0] == 'h' && de->d_name[1] >= '0' && de->d_name[1] <= '9')
                        unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        /* and the directory, when nothing else is left in it (beside the root, else inside it) */
        char name[128];
        snprintf(name, sizeof name, RB_FS_STASH_PREFIX "%s.%u", c->p->session, root);
        int rootfd = c->p->rootfds[root];
        _cleanup_close_ int parent = rootfd >= 0 && !c->p->filebase[root]
                                         ? openat(rootfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC)
                                         : -1;
        if ((parent < 0 || unlinkat(parent, name, AT_REMOVEDIR) < 0) && rootfd >= 0)
                unlinkat(rootfd, name, AT_REMOVEDIR);
}

static int step_clean(struct ctx *c, const struct rb_step *s)
{
        if (c->p->full)
                drop_hlinks(c, s->root);
        if (c->p->rootfds[s->root] < 0)
                return 0;
        spare_close(c, s->root);
        if (c->stash[s->root] >= 0) {
                close(c->stash[s->root]);
                c->stash[s->root] = -1;
        }
        return rfs_remove_tree(c->p->rootfds[s->root], c->stash_name);
}

static int step_roottimes(struct ctx *c, const struct rb_step *s)
{
        long long a = 0, m = 0;
        _cleanup_close_ int o = rfs_open_path(c->p->rootfds[s->root], s->path);
        _cleanup_close_ int d = o >= 0 ? openat(o, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        struct timespec ts[2];

        if (o == -ENOENT)
                return 0; /* gone (a directory the restore itself removed) */
        if (d < 0 || !s->path2 || sscanf(s->path2, "%lld %lld", &a, &m) != 2)
                return d < 0 ? -errno : -EINVAL;
        ts[0] = (struct timespec){a / 1000000000LL, a % 1000000000LL};
        ts[1] = (struct timespec){m / 1000000000LL, m % 1000000000LL};
        return futimens(d, ts) < 0 ? -errno : 0;
}

static int step_rewrite(struct ctx *c, const struct rb_step *s)
{
        struct nono_node n = {0};
        int sfd = get_stash(c, s->root), r;

        if (sfd < 0)
                return sfd;
        _cleanup_close_ int o = openat(sfd, s->path2, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (o < 0)
                return errno == ENOENT ? 0 : -errno; /* cleaned up by an earlier run */
        r = nono_node_get(c->st, c->p->session, s->node, &n);
        if (r < 0)
                return -ENODATA;
        _cleanup_close_ int w = open_write(o);
        r = w < 0 ? w : write_content(c, &n, w, true);
        if (r >= 0)
                r = rfs_apply_meta(o, &n);
        if (r >= 0) {
                struct timespec ts[2] = {{n.atime_ns / 1000000000LL, n.atime_ns % 1000000000LL},
                                         {n.mtime_ns / 1000000000LL, n.mtime_ns % 1000000000LL}};
                r = futimens(w, ts) < 0 ? -errno : 0;
        }
        nono_node_clear(&n);
        return r;
}

static int run_step(struct ctx *c, const struct rb_step *s)
{
        if (s->op != RB_PHASE && s->op != RB_CLEAN && c->p->rootfds[s->root] < 0)
                return -ENOENT;
        switch (s->op) {
        case RB_OPENUP:
                return step_openup(c, s);
        case RB_STASH:
                return step_stash(c, s);
        case RB_PLACE:
                return step_place(c, s);
        case RB_LINK:
                return step_link(c, s);
        case RB_META:
                return step_meta(c, s, false);
        case RB_TIMES:
                return step_meta(c, s, true);
        case RB_CLEAN:
                return step_clean(c, s);
        case RB_PHASE:
                return 0;
        case RB_ROOTTIMES:
                return step_roottimes(c, s);
        case RB_REWRITE:
                return step_rewrite(c, s);
        default:
                return -EINVAL;
        }
}

/* syncfs() needs an fd that is open for real: on the O_PATH fds the plan holds it fails with EBADF. */
static int sync_root(const struct rb_plan *p, size_t root)
{
        _cleanup_close_ int d = openat(p->rootfds[root], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (d < 0 || syncfs(d) < 0) {
                rb_set_err("cannot flush the restored files of %s to disk: %s; run the same restore again",
                           p->roots[root], strerror(errno));
                return -errno;
        }
        return 0;
}

static const char *op_name(uint8_t op)
{
        static const char *n[] = {"",      "open up",           "move aside",   "restore",
                                  "link",  "set attributes of", "set times of", "clean up",
                                  "phase", "set times of",      "restore"};
        return op < 11 ? n[op] : "?";
}

int rb_apply(nono_store *st, struct rb_plan *p, bool progress)
{
        int stash[p->n_roots + 1], spare[p->n_roots + 1];
        struct ctx c = {.st = st, .p = p, .stash = stash, .spare = spare};
        size_t last_pct = SIZE_MAX;
        /* Test hook: SIGKILL ourselves after this many steps, so crash tests hit exact points, not timings.
         */
        const char *kill_env = getenv("NONO_TEST_RESTORE_KILL_AFTER");
        long kill_after = kill_env ? strtol(kill_env, NULL, 10) : -1, executed = 0;
        int r = 0;

        for (size_t i = 0; i <= p->n_roots; i++)
                stash[i] = spare[i] = -1;
        for (c.finished_cap = 16; c.finished_cap < 2 * (p->n_steps - p->done); c.finished_cap *= 2)
                ;
        c.finished = calloc(c.finished_cap, sizeof *c.finished);
        if (!c.finished)
                c.finished_cap = 0; /* the slow way */
        snprintf(c.stash_name, sizeof c.stash_name, RB_STASH_PREFIX "%s", p->session);
        for (size_t i = p->done; i < p->n_steps; i++) {
                const struct rb_step *s = &p->steps[i];
                c.step = i;
                r = run_step(&c, s);
                if (kill_after >= 0 && ++executed > kill_after)
                        raise(SIGKILL);
                if (r < 0) {
                        if (!*nono_restore_errmsg())
                                rb_set_err("cannot %s %s/%s: %s; fix that and run the same restore again to "
                                           "complete it",
                                           op_name(s->op), p->roots[s->root], s->path, strerror(-r));
                        break;
                }
                if (s->op == RB_PHASE || (i + 1) % JOURNAL_EVERY == 0) {
                        /* A progress record lets a re-run skip these steps, so what they did must be on disk
                         * first: after a power loss (not a kill: the kernel keeps what it has), a record
                         * ahead of the data would leave skipped files in neither state. */
                        for (size_t k = 0; k < p->n_roots && r >= 0; k++)
                                if (p->rootfds[k] >= 0)
                                        r = sync_root(p, k);
                        if (r < 0)
                                break;
                        p->done = i + 1;
                        r = nono_journal_progress_put(st, p->session, p->done);
                        if (r < 0) {
                                rb_set_err("cannot record the restore's progress: %s", nono_store_errmsg());
                                break;
                        }
                }
                if (progress && p->n_steps >= 200) {
                        size_t pct = (i + 1) * 100 / p->n_steps;
                        if (pct != last_pct)
                                fprintf(stderr, "\rnono: restoring %zu%% (%zu/%zu)", pct, i + 1, p->n_steps);
                        last_pct = pct;
                }
        }
        if (progress && p->n_steps >= 200)
                fputc('\n', stderr);
        rb_timing("apply steps");
        for (size_t i = 0; i < p->n_roots; i++) {
                spare_close(&c, i);
                if (stash[i] >= 0)
                        close(stash[i]);
                if (r >= 0 && p->rootfds[i] >= 0)
                        r = sync_root(p, i);
        }
        rb_reaper_stop(c.reaper);
        free(c.finished);
        if (r >= 0)
                p->done = p->n_steps;
        return r;
}
