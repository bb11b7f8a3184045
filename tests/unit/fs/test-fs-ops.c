/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-ops.c - fs/ is indistinguishable from the backing filesystem: every scenario runs the same calls on
 * a plain directory and on a directory served through fs/, and the two traces (results, errnos, and the
 * observable state after each step) must be identical.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct mnt M;

static const char *P(const char *d, const char *n)
{
        static __thread char buf[8][512];
        static __thread int k;
        k = (k + 1) % 8;
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", d, n);
        return buf[k];
}

#define R(call)                                                                                              \
        do {                                                                                                 \
                errno = 0;                                                                                   \
                long _r = (long)(call);                                                                      \
                tr(t, "%d %s -> %s", __LINE__, #call, _r < 0 ? strerrorname_np(errno) : "ok");               \
        } while (0)
#define V(fmt, ...) tr(t, "%d " fmt, __LINE__, __VA_ARGS__)

static void st(char **t, const char *path, const char *tag)
{
        struct stat s;
        if (lstat(path, &s) < 0) {
                tr(t, "stat %s: %s", tag, strerrorname_np(errno));
                return;
        }
        char sz[32] = "-";
        if (!S_ISDIR(s.st_mode))
                snprintf(sz, sizeof(sz), "%lld", (long long)s.st_size);
        tr(t, "stat %s: type=%o mode=%o nlink=%lu uid=%u gid=%u size=%s", tag, s.st_mode & S_IFMT,
           s.st_mode & 07777, (unsigned long)s.st_nlink, s.st_uid, s.st_gid, sz);
}

static void content(char **t, const char *path)
{
        char buf[256];
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
                tr(t, "content: %s", strerrorname_np(errno));
                return;
        }
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n < 0 ? 0 : n] = 0;
        tr(t, "content: %zd '%s'", n, buf);
}

static void listing(char **t, const char *path)
{
        struct dirent **v;
        int n = scandir(path, &v, NULL, alphasort);
        if (n < 0) {
                tr(t, "ls: %s", strerrorname_np(errno));
                return;
        }
        char *line = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&line, &len);
        for (int k = 0; k < n; k++) {
                fprintf(f, "%s ", v[k]->d_name);
                free(v[k]);
        }
        fclose(f);
        free(v);
        tr(t, "ls: %s", line);
        free(line);
}

typedef void (*scenario)(const char *d, char **t);

static void compare(scenario s)
{
        char *a = NULL, *b = NULL;
        s(M.native, &a);
        s(M.mp, &b);
        if (getenv("FS_TEST_TRACE"))
                fprintf(stderr, "%s", b ? b : "");
        if (!a || !b || strcmp(a, b)) {
                fprintf(stderr, "---- native ----\n%s---- through fs/ ----\n%s", a ? a : "", b ? b : "");
                /* show the first differing line */
                char *x = a, *y = b;
                while (x && y && *x && *x == *y)
                        x++, y++;
                fail_msg("traces differ near: %.80s", y ? y : "");
        }
        free(a);
        free(b);
}

/* ---- scenarios ---------------------------------------------------------------------------------------- */

