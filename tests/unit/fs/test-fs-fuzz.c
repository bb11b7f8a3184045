/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-fuzz.c - randomized differential conformance: random sequences of file-system calls run, step by
 * step, on a plain directory and on a directory served through fs/, and every step must give the same result
 * (return value, errno, bytes read, stat fields, listings, link targets, xattrs). The scenarios of
 * test-fs-ops.c pin known cases; this finds the combinations nobody wrote down (an open handle used after
 * its name was renamed over, O_APPEND after a truncate through another handle, a punch hole next to an
 * O_TRUNC, ...), which is what an external POSIX conformance suite run against the mount does.
 *
 * It runs twice: recording only (no store), and with write-ahead pre-images into a real store, because
 * pre-image capture moves inodes aside and must stay invisible.
 *
 * Not compared: st_ino and st_dev (the mount is another device; st_ino equality has its own test), atime
 * (relatime on the backing filesystem and the kernel's page cache of the FUSE file decide differently when
 * a read reaches the disk), ctime and mtime unless set explicitly with utimensat (the clocks of two runs
 * differ), and directory sizes (ext4 grows a directory by blocks as entries come and go).
 *
 * Seeds: NONO_TEST_SEEDS (default 40) sequences of 160 steps; NONO_TEST_SEED=N runs just seed N. A failure
 * prints the seed, the step and the last steps before it; NONO_FUZZ_TRACE=1 prints every step.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#ifdef NONO_HAVE_STORE
#include "store/store.h"
#endif

#define NSLOT  4
#define NSTEPS 160

static const char *const NAMES[] = {"a", "b", "c", "d", "d/a", "d/b", "d/e", "d/e/a", "e", "e/a", "d/e/b"};
#define NNAMES (sizeof(NAMES) / sizeof(*NAMES))
static const char *const TARGETS[] = {"a", "../a", "d", "missing", "d/../b", "e/a"};
static const mode_t MODES[] = {0644, 0600, 0755, 0444, 0000, 0700, 04755, 0666, 0777, 01777, 02775, 06777};
static const uid_t IDS[] = {0, 65534, (uid_t)-1};
static const off_t OFFS[] = {0, 1, 100, 4095, 4096, 65536, 200000, 1 << 20};
static const size_t LENS[] = {0, 1, 10, 4096, 5000, 65536, 70000};
static const struct timespec TIMES[] = {{1000000000, 0}, {1200000000, 123456789}, {0, UTIME_OMIT}};

enum op_kind {
        OP_OPEN,
        OP_CLOSE,
        OP_WRITE,
        OP_PWRITE,
        OP_READ,
        OP_PREAD,
        OP_LSEEK,
        OP_FTRUNCATE,
        OP_TRUNCATE,
        OP_FSTAT,
        OP_LSTAT,
        OP_MKDIR,
        OP_RMDIR,
        OP_UNLINK,
        OP_RENAME,
        OP_LINK,
        OP_SYMLINK,
        OP_READLINK,
        OP_CHMOD,
        OP_FCHMOD,
        OP_UTIMENS,
        OP_SETXATTR,
        OP_GETXATTR,
        OP_LISTXATTR,
        OP_REMOVEXATTR,
        OP_FALLOCATE,
        OP_LIST,
        OP_ACCESS,
        OP_MKFIFO,
        OP_FSYNC,
        OP_COPY_RANGE,
        OP_OPENAT_DIR,
        OP_CHOWN,
        OP_MMAP,
        OP_OTHER,
        OP_N
};

/* One step, drawn once and then run on both sides with the same arguments. */
struct op {
        enum op_kind kind;
        int slot, slot2;
        const char *a, *b, *target;
        int flags;
        mode_t mode;
        off_t off;
        size_t len;
        int whence;
        unsigned char fill;
        struct timespec ts[2];
        uid_t uid;
        gid_t gid;
        enum op_kind sub; /* OP_OTHER: the step run as uid/gid 65534 */
};

struct side {
        const char *root;
        int fd[NSLOT];
        bool unwritten; /* a fallocate made unwritten extents in this sequence */
};

static uint64_t rng_state;
static uint64_t rnd(void)
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}
#define PICK(arr) (arr[rnd() % (sizeof(arr) / sizeof(*arr))])

