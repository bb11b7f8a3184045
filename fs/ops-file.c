/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops-file.c - FUSE handlers for open files and directories: open, create, read, write_buf, flush, release,
 * fsync, fallocate, copy_file_range, lseek, flock, opendir, readdir(plus), releasedir, fsyncdir, and xattrs.
 *
 * Files are reopened from their O_PATH fd through /proc/self/fd (never by name). Reads and writes are
 * counted per handle and recorded once, at release. With the writeback cache the kernel may read from a
 * handle the caller opened write-only and handles O_APPEND itself, so handles are opened O_RDWR without
 * O_APPEND when the file allows it (as passthrough_hp does).
 *
 * CACHE: the kernel keeps a file's pages across opens (keep_cache) and fs/ turns off FUSE_CAP_AUTO_INVAL_DATA
 * (fs.c): with it, every write made the kernel's next getattr see a new mtime and drop the whole page cache
 * of the file, so a file was read back from the daemon right after it was written (and a file changed behind
 * the mount was seen only when some getattr happened to be sent). Instead fs/ gives close-to-open
 * consistency, as NFS does: it notes per inode the (mtime, size) of the file at each open and after each of
 * its own data changes (data_stamp); an open that finds them different (changed by someone else - the
 * user's editor while the agent runs -, or by a truncate or utimes through the mount) drops the kernel's
 * pages (no keep_cache) and its cached attributes. Not covered: a change from outside while the file stays
 * open, one between fs/'s write and its fstat right after, or one that keeps both size and mtime (`cp -p`
 * of an equal-size file).
 *
 * xattrs: the agent may set and remove user.* (and system.posix_acl_* when it owns the file, which the kernel
 * checks); trusted.* and security.* only as uid 0 of the daemon's namespace. This stops an agent in a user
 * namespace from planting a file capability (security.capability) through a root daemon.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <xxhash.h>

#include "fs/cow.h"
#include "fs/fs-internal.h"
#include "fs/ops.h"

static struct fshandle *new_handle(fuse_req_t req, struct fsino *i, int fd, int oflags)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fshandle *h = calloc(1, sizeof(*h));
        const struct fuse_ctx *c = fuse_req_ctx(req);

        if (!h)
                return NULL;
        h->fd = fd;
        h->ino = i;
        h->oflags = (uint32_t)oflags;
        h->pid = (uint32_t)c->pid;
        h->uid = (uint32_t)c->uid;
        if (fs->rec) /* files only: directories have no handles ("LISTINGS") */
                h->path = fsino_path(fs, i);
        pthread_mutex_lock(&fs->lock);
        h->next = fs->handles;
        if (h->next)
                h->next->prev = h;
        fs->handles = h;
        pthread_mutex_unlock(&fs->lock);
        return h;
}

