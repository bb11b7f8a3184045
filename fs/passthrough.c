/* SPDX-License-Identifier: Apache-2.0 */
/*
 * passthrough.c - FUSE passthrough: the kernel reads and writes an open file's backing file itself.
 *
 * Why: without it every read() and write() of a file through fs/ is a round trip to this daemon and a
 * second copy of the data in the page cache (the FUSE inode's and the backing file's); sequential data
 * through fs/ ran at 0.4-0.7x native. Linux 6.9+ can pass an open file's reads, writes and mmap straight to
 * a backing file the daemon registered (FUSE_DEV_IOC_BACKING_OPEN, FOPEN_PASSTHROUGH in the open reply),
 * which libfuse 3.14 (Debian bookworm) has no API for. libfuse 3.14 does let a daemon put its own functions
 * between it and /dev/fuse (fuse_session_custom_io): this file sets the FUSE_PASSTHROUGH bit (and the
 * stack depth) in libfuse's INIT reply, and a backing id into the open/create replies that fs/ asked for,
 * and otherwise hands every call to the plain syscalls.
 *
 * When fs/ uses it (ops-file.c asks pt_choose() at each open):
 * - only as root of the initial user namespace: the kernel demands CAP_SYS_ADMIN there to register a
 *   backing file (an unprivileged nono keeps the daemon path, as does any kernel that refuses);
 * - a read-only open always; a writable one only when no pre-image is owed for its data (no --rollback,
 *   or the file was created in this session, or its whole content is already in the store): writes that
 *   bypass the daemon could not be preceded by their pre-image. Everything that is not a read or write of
 *   data (truncate, fallocate, copy_file_range, chmod, rename, ...) still comes to the daemon, with its
 *   pre-image and its event;
 * - the kernel lets an inode be open in one mode at a time (all opens passthrough with one backing file, or
 *   none), so fs/ counts the opens of each inode per mode: an open while the inode is open the other way
 *   takes that way; a writable open that owes a pre-image while the inode is open passthrough first puts
 *   the whole file in the store.
 * What the audit loses: the bytes read and written of a passthrough handle (the kernel does not count
 * them). Its event still says the file was opened, with which flags and by whom, carries
 * NONO_EVF_UNCOUNTED, and NONO_EVF_DATA_CHANGED when the file's size or mtime changed while it was open.
 * NONO_FS_PASSTHROUGH=0 (or nono_fs_config.no_passthrough) keeps every byte on the counted daemon path.
 *
 * Security: the kernel opens the backing file with the daemon's credentials (root) and the agent's open
 * flags, after its own permission check of the agent on the FUSE inode (default_permissions), which is what
 * the daemon path does as well. The registered file is the one fs/ opened fd-relative from the inode's
 * O_PATH fd, so passthrough reaches nothing the daemon path would not. It does not stop anything the daemon
 * path would not either: it changes who copies the bytes, not who may open the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs/cow.h"
#include "fs/fs-internal.h"
#include "fs/ops.h"

/* Linux 6.9 uapi (the system headers are 6.1's): <linux/fuse.h> protocol 7.40. */
#define PT_FUSE_INIT          26u
#define PT_INIT_EXT           (1u << 30) /* fuse_init_in/out.flags: flags2 is meaningful */
#define PT_FLAGS2_PASSTHROUGH (1u << 5)  /* FUSE_PASSTHROUGH = 1ULL << 37 */
#define PT_FOPEN_PASSTHROUGH  (1u << 7)
#define PT_MAX_STACK_DEPTH    2u /* FILESYSTEM_MAX_STACK_DEPTH: backing files may be on overlayfs */
struct pt_backing_map {
        int32_t fd;
        uint32_t flags;
        uint64_t padding;
};
#define PT_IOC_BACKING_OPEN  _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* Offsets in the protocol structs (fuse_in_header 40 bytes, fuse_out_header 16). */
#define IN_OPCODE       4
#define IN_UNIQUE       8
#define IN_HDR          40
#define INIT_IN_FLAGS   12 /* fuse_init_in: major, minor, max_readahead, flags, flags2 */
#define INIT_IN_FLAGS2  16
#define INIT_OUT_FLAGS  12 /* fuse_init_out: ..., flags2 at 32, max_stack_depth at 36 */
#define INIT_OUT_FLAGS2 32
#define INIT_OUT_DEPTH  36
#define INIT_OUT_MIN    40
#define OUT_ERROR       4
#define OUT_UNIQUE      8
#define OPEN_OUT_SIZE   16 /* fh, open_flags, backing_id */
#define ENTRY_OUT_SIZE  128