static struct op draw(void)
{
        static const int accs[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR};
        static const int extra[] = {O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_NOFOLLOW, O_DIRECTORY};
        static const int whences[] = {SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE};
        static const int rflags[] = {0, 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
        static const int fmodes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE};
        struct op o = {.kind = rnd() % OP_N,
                       .slot = rnd() % NSLOT,
                       .slot2 = rnd() % NSLOT,
                       .a = PICK(NAMES),
                       .b = PICK(NAMES),
                       .target = PICK(TARGETS),
                       .mode = PICK(MODES),
                       .off = PICK(OFFS),
                       .len = PICK(LENS),
                       .whence = PICK(whences),
                       .fill = 'A' + rnd() % 26};
        /* creation is common, so that the other steps have something to act on */
        if (o.kind == OP_OPEN || rnd() % 4 == 0) {
                o.kind = OP_OPEN;
                o.flags = PICK(accs);
                for (size_t k = 0; k < sizeof(extra) / sizeof(*extra); k++)
                        if (rnd() % (extra[k] == O_CREAT ? 2 : 7) == 0)
                                o.flags |= extra[k];
        }
        if (o.kind == OP_CHOWN) {
                o.uid = PICK(IDS);
                o.gid = PICK(IDS);
        }
        if (o.kind == OP_OTHER) {
                static const enum op_kind subs[] = {
                    OP_OPEN,  OP_PWRITE,   OP_TRUNCATE, OP_CHMOD,  OP_CHOWN, OP_UTIMENS, OP_UNLINK, OP_RENAME,
                    OP_MKDIR, OP_SETXATTR, OP_LIST,     OP_ACCESS, OP_LINK,  OP_SYMLINK, OP_RMDIR};
                o.sub = PICK(subs);
                o.flags = o.sub == OP_OPEN     ? O_WRONLY | (rnd() % 2 ? O_CREAT : O_TRUNC)
                          : o.sub == OP_ACCESS ? (int)(rnd() % 8)
                                               : 0;
                o.uid = PICK(IDS);
                o.gid = PICK(IDS);
                o.ts[0] = PICK(TIMES);
                o.ts[1] = rnd() % 2 ? PICK(TIMES) : (struct timespec){0, UTIME_NOW};
        }
        if (o.kind == OP_RENAME)
                o.flags = PICK(rflags);
        if (o.kind == OP_FALLOCATE)
                o.flags = PICK(fmodes);
        if (o.kind == OP_ACCESS)
                o.flags = (int)(rnd() % 8);
        if (o.kind == OP_UTIMENS) {
                o.ts[0] = PICK(TIMES);
                o.ts[1] = PICK(TIMES);
                o.flags = rnd() % 2 ? AT_SYMLINK_NOFOLLOW : 0;
        }
        if (o.kind == OP_SETXATTR || o.kind == OP_GETXATTR || o.kind == OP_REMOVEXATTR)
                o.flags =
                    (int)(rnd() % 3); /* which name; for set: 0 plain, 1 XATTR_CREATE, 2 XATTR_REPLACE */
        return o;
}

static const char *time_name(const struct timespec *t)
{
        for (size_t k = 0; k < 2; k++)
                if (t->tv_sec == TIMES[k].tv_sec && t->tv_nsec == TIMES[k].tv_nsec)
                        return k ? "T1" : "T0";
        return "now";
}