static bool wants_write(int flags)
{
        return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static uint64_t stamp_of(const struct stat *st)
{
        uint64_t k[3] = {(uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_size};
        uint64_t h = XXH3_64bits(k, sizeof(k));
        return h ? h : 1;
}

static uint64_t stamp_now(int fd)
{
        struct stat st;
        return fstat(fd, &st) == 0 ? stamp_of(&st) : 0;
}
/* Unlinks h from fs->handles, records its file event and frees it. */
static void end_handle(struct nono_fs *fs, struct fshandle *h)
{
        pthread_mutex_lock(&fs->lock);
        if (h->prev)
                h->prev->next = h->next;
        else if (fs->handles == h)
                fs->handles = h->next;
        if (h->next)
                h->next->prev = h->prev;
        pthread_mutex_unlock(&fs->lock);
        uint64_t rd = atomic_load(&h->bytes_read), wr = atomic_load(&h->bytes_written);
        uint32_t evf = 0;
        bool read = rd, changed = wr;
        if (h->pt) { /* the kernel read and wrote the file itself: what can be told without counting */
                struct stat st;
                evf = NONO_EVF_UNCOUNTED;
                read = (h->oflags & O_ACCMODE) != O_WRONLY;
                changed =
                    wants_write((int)h->oflags) && (fstat(h->fd, &st) < 0 || stamp_of(&st) != h->pt_stamp);
                if (changed)
                        evf |= NONO_EVF_DATA_CHANGED;
                pt_release(fs, h->ino, true);
        } else if (S_ISREG(h->ino->type)) {
                pt_release(fs, h->ino, false);
        }
        if (fs->rec) {
                rec_event_as(fs, h->pid, h->uid, (h->oflags & O_CREAT) ? NONO_OP_CREATE : NONO_OP_OPEN,
                             h->path ? h->path : "?", 0, evf, h->oflags, rd, wr);
        }
        if (read)
                atomic_fetch_add(&fs->files_read, 1);
        if (changed)
                atomic_fetch_add(&fs->files_changed, 1);
        close(h->fd);
        fsino_forget(fs, h->ino, 1);
        free(h->path);
        free(h);
}

static int open_flags(struct nono_fs *fs, int flags)
{
        flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
        if (fs->writeback && (flags & O_ACCMODE) == O_WRONLY)
                flags = (flags & ~O_ACCMODE) | O_RDWR;
        if (fs->writeback)
                flags &= ~O_APPEND;
        return flags;
}

/* After fs/ changed the file's data through fd: the kernel's pages match the file as it is now. */
static void stamp_after_change(struct fsino *i, int fd)
{
        struct stat st;
        if (fstat(fd, &st) == 0)
                atomic_store_explicit(&i->data_stamp, stamp_of(&st), memory_order_relaxed);
}

/* At open: true when the kernel may keep the pages it has of the file ("CACHE" at the top). */
static bool cache_current(struct nono_fs *fs, fuse_ino_t ino, struct fsino *i, int fd, int flags)
{
        struct stat st;
        if (fs->timeout <= 0 || fstat(fd, &st) < 0)
                return false;
        uint64_t now = stamp_of(&st);
        uint64_t was = atomic_exchange_explicit(&i->data_stamp, now, memory_order_relaxed);
        /* first open of this inode (the kernel has no pages of it yet), unchanged, or truncated by this
         * open (the kernel empties its cache and attributes itself: FUSE_CAP_ATOMIC_O_TRUNC) */
        if (!was || was == now || (flags & O_TRUNC))
                return true;
        /* attributes only (offset -1): the pages go because keep_cache is off for this open */
        (void)fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
        return false;
}

static void set_fi(struct nono_fs *fs, struct fuse_file_info *fi, struct fshandle *h, bool keep)
{
        fi->fh = (uint64_t)(uintptr_t)h;
        fi->keep_cache = keep;
        fi->noflush = !wants_write((int)h->oflags);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        int r = 0, fd;

        thread_prepare();
        if (wants_write(fi->flags))
                r = policy_write(fs, req, NONO_OP_OPEN, i, NULL);
        if (!r && (fi->flags & O_ACCMODE) != O_WRONLY)
                r = policy_read(fs, req, NONO_OP_OPEN, i, (uint32_t)fi->flags);
        if (!r)
                r = -fsino_check_binding(fs, i); /* ESTALE: the kernel looks the name up again and retries */
        if (r)
                return (void)fuse_reply_err(req, r);
        if (fi->flags & O_TRUNC) {
                r = -cow_before_truncate(fs, i, -1, 0);
                if (r)
                        goto fail;
        }
        fd = reopen(i, open_flags(fs, fi->flags));
        if (fd < 0 && (fi->flags & O_ACCMODE) == O_WRONLY && errno == EACCES)
                fd = reopen(i, fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY));
        if (fd < 0) {
                r = errno;
                goto fail;
        }
        struct fshandle *h = new_handle(req, i, fd, fi->flags);
        if (!h) {
                close(fd);
                r = ENOMEM;
                goto fail;
        }
        pthread_mutex_lock(&fs->lock);
        i->nlookup++; /* the handle pins the inode (released in op_release) */
        pthread_mutex_unlock(&fs->lock);
        if (wants_write(fi->flags)) /* the kernel drops its attributes after a write: watch.c need not */
                atomic_store_explicit(&i->served_ctime, 0, memory_order_relaxed);
        if (S_ISREG(i->type))
                h->pt = pt_choose(fs, i, fd, wants_write(fi->flags));
        if (h->pt)
                h->pt_stamp = stamp_now(fd);
        /* a passthrough open leaves the kernel's page cache of the file alone: its stamp stays */
        set_fi(fs, fi, h, !h->pt && cache_current(fs, ino, i, fd, fi->flags));
        int sent = fuse_reply_open(req, fi);
        pt_replied();
        if (sent == -ENOENT) /* interrupted: the kernel will not release it */
                end_handle(fs, h);
        return;
fail:
        event_on(fs, req, NONO_OP_OPEN, i, NULL, NULL, r);
        fuse_reply_err(req, r);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *dir = fsino_get(fs, parent), *i = NULL;
        struct fuse_entry_param e;
        struct stat st;
        int r, fd = -1;

        thread_prepare();
        if (!name_ok(name))
                return (void)fuse_reply_err(req, bad_name(name));
        char *path = fsino_child_path(fs, dir, name);
        r = policy_write(fs, req, NONO_OP_CREATE, NULL, path);
        if (!r && (fi->flags & O_ACCMODE) != O_WRONLY && fs->cfg.n_rules && path &&
            (rules_match(fs->rules, fs->cfg.n_rules, path) & NONO_DENY_READ)) {
                r = EACCES;
                violation(fs, req, NONO_OP_CREATE, NULL, path, r, (uint32_t)fi->flags);
        }
        if (r)
                goto out;
        r = -cow_before_create(fs, dir, name);
        if (r)
                goto out;
        /* O_EXCL always: we record "absent" above, so we must be the ones creating it */
        int fl = open_flags(fs, fi->flags) | O_CREAT | O_EXCL;
        watch_own(fs, dir, name);
        fd = open_beneath(dir->fd, name, fl, mode & 07777);
        if (fd < 0 && errno == EACCES && (fl & O_ACCMODE) == O_RDWR && (fi->flags & O_ACCMODE) == O_WRONLY)
                fd = open_beneath(dir->fd, name, (fl & ~O_ACCMODE) | O_WRONLY, mode & 07777);
        if (fd < 0) {
                r = errno;
                goto out;
        }
        int pfd = open_beneath(dir->fd, name, O_PATH, 0);
        if (pfd < 0 || fstat(fd, &st) < 0) {
                r = errno;
                if (pfd >= 0)
                        close(pfd);
                goto out;
        }
        r = chown_to_caller(fs, req, dir, pfd, &st);
        i = fsino_find_or_add(fs, pfd, &st, dir, name, 0);
        if (!i) {
                r = errno;
                goto out;
        }
        cow_after_create(fs, i);
        struct fshandle *h = new_handle(req, i, fd, fi->flags);
        if (!h) {
                r = ENOMEM;
                fsino_forget(fs, i, 1);
                goto out;
        }
        pthread_mutex_lock(&fs->lock);
        i->nlookup++;
        pthread_mutex_unlock(&fs->lock);
        fd = -1;
        fill_entry(fs, &e, i, &st);
        atomic_store_explicit(&i->served_ctime, 0, memory_order_relaxed); /* as in op_open */
        h->pt = pt_choose(fs, i, h->fd, true);
        if (h->pt)
                h->pt_stamp = stamp_of(&st);
        else
                atomic_store_explicit(&i->data_stamp, stamp_of(&st), memory_order_relaxed);
        set_fi(fs, fi, h, !h->pt && fs->timeout > 0);
        atomic_fetch_add(&fs->files_changed, 1);
out:
        if (r) {
                if (fd >= 0)
                        close(fd);
                if (fs->rec)
                        rec_event(fs, req, NONO_OP_CREATE, path ? path : "?", NULL, r, 0, (uint32_t)fi->flags,
                                  0, 0);
                free(path);
                return (void)fuse_reply_err(req, r);
        }
        free(path);
        int sent = fuse_reply_create(req, &e, fi);
        pt_replied();
        if (sent == -ENOENT) /* interrupted: the kernel will not release it */
                end_handle(fs, (struct fshandle *)(uintptr_t)fi->fh);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
        struct stat st;

        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = h->fd;
        buf.buf[0].pos = off;
        if (fstat(h->fd, &st) == 0 && st.st_size > off)
                atomic_fetch_add(&h->bytes_read,
                                 (uint64_t)(st.st_size - off) < size ? (uint64_t)(st.st_size - off) : size);
        /* Small replies are copied: libfuse 3.14 prints "fuse: splice from pipe: No such file or directory"
         * on the user's terminal when a spliced reply finds its request gone (an agent killed while the
         * kernel read ahead the binary it was running), where the copying path stays silent. Copying up
         * to 128 KiB is a few microseconds; large reads, where the copy would show, keep the splice. */
        fuse_reply_data(req, &buf, size <= (128u << 10) ? FUSE_BUF_NO_SPLICE : FUSE_BUF_SPLICE_MOVE);
}

#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x00000020 /* Linux 6.9 */
#endif

/* A page written back from a shared mapping (the kernel marks it writepage) belongs at its offset, but the
 * kernel may send it through any writable handle of the file, also one opened with O_APPEND, where a plain
 * pwrite would append it at the end of the file (found by test-fs-fuzz: a file grew by a page after an
 * msync). pwritev2(RWF_NOAPPEND) writes at the offset; before Linux 6.9, a second open of the same file. */
static ssize_t write_page_noappend(int fd, struct fuse_bufvec *in, off_t off, size_t len)
{
        char *buf = malloc(len ? len : 1);
        struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);
        ssize_t n;

        if (!buf)
                return -ENOMEM;
        mem.buf[0].mem = buf;
        n = fuse_buf_copy(&mem, in, 0);
        if (n >= 0) {
                struct iovec v = {.iov_base = buf, .iov_len = (size_t)n};
                ssize_t w = pwritev2(fd, &v, 1, off, RWF_NOAPPEND);
                if (w < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
                        int own = reopen_fd(fd, O_WRONLY);
                        w = own < 0 ? -1 : pwrite(own, buf, (size_t)n, off);
                        if (own >= 0)
                                close(own);
                }
                n = w < 0 ? -errno : w;
        }
        free(buf);
        return n;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;
        size_t len = fuse_buf_size(in);
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);

        int r = cow_before_data(fs, h->ino, h->fd, (uint64_t)off, len);
        if (r < 0)
                return (void)fuse_reply_err(req, -r);
        ssize_t n;
        if (fi->writepage && (fcntl(h->fd, F_GETFL) & O_APPEND))
                n = write_page_noappend(h->fd, in, off, len);
        else {
                out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
                out.buf[0].fd = h->fd;
                out.buf[0].pos = off;
                n = fuse_buf_copy(&out, in, 0);
        }
        if (n < 0)
                return (void)fuse_reply_err(req, (int)-n);
        atomic_fetch_add(&h->bytes_written, (uint64_t)n);
        stamp_after_change(h->ino, h->fd);
        fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;
        /* close() of a dup reports delayed write errors (NFS-style) without closing our handle */
        int fd = dup(h->fd);
        int r = fd >= 0 && close(fd) < 0 ? errno : 0;
        fuse_reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        end_handle(fs, (struct fshandle *)(uintptr_t)fi->fh);
        fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;
        loop_may_block(fuse_req_userdata(req)); /* a disk flush: let another worker read meanwhile */
        int r = (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0 ? errno : 0;
        fuse_reply_err(req, r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;

        /* collapse and insert move every byte after off: all of them are the affected range */
        int r = (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))
                    ? -cow_before_data(fs, h->ino, h->fd, (uint64_t)off, UINT64_MAX - (uint64_t)off)
                    : -cow_before_data(fs, h->ino, h->fd, (uint64_t)off, (uint64_t)len);
        if (!r && fallocate(h->fd, mode, off, len) < 0)
                r = errno;
        if (!r)
                stamp_after_change(h->ino, h->fd);
        event_on(fs, req, NONO_OP_FALLOCATE, h->ino, NULL, NULL, r);
        fuse_reply_err(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len,
                               int flags)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fshandle *hi = (struct fshandle *)(uintptr_t)fi_in->fh;
        struct fshandle *ho = (struct fshandle *)(uintptr_t)fi_out->fh;

        int r = -cow_before_data(fs, ho->ino, ho->fd, (uint64_t)off_out, len);
        if (r) {
                event_on(fs, req, NONO_OP_COPY_RANGE, ho->ino, NULL, NULL, r);
                return (void)fuse_reply_err(req, r);
        }
        loff_t a = off_in, b = off_out;
        ssize_t n = copy_file_range(hi->fd, &a, ho->fd, &b, len, (unsigned)flags);
        if (n < 0)
                return (void)fuse_reply_err(req, errno);
        atomic_fetch_add(&hi->bytes_read, (uint64_t)n);
        atomic_fetch_add(&ho->bytes_written, (uint64_t)n);
        stamp_after_change(ho->ino, ho->fd);
        fuse_reply_write(req, (size_t)n);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;
        off_t r = lseek(h->fd, off, whence);
        if (r < 0)
                return (void)fuse_reply_err(req, errno);
        fuse_reply_lseek(req, r);
}