static void sc_open_flags(const char *d, char **t)
{
        int fd;
        R(mkdir(P(d, "of"), 0755));
        R(fd = open(P(d, "of/f"), O_CREAT | O_EXCL | O_WRONLY, 0640));
        R(write(fd, "hello", 5));
        R(close(fd));
        R(open(P(d, "of/f"), O_CREAT | O_EXCL | O_WRONLY, 0640));
        st(t, P(d, "of/f"), "f");
        R(fd = open(P(d, "of/f"), O_WRONLY | O_APPEND));
        R(write(fd, " world", 6));
        R(lseek(fd, 0, SEEK_SET));
        R(write(fd, "!", 1));
        R(close(fd));
        content(t, P(d, "of/f"));
        R(fd = open(P(d, "of/f"), O_RDWR | O_TRUNC));
        R(write(fd, "ab", 2));
        R(close(fd));
        content(t, P(d, "of/f"));
        R(symlink("f", P(d, "of/l")));
        R(open(P(d, "of/l"), O_RDONLY | O_NOFOLLOW));
        R(fd = open(P(d, "of/l"), O_RDONLY));
        R(close(fd));
        R(open(P(d, "of/f"), O_RDONLY | O_DIRECTORY));
        R(fd = open(P(d, "of"), O_RDONLY | O_DIRECTORY));
        R(close(fd));
        R(open(P(d, "of"), O_WRONLY));
        R(open(P(d, "of/missing"), O_RDONLY));
        R(open(P(d, "of/f/x"), O_RDONLY));
        R(fd = open(P(d, "of/l"), O_CREAT | O_WRONLY | O_APPEND, 0600)); /* through the symlink */
        R(write(fd, "c", 1));
        R(close(fd));
        content(t, P(d, "of/f"));
        R(truncate(P(d, "of/f"), 1));
        content(t, P(d, "of/f"));
        R(truncate(P(d, "of/f"), 10000));
        st(t, P(d, "of/f"), "f");
        R(fd = open(P(d, "of/f"), O_RDWR));
        R(ftruncate(fd, 3));
        R(close(fd));
        st(t, P(d, "of/f"), "f");
        R(fd = open(P(d, "of/tmp"), O_RDWR | O_CREAT, 0600));
        R(pwrite(fd, "xyz", 3, 2));
        char buf[8] = {0};
        R(pread(fd, buf, 8, 0));
        V("pread %d %d %c%c%c", buf[0], buf[1], buf[2], buf[3], buf[4]);
        R(close(fd));
}

static void sc_dirs(const char *d, char **t)
{
        R(mkdir(P(d, "dd"), 0750));
        R(mkdir(P(d, "dd"), 0750));
        R(mkdir(P(d, "dd/a"), 0700));
        R(mkdir(P(d, "dd/a/b"), 0777));
        R(close(open(P(d, "dd/a/f"), O_CREAT | O_WRONLY, 0644)));
        R(rmdir(P(d, "dd/a")));
        R(unlink(P(d, "dd/a")));
        R(rmdir(P(d, "dd/a/f")));
        R(unlink(P(d, "dd/a/f")));
        R(rmdir(P(d, "dd/a/b")));
        st(t, P(d, "dd/a"), "a");
        R(rmdir(P(d, "dd/a")));
        R(rmdir(P(d, "dd/missing")));
        listing(t, P(d, "dd"));
        R(mkdir(P(d, "dd/many"), 0755));
        for (int k = 0; k < 300; k++) {
                char n[64];
                snprintf(n, sizeof(n), "dd/many/file-with-a-longish-name-%03d", k);
                R(close(open(P(d, n), O_CREAT | O_WRONLY, 0644)));
        }
        listing(t, P(d, "dd/many"));
        st(t, P(d, "dd/many"), "many");
        st(t, P(d, "dd"), "dd");
}

/* Names read from a stream, counted and checked against the expected set (order is the backing's). */
static int drain(DIR *dir, int max, unsigned char *seen, int n, const char *prefix)
{
        int got = 0;
        struct dirent *e;
        while (got < max && (e = readdir(dir))) {
                int k;
                if (sscanf(e->d_name, "%*[a-z-]%d", &k) == 1 && !strncmp(e->d_name, prefix, strlen(prefix)) &&
                    k >= 0 && k < n)
                        seen[k]++;
                got++;
        }
        return got;
}

/* Listings that take many READDIRs: fs/ keeps a stream open between two of them (ops-file.c "LISTINGS"), so
 * this checks streams read in turns, more streams than fs/ keeps (16), seeks, rewinds after changes through
 * the mount, and fsync of a directory. */