static void out(char **o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(char **o, const char *fmt, ...)
{
        char *line = NULL, *n = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&line, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (asprintf(&n, "%s%s", *o ? *o : "", line) < 0)
                abort();
        free(line);
        free(*o);
        *o = n;
}

static void res(char **o, long r)
{
        if (r < 0)
                out(o, " -> %s", strerrorname_np(errno));
        else
                out(o, " -> %ld", r);
}

static void stat_out(char **o, const struct stat *s)
{
        out(o, " type=%o mode=%o nlink=%lu uid=%u gid=%u", s->st_mode & S_IFMT, s->st_mode & 07777,
            (unsigned long)s->st_nlink, s->st_uid, s->st_gid);
        if (!S_ISDIR(s->st_mode))
                out(o, " size=%lld blocks=%lld", (long long)s->st_size, (long long)s->st_blocks);
        /* FIFO data moves through a pipe of the kernel's FUSE inode, which never updates its times
         * (S_NOCMTIME); ext4 updates a FIFO's mtime on every write (docs/fs.md, known differences). */
        if (!S_ISFIFO(s->st_mode))
                out(o, " mtime=%s", time_name(&s->st_mtim));
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
        uint64_t h = 1469598103934665603ull;
        for (size_t k = 0; k < n; k++)
                h = (h ^ p[k]) * 1099511628211ull;
        return h;
}

static void read_out(char **o, ssize_t n, const unsigned char *buf)
{
        if (n < 0)
                out(o, " -> %s", strerrorname_np(errno));
        else
                out(o, " -> %zd bytes %016llx", n, (unsigned long long)fnv(buf, (size_t)n));
}

static const char *xname(int k)
{
        return k == 0 ? "user.a" : k == 1 ? "user.b" : "trusted.t";
}

static void other(struct side *sd, const struct op *o, char **t);

/* Runs one step on one side and appends what a program would observe. */
static void run(struct side *sd, const struct op *o, char **t)
{
        static unsigned char buf[80000], data[80000];
        char pa[600], pb[600];
        int *fd = &sd->fd[o->slot], fd2 = sd->fd[o->slot2];
        struct stat s;
        long r;
        ssize_t n;

        snprintf(pa, sizeof(pa), "%s/%s", sd->root, o->a);
        snprintf(pb, sizeof(pb), "%s/%s", sd->root, o->b);
        memset(data, o->fill, o->len);
        errno = 0;
        switch (o->kind) {
        case OP_OPEN:
                if (*fd >= 0)
                        close(*fd);
                *fd = open(pa, o->flags | O_CLOEXEC | O_NONBLOCK, o->mode); /* a FIFO must not block */
                out(t, "open %d %s %#o %o", o->slot, o->a, o->flags, o->mode);
                res(t, *fd < 0 ? -1 : 0);
                break;
        case OP_CLOSE:
                out(t, "close %d", o->slot);
                r = *fd >= 0 ? close(*fd) : 0;
                *fd = -1;
                res(t, r);
                break;
        case OP_WRITE:
                out(t, "write %d %zu", o->slot, o->len);
                res(t, write(*fd, data, o->len));
                break;
        case OP_PWRITE:
                out(t, "pwrite %d %zu@%lld", o->slot, o->len, (long long)o->off);
                res(t, pwrite(*fd, data, o->len, o->off));
                break;
        case OP_READ:
                out(t, "read %d %zu", o->slot, o->len);
                n = read(*fd, buf, o->len);
                read_out(t, n, buf);
                break;
        case OP_PREAD:
                out(t, "pread %d %zu@%lld", o->slot, o->len, (long long)o->off);
                n = pread(*fd, buf, o->len, o->off);
                read_out(t, n, buf);
                break;
        case OP_LSEEK:
                out(t, "lseek %d %lld %d", o->slot, (long long)o->off, o->whence);
                r = lseek(*fd, o->off, o->whence);
                /* Over unwritten extents ext4 answers SEEK_DATA/SEEK_HOLE from the page cache of the backing
                 * file, which the daemon's reads fill differently from the agent's own readahead. */
                if (sd->unwritten && (o->whence == SEEK_DATA || o->whence == SEEK_HOLE))
                        out(t, " -> (after fallocate: not compared)");
                /* A directory's offset is a cookie, and SEEK_END/DATA/HOLE is answered by the kernel's FUSE
                 * code from i_size, by ext4 from its htree hash range; no daemon sees the call (docs/fs.md,
                 * known differences). */
                else if (fstat(*fd, &s) == 0 && S_ISDIR(s.st_mode))
                        out(t, " -> (directory: not compared)");
                else
                        res(t, r);
                break;
        case OP_FTRUNCATE:
                out(t, "ftruncate %d %lld", o->slot, (long long)o->off);
                res(t, ftruncate(*fd, o->off));
                break;
        case OP_TRUNCATE:
                out(t, "truncate %s %lld", o->a, (long long)o->off);
                res(t, truncate(pa, o->off));
                break;
        case OP_FSTAT:
                out(t, "fstat %d", o->slot);
                r = fstat(*fd, &s);
                res(t, r);
                if (r == 0)
                        stat_out(t, &s);
                break;
        case OP_LSTAT:
                out(t, "lstat %s", o->a);
                r = lstat(pa, &s);
                res(t, r);
                if (r == 0)
                        stat_out(t, &s);
                break;
        case OP_MKDIR:
                out(t, "mkdir %s %o", o->a, o->mode);
                res(t, mkdir(pa, o->mode | 0700)); /* keep directories usable by the test itself */
                break;
        case OP_RMDIR:
                out(t, "rmdir %s", o->a);
                res(t, rmdir(pa));
                break;
        case OP_UNLINK:
                out(t, "unlink %s", o->a);
                res(t, unlink(pa));
                break;
        case OP_RENAME:
                out(t, "rename %s %s %d", o->a, o->b, o->flags);
                res(t, renameat2(AT_FDCWD, pa, AT_FDCWD, pb, (unsigned)o->flags));
                break;
        case OP_LINK:
                out(t, "link %s %s", o->a, o->b);
                res(t, link(pa, pb));
                break;
        case OP_SYMLINK:
                out(t, "symlink %s %s", o->target, o->a);
                res(t, symlink(o->target, pa));
                break;
        case OP_READLINK:
                out(t, "readlink %s", o->a);
                n = readlink(pa, (char *)buf, sizeof(buf) - 1);
                res(t, n);
                if (n >= 0)
                        out(t, " '%.*s'", (int)n, (char *)buf);
                break;
        case OP_CHMOD:
                out(t, "chmod %s %o", o->a, o->mode);
                res(t, chmod(pa, o->mode | (o->mode & 0100 ? 0700 : 0600)));
                break;
        case OP_FCHMOD:
                out(t, "fchmod %d %o", o->slot, o->mode);
                res(t, fchmod(*fd, o->mode));
                break;
        case OP_UTIMENS:
                out(t, "utimensat %s %s %s %d", o->a, time_name(&o->ts[0]), time_name(&o->ts[1]), o->flags);
                res(t, utimensat(AT_FDCWD, pa, o->ts, o->flags));
                break;
        case OP_SETXATTR:
                out(t, "lsetxattr %s %d %zu", o->a, o->flags, o->len % 100);
                res(t, lsetxattr(pa, xname(0), data, o->len % 100,
                                 o->flags == 1   ? XATTR_CREATE
                                 : o->flags == 2 ? XATTR_REPLACE
                                                 : 0));
                break;
        case OP_GETXATTR:
                out(t, "lgetxattr %s %s", o->a, xname(o->flags));
                n = lgetxattr(pa, xname(o->flags), buf, 4096);
                read_out(t, n, buf);
                break;
        case OP_LISTXATTR: {
                out(t, "llistxattr %s", o->a);
                n = llistxattr(pa, (char *)buf, 4096);
                res(t, n);
                /* only user.* names: the backing file system may add security.* labels on its own */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored                                                                               \
    "-Wformat-overflow" /* gcc -O2 with ASan: "argument is null" (a static array) */
                for (ssize_t k = 0; n > 0 && k < n; k += (ssize_t)strlen((char *)buf + k) + 1)
                        if (!strncmp((char *)buf + k, "user.", 5))
                                out(t, " %s", (char *)buf + k);
#pragma GCC diagnostic pop
                break;
        }
        case OP_REMOVEXATTR:
                out(t, "lremovexattr %s %s", o->a, xname(o->flags));
                res(t, lremovexattr(pa, xname(o->flags)));
                break;
        case OP_FALLOCATE:
                out(t, "fallocate %d %#x %lld+%zu", o->slot, o->flags, (long long)o->off, o->len);
                r = fallocate(*fd, o->flags, o->off, (off_t)o->len + 1);
                if (r == 0 && !(o->flags & FALLOC_FL_PUNCH_HOLE))
                        sd->unwritten = true;
                res(t, r);
                break;
        case OP_LIST: {
                out(t, "list %s", o->a);
                struct dirent **v;
                int k, m = scandir(pa, &v, NULL, alphasort);
                res(t, m);
                for (k = 0; k < m; k++) {
                        out(t, " %s", v[k]->d_name);
                        free(v[k]);
                }
                if (m >= 0)
                        free(v);
                break;
        }
        case OP_ACCESS:
                out(t, "access %s %d", o->a, o->flags);
                res(t, access(pa, o->flags));
                break;
        case OP_MKFIFO:
                out(t, "mkfifo %s", o->a);
                res(t, mkfifo(pa, o->mode | 0600));
                break;
        case OP_FSYNC:
                out(t, "fsync %d", o->slot);
                res(t, fsync(*fd));
                break;
        case OP_COPY_RANGE: {
                loff_t in = o->off, to = (loff_t)o->len;
                out(t, "copy_file_range %d %d %lld %zu", o->slot, o->slot2, (long long)o->off, o->len);
                res(t, copy_file_range(*fd, &in, fd2, &to, 70000, 0));
                break;
        }
        case OP_OPENAT_DIR: {
                /* an open directory handle used for *at() calls after the tree changed under it */
                out(t, "openat-dir %s/%s", o->a, o->b);
                int dfd = open(pa, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                res(t, dfd < 0 ? -1 : 0);
                if (dfd >= 0) {
                        r = fstatat(dfd, "a", &s, AT_SYMLINK_NOFOLLOW);
                        res(t, r);
                        if (r == 0)
                                stat_out(t, &s);
                        close(dfd);
                }
                break;
        }
        case OP_CHOWN:
                out(t, "lchown %s %d %d", o->a, (int)o->uid, (int)o->gid);
                res(t, lchown(pa, o->uid, o->gid));
                break;
        case OP_MMAP: {
                /* a shared mapping written, then read back through the handle (page cache coherence) */
                out(t, "mmap-write %d @%lld", o->slot, (long long)o->off);
                r = fstat(*fd, &s);
                if (r < 0 || !S_ISREG(s.st_mode) || s.st_size == 0 || s.st_size > (8 << 20)) {
                        out(t, " -> %s", r < 0 ? strerrorname_np(errno) : "skipped");
                        break;
                }
                char *m = mmap(NULL, (size_t)s.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
                if (m == MAP_FAILED) {
                        res(t, -1);
                        break;
                }
                off_t at = o->off % s.st_size;
                m[at] = (char)o->fill;
                r = msync(m, (size_t)s.st_size, MS_SYNC);
                res(t, r);
                n = pread(*fd, buf, 1, at);
                read_out(t, n, buf);
                munmap(m, (size_t)s.st_size);
                break;
        }
        case OP_OTHER:
                other(sd, o, t);
                break;
        case OP_N:
                break;
        }
}

/* As root: the step runs in a child that became uid and gid 65534, so that the kernel's permission checks,
 * the clearing of setuid/setgid bits on write and chown, and the sticky bit are compared too. */
static void other(struct side *sd, const struct op *o, char **t)
{
        int p[2];
        if (geteuid() != 0) {
                out(t, "as-other: not root");
                return;
        }
        if (pipe(p) < 0)
                abort();
        pid_t pid = fork();
        if (pid == 0) {
                char *r = NULL;
                struct op sub = *o;
                sub.kind = o->sub;
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(99);
                if (sub.kind == OP_PWRITE) { /* through a handle of its own, on a name */
                        char pa[600];
                        snprintf(pa, sizeof(pa), "%s/%s", sd->root, o->a);
                        sd->fd[o->slot] = open(pa, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                }
                run(sd, &sub, &r);
                if (sub.kind == OP_PWRITE || sub.kind == OP_OPEN)
                        close(sd->fd[o->slot]); /* the close is where a FUSE file is flushed */
                (void)!write(p[1], r, strlen(r));
                _exit(0);
        }
        close(p[1]);
        char buf[4096];
        ssize_t n, len = 0;
        while ((n = read(p[0], buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
                len += n;
        buf[len] = 0;
        close(p[0]);
        int ws = 0;
        waitpid(pid, &ws, 0);
        out(t, "as 65534: %s (exit %d)", buf, WEXITSTATUS(ws));
}

static bool fuzz_seed(struct mnt *m, uint64_t seed, unsigned tag)
{
        struct side nat = {0}, mnt = {0};
        char rn[600], rm[600];
        char *hist[NSTEPS] = {0};
        bool ok = true;

        snprintf(rn, sizeof(rn), "%s/s%u-%llu", m->native, tag, (unsigned long long)seed);
        snprintf(rm, sizeof(rm), "%s/s%u-%llu", m->mp, tag, (unsigned long long)seed);
        /* world-writable, so that the steps run as another uid can create and remove names too */
        if (mkdir(rn, 0777) < 0 || mkdir(rm, 0777) < 0 || chmod(rn, 0777) < 0 || chmod(rm, 0777) < 0) {
                fprintf(stderr, "mkdir %s: %m\n", rm);
                return false;
        }
        nat.root = rn;
        mnt.root = rm;
        for (int k = 0; k < NSLOT; k++)
                nat.fd[k] = mnt.fd[k] = -1;
        rng_state = seed * 7919 + 17;
        for (int step = 0; step < NSTEPS && ok; step++) {
                struct op o = draw();
                char *a = NULL, *b = NULL;
                run(&nat, &o, &a);
                run(&mnt, &o, &b);
                if (strcmp(a, b)) {
                        fprintf(stderr, "# seed %llu step %d differs (NONO_TEST_SEED=%llu reruns it)\n",
                                (unsigned long long)seed, step, (unsigned long long)seed);
                        for (int k = step > 12 && !getenv("NONO_TEST_SEED") ? step - 12 : 0; k < step; k++)
                                fprintf(stderr, "#   %s\n", hist[k]);
                        fprintf(stderr, "# native: %s\n# fs/:    %s\n", a, b);
                        ok = false;
                }
                if (getenv("NONO_FUZZ_TRACE"))
                        fprintf(stderr, "%s\n", a);
                hist[step] = a;
                free(b);
        }
        for (int k = 0; k < NSLOT; k++) {
                if (nat.fd[k] >= 0)
                        close(nat.fd[k]);
                if (mnt.fd[k] >= 0)
                        close(mnt.fd[k]);
        }
        for (int k = 0; k < NSTEPS; k++)
                free(hist[k]);
        return ok;
}

static void fuzz(struct mnt *m, unsigned tag)
{
        const char *one = getenv("NONO_TEST_SEED"), *ns = getenv("NONO_TEST_SEEDS");
        unsigned long first = 1, last = ns && atoi(ns) > 0 ? (unsigned long)atoi(ns) : 40, bad = 0;
        signal(SIGPIPE, SIG_IGN); /* a write into a FIFO whose reader closed: EPIPE on both sides */
        if (one && *one)
                first = last = strtoul(one, NULL, 10);
        for (unsigned long seed = first; seed <= last; seed++)
                if (!fuzz_seed(m, seed, tag))
                        bad++;
        if (bad)
                fail_msg("%lu of %lu seeds differ from the plain directory", bad, last - first + 1);
}

/* Mounts live in setup/teardown so that a failing seed still unmounts. */
static struct mnt M;
#ifdef NONO_HAVE_STORE
static nono_store *ST;
#endif

static int up_record(void **s)
{
        return mnt_up(&M, NULL) == 0 ? 0 : -1;
}

static int down(void **s)
{
        mnt_unmount(&M);
#ifdef NONO_HAVE_STORE
        if (ST)
                nono_store_close(ST);
        ST = NULL;
#endif
        if (M.base[0])
                rm_rf(M.base);
        return 0;
}

static void t_fuzz_record(void **s)
{
        fuzz(&M, 0);
}

#ifdef NONO_HAVE_STORE
static int up_preimages(void **s)
{
        char home[400];
        char *argv[] = {"fuzz", NULL}, *roots[] = {NULL, NULL};
        const char *tmp = getenv("TMPDIR");

        memset(&M, 0, sizeof(M));
        snprintf(M.base, sizeof(M.base), "%s/nono-fs-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(M.base))
                return -1;
        chmod(M.base, 0755);
        snprintf(M.back, sizeof(M.back), "%s/back", M.base);
        snprintf(M.native, sizeof(M.native), "%s/native", M.base);
        snprintf(M.mp, sizeof(M.mp), "%s/mnt", M.base);
        snprintf(home, sizeof(home), "%s/home", M.base);
        if (mkdir(M.back, 0755) < 0 || mkdir(M.native, 0755) < 0 || mkdir(M.mp, 0755) < 0)
                return -1;
        if (nono_store_open(home, 0, &ST) < 0) {
                fprintf(stderr, "store: %s\n", nono_store_errmsg());
                return -1;
        }
        roots[0] = M.back;
        struct nono_session ses = {
            .argv = argv, .cwd = "/", .policy_json = "{}", .roots = roots, .rollback = true, .pid = getpid()};
        if (nono_session_create(ST, &ses) < 0)
                return -1;
        struct nono_fs_config c = {.store = ST, .session = ses.id, .preimages = true, .record = true};
        return mnt_serve(&M, &c) == 0 ? 0 : -1;
}

static void t_fuzz_preimages(void **s)
{
        fuzz(&M, 1);
}
#endif

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(t_fuzz_record, up_record, down),
#ifdef NONO_HAVE_STORE
            cmocka_unit_test_setup_teardown(t_fuzz_preimages, up_preimages, down),
#endif
        };
        return cmocka_run_group_tests_name("fs-fuzz", tests, NULL, NULL);
}