static void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
        struct fshandle *h = (struct fshandle *)(uintptr_t)fi->fh;
        /* may wait for another process's unlock: a request this worker cannot read meanwhile */
        if ((op & (LOCK_SH | LOCK_EX)) && !(op & LOCK_NB))
                loop_may_block(fuse_req_userdata(req));
        fuse_reply_err(req, flock(h->fd, op) < 0 ? errno : 0);
}

/* ---- directories ---------------------------------------------------------------------------------- */

/*
 * LISTINGS: fs/ answers OPENDIR with ENOSYS, which tells the kernel (5.1+, FUSE_CAP_NO_OPENDIR_SUPPORT) to
 * open and release directories by itself from then on, and to keep their listings cached (FOPEN_CACHE_DIR,
 * FOPEN_KEEP_CACHE are the defaults it then takes). An opendir() and its closedir() were two round trips to
 * fs/ per directory listed even when the listing came from the kernel's cache: `git status` on a settled
 * repository of 100 directories spent most of its time above native on them. A READDIR now comes without a
 * handle (fh 0); fs/ opens the directory for it from the inode's O_PATH fd and, when the listing is not
 * finished, parks the stream in one of NONO_FS_DIRSTREAMS slots so that the next READDIR at that offset goes
 * on from it (a slot holds an fd and a reference to the inode; the least recently used is closed when all
 * are taken, and a READDIR at any other offset opens a stream of its own and seeks).
 *
 * Rules and audit: the deny rules are checked at every READDIR (an agent may seek a directory stream to any
 * offset), and the listing is recorded when fs/ reads it from the start (offset 0). A listing the kernel
 * serves from its cache, unchanged since fs/ last read it, is not recorded again: the audit says that the
 * agent listed the directory, not how often, as for a stat served from the cache. The kernel drops the cached
 * listing when the directory changes, through the mount or behind it (watch.c, fs-internal.h "FRESHNESS").
 */