static void sc_listing(const char *d, char **t)
{
        enum { NDIRS = 20, NFILES = 400 };
        char n[128];
        R(mkdir(P(d, "ls"), 0755));
        for (int k = 0; k < NDIRS; k++) {
                snprintf(n, sizeof(n), "ls/d%02d", k);
                R(mkdir(P(d, n), 0755));
                for (int f = 0; f < NFILES; f++) {
                        snprintf(n, sizeof(n), "ls/d%02d/entry-with-a-long-name-%04d", k, f);
                        int fd = open(P(d, n), O_CREAT | O_WRONLY, 0644);
                        if (fd < 0)
                                V("create %s: %s", n, strerrorname_np(errno));
                        close(fd);
                }
        }
        /* all twenty read in turns, a few entries at a time */
        DIR *dirs[NDIRS];
        static unsigned char seen[NDIRS][NFILES];
        memset(seen, 0, sizeof(seen));
        int total[NDIRS] = {0};
        for (int k = 0; k < NDIRS; k++) {
                snprintf(n, sizeof(n), "ls/d%02d", k);
                dirs[k] = opendir(P(d, n));
                V("opendir d%02d: %s", k, dirs[k] ? "ok" : strerrorname_np(errno));
        }
        for (bool more = true; more;) {
                more = false;
                for (int k = 0; k < NDIRS; k++) {
                        if (!dirs[k])
                                continue;
                        int got = drain(dirs[k], 7 + k, seen[k], NFILES, "entry-with-a-long-name-");
                        total[k] += got;
                        more |= got > 0;
                }
        }
        for (int k = 0; k < NDIRS; k++) {
                int once = 0;
                for (int f = 0; f < NFILES; f++)
                        once += seen[k][f] == 1;
                V("d%02d: %d entries, %d names seen exactly once", k, total[k], once);
        }
        /* telldir / seekdir: the same names again from a remembered position */
        char first[3][300], again[3][300];
        DIR *x = dirs[3];
        rewinddir(x);
        for (int k = 0; k < 250; k++)
                readdir(x);
        long pos = telldir(x);
        for (int k = 0; k < 3; k++) {
                struct dirent *e = readdir(x);
                snprintf(first[k], sizeof(first[k]), "%s", e ? e->d_name : "(end)");
        }
        for (int k = 0; k < 100; k++)
                readdir(x);
        seekdir(x, pos);
        for (int k = 0; k < 3; k++) {
                struct dirent *e = readdir(x);
                snprintf(again[k], sizeof(again[k]), "%s", e ? e->d_name : "(end)");
        }
        V("seekdir repeats: %d",
          !strcmp(first[0], again[0]) && !strcmp(first[1], again[1]) && !strcmp(first[2], again[2]));
        /* changes through the mount show at the next rewind */
        R(close(open(P(d, "ls/d03/added"), O_CREAT | O_WRONLY, 0644)));
        for (int f = 0; f < 10; f++) {
                snprintf(n, sizeof(n), "ls/d03/entry-with-a-long-name-%04d", f);
                R(unlink(P(d, n)));
        }
        rewinddir(x);
        memset(seen[3], 0, sizeof(seen[3]));
        V("after changes: %d entries", drain(x, 1 << 20, seen[3], NFILES, "entry-with-a-long-name-"));
        /* a seek past what the kernel has cached, while another stream of the directory is part way: fs/
         * must read from the sought offset, not go on with the other stream */
        DIR *a = dirs[5], *b = NULL;
        long cookie = 0;
        rewinddir(a);
        for (int k = 0; k < 300; k++)
                readdir(a);
        cookie = telldir(a);
        for (int k = 0; k < 3; k++) {
                struct dirent *e = readdir(a);
                snprintf(first[k], sizeof(first[k]), "%s", e ? e->d_name : "(end)");
        }
        R(unlink(P(d, "ls/d05/entry-with-a-long-name-0399"))); /* drops the kernel's cached listing */
        snprintf(n, sizeof(n), "ls/d05");
        b = opendir(P(d, n));
        for (int k = 0; b && k < 30; k++)
                readdir(b);
        seekdir(a, cookie);
        for (int k = 0; k < 3; k++) {
                struct dirent *e = readdir(a);
                snprintf(again[k], sizeof(again[k]), "%s", e ? e->d_name : "(end)");
        }
        bool same = true;
        for (int k = 0; k < 3; k++)
                same &= !strcmp(first[k], again[k]) || !strcmp(first[k], "entry-with-a-long-name-0399");
        V("seek past the cache, beside another stream, repeats: %d", same);
        if (b)
                closedir(b);
        for (int k = 0; k < NDIRS; k++)
                if (dirs[k])
                        closedir(dirs[k]);
        int fd;
        R(fd = open(P(d, "ls/d03"), O_RDONLY | O_DIRECTORY));
        R(fsync(fd));
        R(fdatasync(fd));
        R(close(fd));
}