static uint32_t get32(const void *p)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
}

static void put32(void *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

/* The backing id the reply being sent on this thread must carry (set around fuse_reply_open/create). */
static _Thread_local int32_t reply_backing_id;

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
        struct nono_fs *fs = userdata;
        ssize_t n = read(fd, buf, len);

        /* INIT always arrives this way: libfuse splices requests only once INIT agreed on splicing */
        if (n >= IN_HDR + INIT_IN_FLAGS2 + 4 && get32((char *)buf + IN_OPCODE) == PT_FUSE_INIT) {
                const char *in = (const char *)buf + IN_HDR;
                uint64_t unique;
                memcpy(&unique, (char *)buf + IN_UNIQUE, 8);
                bool offered = (get32(in + INIT_IN_FLAGS) & PT_INIT_EXT) &&
                               (get32(in + INIT_IN_FLAGS2) & PT_FLAGS2_PASSTHROUGH);
                if (offered)
                        atomic_store(&fs->pt_init_unique, unique);
                else
                        atomic_store(&fs->pt_on, false);
        }
        return n;
}

static ssize_t pt_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned flags,
                                 void *userdata)
{
        (void)userdata;
        return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t pt_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned flags,
                              void *userdata)
{
        (void)userdata;
        return splice(fdin, offin, fdout, offout, len, flags);
}

/* INIT's reply: the passthrough bit and the stack depth (libfuse 3.14 sends 0 for both). */
static bool patch_init(struct iovec *iov, int count, char *copy, size_t cap)
{
        if (count != 2 || iov[1].iov_len < INIT_OUT_MIN || iov[1].iov_len > cap)
                return false;
        memcpy(copy, iov[1].iov_base, iov[1].iov_len);
        put32(copy + INIT_OUT_FLAGS, get32(copy + INIT_OUT_FLAGS) | PT_INIT_EXT);
        put32(copy + INIT_OUT_FLAGS2, get32(copy + INIT_OUT_FLAGS2) | PT_FLAGS2_PASSTHROUGH);
        put32(copy + INIT_OUT_DEPTH, PT_MAX_STACK_DEPTH);
        iov[1].iov_base = copy;
        return true;
}

/* An open or create reply: FOPEN_PASSTHROUGH and the backing id in its fuse_open_out. */
static bool patch_open(struct iovec *iov, int count, int32_t id, char *copy, size_t cap)
{
        size_t at;
        if (count != 2 || iov[1].iov_len > cap)
                return false;
        if (iov[1].iov_len == OPEN_OUT_SIZE)
                at = 0;
        else if (iov[1].iov_len == ENTRY_OUT_SIZE + OPEN_OUT_SIZE)
                at = ENTRY_OUT_SIZE;
        else
                return false;
        memcpy(copy, iov[1].iov_base, iov[1].iov_len);
        put32(copy + at + 8, get32(copy + at + 8) | PT_FOPEN_PASSTHROUGH);
        put32(copy + at + 12, (uint32_t)id);
        iov[1].iov_base = copy;
        return true;
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
        struct nono_fs *fs = userdata;
        char copy[256];
        struct iovec v[2];

        if (count == 2 && iov[0].iov_len >= 16 && get32((char *)iov[0].iov_base + OUT_ERROR) == 0) {
                uint64_t unique, init = atomic_load_explicit(&fs->pt_init_unique, memory_order_relaxed);
                memcpy(&unique, (char *)iov[0].iov_base + OUT_UNIQUE, 8);
                v[0] = iov[0], v[1] = iov[1];
                if (init && unique == init) {
                        atomic_store(&fs->pt_init_unique, 0);
                        if (patch_init(v, count, copy, sizeof(copy)))
                                return writev(fd, v, count);
                        atomic_store(&fs->pt_on, false);
                } else if (reply_backing_id > 0 &&
                           patch_open(v, count, reply_backing_id, copy, sizeof(copy))) {
                        return writev(fd, v, count);
                }
        }
        return writev(fd, iov, count);
}