static void dirstream_close(struct nono_fs *fs, struct dirstream *d)
{
        closedir(d->dir);
        fsino_forget(fs, d->ino, 1);
}

/* The stream of i positioned at off: a parked one, or a new one (0 and *d filled; else an errno). */
static int dirstream_take(struct nono_fs *fs, struct fsino *i, off_t off, struct dirstream *d)
{
        pthread_mutex_lock(&fs->lock);
        for (int k = 0; k < NONO_FS_DIRSTREAMS; k++) {
                if (fs->dirs[k].ino == i && fs->dirs[k].off == off) {
                        *d = fs->dirs[k];
                        fs->dirs[k].ino = NULL;
                        pthread_mutex_unlock(&fs->lock);
                        return 0;
                }
        }
        pthread_mutex_unlock(&fs->lock);
        int fd = reopen_fd(i->fd, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                int e = errno;
                close(fd);
                return e;
        }
        if (off)
                seekdir(dir, off);
        pthread_mutex_lock(&fs->lock);
        i->nlookup++; /* dirstream_close drops it */
        pthread_mutex_unlock(&fs->lock);
        *d = (struct dirstream){.ino = i, .dir = dir, .off = off};
        return 0;
}

/* Parks d for the READDIR that goes on from d->off, closing the least recently used stream if need be. */
static void dirstream_park(struct nono_fs *fs, struct dirstream *d)
{
        struct dirstream old = {0};

        pthread_mutex_lock(&fs->lock);
        int pick = 0;
        for (int k = 0; k < NONO_FS_DIRSTREAMS; k++) {
                if (!fs->dirs[k].ino) {
                        pick = k;
                        break;
                }
                if (fs->dirs[k].used < fs->dirs[pick].used)
                        pick = k;
        }
        old = fs->dirs[pick];
        d->used = ++fs->dirs_clock;
        fs->dirs[pick] = *d;
        pthread_mutex_unlock(&fs->lock);
        if (old.ino)
                dirstream_close(fs, &old);
}