static void sc_rename(const char *d, char **t)
{
        struct stat a, b;
        R(mkdir(P(d, "rn"), 0755));
        R(close(open(P(d, "rn/a"), O_CREAT | O_WRONLY, 0644)));
        R(close(open(P(d, "rn/b"), O_CREAT | O_WRONLY, 0600)));
        R(mkdir(P(d, "rn/d"), 0755));
        R(mkdir(P(d, "rn/e"), 0755));
        R(close(open(P(d, "rn/e/x"), O_CREAT | O_WRONLY, 0644)));
        R(lstat(P(d, "rn/a"), &a));
        R(rename(P(d, "rn/a"), P(d, "rn/c")));
        R(lstat(P(d, "rn/c"), &b));
        V("ino stable %d", a.st_ino == b.st_ino);
        R(rename(P(d, "rn/c"), P(d, "rn/b")));
        st(t, P(d, "rn/b"), "b");
        R(renameat2(AT_FDCWD, P(d, "rn/b"), AT_FDCWD, P(d, "rn/d"), RENAME_NOREPLACE));
        R(renameat2(AT_FDCWD, P(d, "rn/b"), AT_FDCWD, P(d, "rn/n"), RENAME_NOREPLACE));
        R(renameat2(AT_FDCWD, P(d, "rn/n"), AT_FDCWD, P(d, "rn/d"), RENAME_EXCHANGE));
        st(t, P(d, "rn/n"), "n");
        st(t, P(d, "rn/d"), "d");
        R(renameat2(AT_FDCWD, P(d, "rn/n"), AT_FDCWD, P(d, "rn/zz"), RENAME_EXCHANGE));
        R(rename(P(d, "rn/n"), P(d, "rn/e")));     /* dir over non-empty dir */
        R(rename(P(d, "rn/d"), P(d, "rn/n")));     /* file over dir */
        R(rename(P(d, "rn/n"), P(d, "rn/n/sub"))); /* into itself */
        R(mkdir(P(d, "rn/empty"), 0755));
        R(rename(P(d, "rn/n"), P(d, "rn/empty"))); /* dir over empty dir */
        listing(t, P(d, "rn"));
        R(rename(P(d, "rn/e"), P(d, "rn/empty/e2")));
        content(t, P(d, "rn/empty/e2/x"));
        R(rename(P(d, "rn/empty/e2/x"), P(d, "rn/x2")));
        listing(t, P(d, "rn/empty/e2"));
        listing(t, P(d, "rn"));
}