int pt_setup(struct nono_fs *fs)
{
        static const struct fuse_custom_io io = {
            .writev = pt_writev,
            .read = pt_read,
            .splice_receive = pt_splice_receive,
            .splice_send = pt_splice_send,
        };
        /* read first, so that a bad value is named whether or not passthrough could have been used */
        bool wanted = fs_env_flag("NONO_FS_PASSTHROUGH", true);

        atomic_store(&fs->pt_on, false);
        if (!wanted || !fs->is_root_daemon || fs->writeback || fs->cfg.no_passthrough)
                return 0;
        /* libfuse 3.14 takes custom io after the mount as well (it only swaps the fd and the functions),
         * so the mount (or the attached fd) stays libfuse's, unmount included */
        if (fuse_session_custom_io(fs->se, &io, fuse_session_fd(fs->se)) != 0)
                return 0; /* the daemon path, as without passthrough */
        atomic_store(&fs->pt_on, true);
        return 0;
}

/* The whole content of i is in the store, or none is owed: data writes need no daemon. */
static bool data_free(struct nono_fs *fs, struct fsino *i)
{
        return !fs->cfg.preimages || cow_data_free(fs, i);
}

/* Registers fd (open on i's file) as i's backing file (fs->lock held); 0 when the kernel refuses. The kernel
 * opens the file again from this one's path for each passthrough open, with that open's flags, so one
 * registration per inode serves readers and writers alike. */
static int32_t backing_open(struct nono_fs *fs, int fd)
{
        struct pt_backing_map m = {.fd = fd};
        int id = ioctl(fuse_session_fd(fs->se), PT_IOC_BACKING_OPEN, &m);

        if (id > 0)
                return id;
        if (errno != EPERM && errno != ENOTTY && errno != EINVAL)
                return 0;                /* this file only (ELOOP: stacked too deep; EMFILE, ENOMEM, ...) */
        atomic_store(&fs->pt_on, false); /* EPERM: not granted at INIT, or not CAP_SYS_ADMIN */
        return 0;
}

/* A reader passed through makes a later writer that owes a pre-image put the whole file in the store first
 * (see above). So that this never stalls the agent for long, a file that still owes its pre-image is passed
 * through for reading only up to this size (at the reader's open); bigger ones are read through fs/. */
#define PT_OWING_READ_MAX (8ull << 20)

bool pt_choose(struct nono_fs *fs, struct fsino *i, int fd, bool writes)
{
        bool on = atomic_load_explicit(&fs->pt_on, memory_order_relaxed) && S_ISREG(i->type);
        bool owes = on && !data_free(fs, i), pt = false;
        struct stat st;
        bool big = owes && !writes && (fstat(fd, &st) < 0 || (uint64_t)st.st_size > PT_OWING_READ_MAX);
        bool free_ = on && (!writes || !owes);

        pthread_mutex_lock(&fs->lock);
        if (big && !i->pt_opens) /* (open passthrough already, e.g. it grew behind the mount: no choice) */
                free_ = false;
        if (on && !free_ && i->pt_opens) {
                /* open passthrough elsewhere: this open has to be as well, so its pre-image comes first (on
                 * failure it goes the daemon's way, which the kernel refuses with EIO: nothing changes) */
                pthread_mutex_unlock(&fs->lock);
                free_ = cow_before_data(fs, i, -1, 0, UINT64_MAX) == 0;
                pthread_mutex_lock(&fs->lock);
        }
        if (on && free_ && !i->cached_opens && (i->backing_id || (i->backing_id = backing_open(fs, fd))))
                pt = true;
        if (pt) {
                i->pt_opens++;
                atomic_fetch_add_explicit(&fs->passthrough_opens, 1, memory_order_relaxed);
        } else
                i->cached_opens++;
        reply_backing_id = pt ? i->backing_id : 0;
        pthread_mutex_unlock(&fs->lock);
        return pt;
}

void pt_replied(void)
{
        reply_backing_id = 0;
}

void pt_release(struct nono_fs *fs, struct fsino *i, bool pt)
{
        pthread_mutex_lock(&fs->lock);
        if (!pt) {
                if (i->cached_opens)
                        i->cached_opens--;
        } else if (i->pt_opens && !--i->pt_opens && i->backing_id) {
                uint32_t id = (uint32_t)i->backing_id;
                /* the kernel let go of it at its own release, before this one was sent */
                (void)ioctl(fuse_session_fd(fs->se), PT_IOC_BACKING_CLOSE, &id);
                i->backing_id = 0;
        }
        pthread_mutex_unlock(&fs->lock);
}