void handles_close_all(struct nono_fs *fs)
{
        for (;;) {
                pthread_mutex_lock(&fs->lock);
                struct fshandle *h = fs->handles;
                pthread_mutex_unlock(&fs->lock);
                if (!h)
                        break;
                end_handle(fs, h);
        }
        for (int k = 0; k < NONO_FS_DIRSTREAMS; k++) {
                pthread_mutex_lock(&fs->lock);
                struct dirstream d = fs->dirs[k];
                fs->dirs[k].ino = NULL;
                pthread_mutex_unlock(&fs->lock);
                if (d.ino)
                        dirstream_close(fs, &d);
        }
}

/* ENOSYS: see LISTINGS. A kernel without FUSE_CAP_NO_OPENDIR_SUPPORT would fail the opendir() with it, so
 * there the open succeeds without a handle, and READDIR works the same way. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);

        (void)ino;
        if (fs->no_opendir)
                return (void)fuse_reply_err(req, ENOSYS);
        fi->fh = 0;
        fi->cache_readdir = 1;
        fi->keep_cache = 1;
        fuse_reply_open(req, fi);
}

static bool hidden(const char *name)
{
        return !strncmp(name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX));
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        struct dirstream ds;

        int err = policy_read(fs, req, NONO_OP_READDIR, i, 0);
        if (err)
                return (void)fuse_reply_err(req, err);
        if (i->fd < 0)
                return (void)fuse_reply_err(req, EBADF);
        err = dirstream_take(fs, i, off, &ds);
        if (err)
                return (void)fuse_reply_err(req, err);
        if (off == 0)
                event_on(fs, req, NONO_OP_READDIR, i, NULL, NULL, 0);

        char *buf = malloc(size), *p = buf;
        size_t rem = size;
        bool end = false;
        if (!buf) {
                dirstream_park(fs, &ds);
                return (void)fuse_reply_err(req, ENOMEM);
        }
        for (;;) {
                if (!ds.pending) {
                        errno = 0;
                        ds.pending = readdir(ds.dir);
                        if (!ds.pending) {
                                err = errno;
                                end = true;
                                break;
                        }
                }
                struct dirent *d = ds.pending;
                off_t next = d->d_off;
                size_t n;
                if (hidden(d->d_name)) {
                        ds.pending = NULL;
                        ds.off = next;
                        continue;
                }
                if (plus) {
                        struct fuse_entry_param e;
                        bool dot = !strcmp(d->d_name, ".") || !strcmp(d->d_name, "..");
                        struct fsino *child = NULL;
                        int lr = dot ? 0 : do_lookup(fs, i, d->d_name, &e, &child);
                        if (lr == ENOENT) {
                                ds.pending = NULL; /* vanished meanwhile */
                                ds.off = next;
                                continue;
                        }
                        if (dot || lr) {
                                /* The name without attributes (node id 0): the kernel lists it and looks it
                                 * up on use, as for a directory the caller may read but not search. */
                                memset(&e, 0, sizeof(e));
                                e.attr.st_ino = d->d_ino;
                                e.attr.st_mode = (mode_t)(d->d_type << 12);
                                child = NULL;
                        }
                        n = fuse_add_direntry_plus(req, p, rem, d->d_name, &e, next);
                        if (n > rem) {
                                if (child)
                                        fsino_forget(fs, child, 1);
                                break;
                        }
                } else {
                        struct stat st = {.st_ino = d->d_ino, .st_mode = (mode_t)(d->d_type << 12)};
                        n = fuse_add_direntry(req, p, rem, d->d_name, &st, next);
                        if (n > rem)
                                break;
                }
                p += n;
                rem -= n;
                ds.pending = NULL;
                ds.off = next;
        }
        if (end)
                dirstream_close(fs, &ds);
        else
                dirstream_park(fs, &ds);
        if (err && p == buf)
                fuse_reply_err(req, err);
        else
                fuse_reply_buf(req, buf, (size_t)(p - buf));
        free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        (void)fi;
        do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
        (void)fi;
        do_readdir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        (void)ino;
        (void)fi;
        fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);

        (void)fi;
        int fd = i->fd < 0 ? -1 : reopen_fd(i->fd, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return (void)fuse_reply_err(req, i->fd < 0 ? EBADF : errno);
        loop_may_block(fs);
        int r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
        close(fd);
        fuse_reply_err(req, r);
}