static void sc_links(const char *d, char **t)
{
        struct stat a, b;
        R(mkdir(P(d, "hl"), 0755));
        int fd;
        R(fd = open(P(d, "hl/a"), O_CREAT | O_WRONLY, 0644));
        R(write(fd, "data", 4));
        R(close(fd));
        R(link(P(d, "hl/a"), P(d, "hl/b")));
        R(link(P(d, "hl/a"), P(d, "hl/b")));
        st(t, P(d, "hl/a"), "a");
        R(lstat(P(d, "hl/a"), &a));
        R(lstat(P(d, "hl/b"), &b));
        V("same ino %d", a.st_ino == b.st_ino);
        R(fd = open(P(d, "hl/b"), O_WRONLY | O_APPEND));
        R(write(fd, "more", 4));
        R(close(fd));
        content(t, P(d, "hl/a"));
        R(unlink(P(d, "hl/a")));
        st(t, P(d, "hl/b"), "b");
        R(link(P(d, "hl"), P(d, "hl/dirlink")));
        R(symlink("b", P(d, "hl/s")));
        R(symlink("/nonexistent/abs", P(d, "hl/s2")));
        char buf[64] = {0};
        R(readlink(P(d, "hl/s2"), buf, sizeof(buf)));
        V("readlink %s", buf);
        st(t, P(d, "hl/s"), "s");
        R(stat(P(d, "hl/s"), &a));
        V("stat follows %d", a.st_size == 8);
        R(link(P(d, "hl/s"), P(d, "hl/s-link"))); /* hard link to a symlink */
        st(t, P(d, "hl/s-link"), "s-link");
        R(mkfifo(P(d, "hl/fifo"), 0640));
        st(t, P(d, "hl/fifo"), "fifo");
        R(mknod(P(d, "hl/sock"), S_IFSOCK | 0600, 0));
        st(t, P(d, "hl/sock"), "sock");
}

static void sc_attrs(const char *d, char **t)
{
        struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 123456789},
                                 {.tv_sec = 1200000000, .tv_nsec = 5}};
        struct stat s1, s2;
        R(mkdir(P(d, "at"), 0755));
        R(close(open(P(d, "at/f"), O_CREAT | O_WRONLY, 0644)));
        R(chmod(P(d, "at/f"), 04751));
        st(t, P(d, "at/f"), "f");
        R(chmod(P(d, "at/f"), 0600));
        R(utimensat(AT_FDCWD, P(d, "at/f"), ts, 0));
        R(lstat(P(d, "at/f"), &s1));
        V("times %ld.%09ld %ld.%09ld", s1.st_atim.tv_sec, s1.st_atim.tv_nsec, s1.st_mtim.tv_sec,
          s1.st_mtim.tv_nsec);
        struct timespec omit[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
        R(utimensat(AT_FDCWD, P(d, "at/f"), omit, 0));
        R(lstat(P(d, "at/f"), &s2));
        V("atime kept %d mtime now %d",
          s2.st_atim.tv_sec == s1.st_atim.tv_sec && s2.st_atim.tv_nsec == s1.st_atim.tv_nsec,
          s2.st_mtim.tv_sec > 1200000000);
        struct timespec now2[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_OMIT}};
        R(utimensat(AT_FDCWD, P(d, "at/f"), now2, 0));
        R(lstat(P(d, "at/f"), &s1));
        V("mtime kept %d",
          s1.st_mtim.tv_sec == s2.st_mtim.tv_sec && s1.st_mtim.tv_nsec == s2.st_mtim.tv_nsec);
        R(symlink("f", P(d, "at/l")));
        R(utimensat(AT_FDCWD, P(d, "at/l"), ts, AT_SYMLINK_NOFOLLOW));
        R(lstat(P(d, "at/l"), &s1));
        V("symlink mtime %ld", s1.st_mtim.tv_sec);
        /* mtime/ctime move on a write */
        R(utimensat(AT_FDCWD, P(d, "at/f"), ts, 0));
        int fd;
        R(fd = open(P(d, "at/f"), O_WRONLY));
        R(write(fd, "x", 1));
        R(close(fd));
        R(lstat(P(d, "at/f"), &s1));
        V("mtime moved %d", s1.st_mtim.tv_sec > 1200000000);
        if (is_root()) {
                R(chown(P(d, "at/f"), 65534, 65534));
                R(lchown(P(d, "at/l"), 65533, 65533));
                st(t, P(d, "at/f"), "f");
                st(t, P(d, "at/l"), "l");
        }
        /* xattrs */
        R(setxattr(P(d, "at/f"), "user.k", "v1", 2, 0));
        R(setxattr(P(d, "at/f"), "user.k", "v2", 2, XATTR_CREATE));
        R(setxattr(P(d, "at/f"), "user.j", "v2", 2, XATTR_REPLACE));
        R(setxattr(P(d, "at/f"), "user.k", "value2", 6, XATTR_REPLACE));
        char buf[64] = {0};
        R(getxattr(P(d, "at/f"), "user.k", buf, sizeof(buf)));
        V("xattr %s", buf);
        R(getxattr(P(d, "at/f"), "user.k", NULL, 0));
        R(getxattr(P(d, "at/f"), "user.k", buf, 2));
        R(getxattr(P(d, "at/f"), "user.none", buf, sizeof(buf)));
        memset(buf, 0, sizeof(buf));
        ssize_t n = listxattr(P(d, "at/f"), buf, sizeof(buf));
        V("list %zd %s", n, buf);
        R(removexattr(P(d, "at/f"), "user.k"));
        R(removexattr(P(d, "at/f"), "user.k"));
        R(setxattr(P(d, "at/l"), "user.k", "v", 1, XATTR_CREATE | 0x0)); /* follows to f */
        R(lsetxattr(P(d, "at/l"), "user.k", "v", 1, 0));
        R(setxattr(P(d, "at"), "user.dir", "d", 1, 0));
        R(getxattr(P(d, "at"), "user.dir", buf, sizeof(buf)));
}