/* ---- xattrs --------------------------------------------------------------------------------------- */

/* O_PATH fds do not take xattr calls (not even *xattrat with AT_EMPTY_PATH on 6.18), so the object is
 * reached through its /proc/self/fd magic link. The magic link lands on the object the fd holds, also when
 * that object is a symlink (the symlink is not followed further), so symlinks behave as natively: user.*
 * is refused by the kernel, trusted.* works for root. */
static int xpath(struct fsino *i, char *buf, size_t len)
{
        snprintf(buf, len, "/proc/self/fd/%d", i->fd);
        return 0;
}

static int xattr_allowed(fuse_req_t req, const char *name)
{
        if (!strncmp(name, "user.", 5) || !strncmp(name, "system.posix_acl_", 17))
                return 0;
        return fuse_req_ctx(req)->uid == 0 ? 0 : EPERM;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                        int flags)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        char p[64];

        int r = policy_write(fs, req, NONO_OP_SETXATTR, i, NULL);
        if (!r)
                r = xattr_allowed(req, name);
        if (!r)
                r = -cow_before_meta(fs, i);
        if (!r && xpath(i, p, sizeof(p)) < 0)
                r = EPERM;
        if (!r && setxattr(p, name, value, size, flags) < 0)
                r = errno;
        event_on(fs, req, NONO_OP_SETXATTR, i, NULL, NULL, r);
        fuse_reply_err(req, r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        char *buf = size ? malloc(size) : NULL;
        char p[64];

        if (size && !buf)
                return (void)fuse_reply_err(req, ENOMEM);
        ssize_t n = xpath(i, p, sizeof(p)) < 0 ? (errno = ENODATA, -1) : getxattr(p, name, buf, size);
        if (n < 0)
                fuse_reply_err(req, errno);
        else if (!size)
                fuse_reply_xattr(req, (size_t)n);
        else
                fuse_reply_buf(req, buf, (size_t)n);
        free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        char *buf = size ? malloc(size) : NULL;
        char p[64];

        if (size && !buf)
                return (void)fuse_reply_err(req, ENOMEM);
        ssize_t n = xpath(i, p, sizeof(p)) < 0 ? 0 : listxattr(p, buf, size);
        if (n < 0)
                fuse_reply_err(req, errno);
        else if (!size)
                fuse_reply_xattr(req, (size_t)n);
        else
                fuse_reply_buf(req, buf, (size_t)n);
        free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        struct nono_fs *fs = fuse_req_userdata(req);
        struct fsino *i = fsino_get(fs, ino);
        char p[64];

        int r = policy_write(fs, req, NONO_OP_REMOVEXATTR, i, NULL);
        if (!r)
                r = xattr_allowed(req, name);
        if (!r)
                r = -cow_before_meta(fs, i);
        if (!r && xpath(i, p, sizeof(p)) < 0)
                r = EPERM;
        if (!r && removexattr(p, name) < 0)
                r = errno;
        event_on(fs, req, NONO_OP_REMOVEXATTR, i, NULL, NULL, r);
        fuse_reply_err(req, r);
}

void ops_file(struct fuse_lowlevel_ops *o)
{
        o->open = op_open;
        o->create = op_create;
        o->read = op_read;
        o->write_buf = op_write_buf;
        o->flush = op_flush;
        o->release = op_release;
        o->fsync = op_fsync;
        o->fallocate = op_fallocate;
        o->copy_file_range = op_copy_file_range;
        o->lseek = op_lseek;
        o->flock = op_flock;
        o->opendir = op_opendir;
        o->readdir = op_readdir;
        o->readdirplus = op_readdirplus;
        o->releasedir = op_releasedir;
        o->fsyncdir = op_fsyncdir;
        o->setxattr = op_setxattr;
        o->getxattr = op_getxattr;
        o->listxattr = op_listxattr;
        o->removexattr = op_removexattr;
}