static void sc_data(const char *d, char **t)
{
        int fd, fd2;
        R(mkdir(P(d, "da"), 0755));
        R(fd = open(P(d, "da/sparse"), O_CREAT | O_RDWR, 0644));
        R(pwrite(fd, "A", 1, 0));
        R(pwrite(fd, "B", 1, 4 << 20));
        V("seek data %ld", (long)lseek(fd, 1, SEEK_DATA));
        V("seek hole %ld", (long)lseek(fd, 0, SEEK_HOLE));
        V("seek data past %ld", (long)lseek(fd, (4 << 20) + 10, SEEK_DATA));
        R(fsync(fd));
        R(fdatasync(fd));
        R(fallocate(fd, 0, 8 << 20, 4096));
        st(t, P(d, "da/sparse"), "sparse");
        R(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
        char c = 'x';
        R(pread(fd, &c, 1, 0));
        V("after punch %d", c);
        st(t, P(d, "da/sparse"), "sparse");
        R(fd2 = open(P(d, "da/copy"), O_CREAT | O_RDWR, 0644));
        loff_t in = 4 << 20, out = 10;
        R(copy_file_range(fd, &in, fd2, &out, 100, 0));
        V("offs %lld %lld", (long long)in, (long long)out);
        st(t, P(d, "da/copy"), "copy");
        R(pread(fd2, &c, 1, 10));
        V("copied %c", c);
        /* mmap coherence */
        R(ftruncate(fd2, 8192));
        char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
        V("mmap %d", m != MAP_FAILED);
        if (m != MAP_FAILED) {
                memcpy(m + 100, "mapped", 6);
                char b[8] = {0};
                R(pread(fd2, b, 6, 100));
                V("read sees mmap write: %s", b);
                R(pwrite(fd2, "WRITE", 5, 200));
                V("mmap sees write: %.5s", m + 200);
                R(msync(m, 8192, MS_SYNC));
                munmap(m, 8192);
        }
        R(close(fd2));
        content(t, P(d, "da/copy"));
        /* locks */
        R(fd2 = open(P(d, "da/sparse"), O_RDWR));
        R(flock(fd, LOCK_EX | LOCK_NB));
        R(flock(fd2, LOCK_EX | LOCK_NB));
        R(flock(fd2, LOCK_SH | LOCK_NB));
        R(flock(fd, LOCK_UN));
        R(flock(fd2, LOCK_SH | LOCK_NB));
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        R(fcntl(fd, F_OFD_SETLK, &l));
        R(fcntl(fd2, F_OFD_SETLK, &l));
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
        R(fcntl(fd2, F_OFD_GETLK, &q));
        V("getlk type %d", q.l_type);
        pid_t p = fork();
        if (p == 0) {
                struct flock pl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
                int f = open(P(d, "da/sparse"), O_RDWR);
                _exit(fcntl(f, F_SETLK, &pl) < 0 ? (errno == EAGAIN || errno == EACCES ? 3 : 4) : 0);
        }
        int ws = 0;
        waitpid(p, &ws, 0);
        V("posix lock from another process: %d", WEXITSTATUS(ws));
        R(close(fd2));
        R(close(fd));
        struct statvfs sv;
        R(statvfs(P(d, "da"), &sv));
        V("statvfs bsize>0 %d namemax %lu", sv.f_bsize > 0, sv.f_namemax);
}

/* A page of a shared mapping written back through a handle opened with O_APPEND stays at its offset. */
static void sc_mmap_append(const char *d, char **t)
{
        int fd;
        char b[8] = {0};
        R(fd = open(P(d, "mmap-append"), O_CREAT | O_RDWR | O_APPEND, 0644));
        char data[8192];
        memset(data, 'a', sizeof(data));
        R(write(fd, data, sizeof(data)));
        char *m = mmap(NULL, sizeof(data), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        V("mmap %d", m != MAP_FAILED);
        if (m != MAP_FAILED) {
                memcpy(m + 4100, "PAGE", 4);
                R(msync(m, sizeof(data), MS_SYNC));
                munmap(m, sizeof(data));
        }
        R(close(fd));
        st(t, P(d, "mmap-append"), "after msync");
        R(fd = open(P(d, "mmap-append"), O_RDONLY));
        R(pread(fd, b, 4, 4100));
        V("at 4100: %s", b);
        R(close(fd));
}

static void sc_perms(const char *d, char **t)
{
        if (!is_root())
                return; /* needs another uid */
        R(mkdir(P(d, "pm"), 0755));
        R(mkdir(P(d, "pm/sticky"), 01777));
        R(mkdir(P(d, "pm/sgid"), 02775));
        R(chown(P(d, "pm/sgid"), 0, 4242));
        R(chmod(P(d, "pm/sgid"), 02777));
        R(close(open(P(d, "pm/sticky/root-file"), O_CREAT | O_WRONLY, 0666)));
        R(close(open(P(d, "pm/private"), O_CREAT | O_WRONLY, 0600)));
        R(mkdir(P(d, "pm/closed"), 0700));
        pid_t p = fork();
        if (p == 0) {
                char *out = NULL;
                char **tt = &out;
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(99);
                {
                        char **t = tt;
                        R(unlink(P(d, "pm/sticky/root-file")));
                        R(rename(P(d, "pm/sticky/root-file"), P(d, "pm/sticky/mine")));
                        R(close(open(P(d, "pm/sticky/mine"), O_CREAT | O_WRONLY, 0644)));
                        st(t, P(d, "pm/sticky/mine"), "mine");
                        R(unlink(P(d, "pm/sticky/mine")));
                        R(mkdir(P(d, "pm/sgid/sub"), 0755));
                        st(t, P(d, "pm/sgid/sub"), "sub");
                        R(close(open(P(d, "pm/sgid/f"), O_CREAT | O_WRONLY, 02755)));
                        st(t, P(d, "pm/sgid/f"), "f");
                        R(open(P(d, "pm/private"), O_RDONLY));
                        R(open(P(d, "pm/closed/x"), O_CREAT | O_WRONLY, 0644));
                        R(mkdir(P(d, "pm/new"), 0755));
                        R(chmod(P(d, "pm/private"), 0777));
                        R(chown(P(d, "pm/sgid/f"), 0, 0));
                        R(truncate(P(d, "pm/private"), 0));
                        R(utimensat(AT_FDCWD, P(d, "pm/private"), NULL, 0));
                        R(access(P(d, "pm/private"), R_OK));
                        R(access(P(d, "pm/sticky"), W_OK));
                        R(setxattr(P(d, "pm/private"), "user.x", "1", 1, 0));
                        R(setxattr(P(d, "pm/sgid/f"), "trusted.x", "1", 1, 0));
                }
                FILE *f = fopen(P(d, "pm/sgid/trace"), "w");
                if (!f)
                        _exit(98);
                fputs(out ? out : "", f);
                fclose(f);
                _exit(0);
        }
        int ws = 0;
        waitpid(p, &ws, 0);
        V("child %d", WEXITSTATUS(ws));
        char buf[8192] = {0};
        int fd = open(P(d, "pm/sgid/trace"), O_RDONLY);
        if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                buf[n < 0 ? 0 : n] = 0;
                close(fd);
        }
        tr(t, "%s", buf);
        st(t, P(d, "pm/sgid/trace"), "trace");
}

static void t_open_flags(void **s)
{
        compare(sc_open_flags);
}
static void t_dirs(void **s)
{
        compare(sc_dirs);
}
static void t_listing(void **s)
{
        compare(sc_listing);
}
static void t_rename(void **s)
{
        compare(sc_rename);
}
static void t_links(void **s)
{
        compare(sc_links);
}
static void t_attrs(void **s)
{
        compare(sc_attrs);
}
static void t_data(void **s)
{
        compare(sc_data);
}
static void t_mmap_append(void **s)
{
        compare(sc_mmap_append);
}
static void t_perms(void **s)
{
        compare(sc_perms);
}

/* st_ino through the mount is the backing st_ino, and stays stable across lookups and forgets. */
static void t_stable_ino(void **s)
{
        struct stat a, b;
        char p[600];
        snprintf(p, sizeof(p), "%s/ino-file", M.back);
        close(open(p, O_CREAT | O_WRONLY, 0644));
        assert_int_equal(stat(p, &a), 0);
        snprintf(p, sizeof(p), "%s/ino-file", M.mp);
        assert_int_equal(stat(p, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
}

/* Devices are never created through nono, even by root. */
static void t_no_devices(void **s)
{
        char p[600];
        snprintf(p, sizeof(p), "%s/dev-null", M.mp);
        assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), -1);
        assert_int_equal(errno, EPERM);
}

static int setup(void **s)
{
        return mnt_up(&M, NULL) == 0 ? 0 : -1;
}

static int teardown(void **s)
{
        mnt_down(&M);
        return 0;
}

int main(void)
{
        const struct CMUnitTest all[] = {
            cmocka_unit_test(t_open_flags),  cmocka_unit_test(t_dirs),       cmocka_unit_test(t_rename),
            cmocka_unit_test(t_links),       cmocka_unit_test(t_attrs),      cmocka_unit_test(t_data),
            cmocka_unit_test(t_perms),       cmocka_unit_test(t_stable_ino), cmocka_unit_test(t_no_devices),
            cmocka_unit_test(t_mmap_append), cmocka_unit_test(t_listing),
        };
        struct CMUnitTest tests[sizeof(all) / sizeof(*all)];
        size_t n = 0;
        for (size_t k = 0; k < sizeof(all) / sizeof(*all); k++) {
                /* checks as another uid need root to become that uid; the root run covers them */
                if (all[k].test_func == t_perms && !is_root()) {
                        fprintf(stderr, "# not run as uid %u: t_perms (needs root to act as another uid)\n",
                                (unsigned)getuid());
                        continue;
                }
                tests[n++] = all[k];
        }
        return _cmocka_run_group_tests("fs-ops", tests, n, setup, teardown);
}
