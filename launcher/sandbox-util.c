/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox-util.c - see sandbox-util.h. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "launcher/sandbox-util.h"

int nono_write_file(const char *path, const char *s)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(s);

        if (fd < 0)
                return -errno;
        if (write(fd, s, len) != (ssize_t)len)
                return errno ? -errno : -EIO;
        return 0;
}

int nono_mkdir_p(const char *path, unsigned mode)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                struct stat st;
                if (*s != '/' && *s != '\0')
                        continue;
                char c = *s;
                *s = '\0';
                /* stat first: under a FUSE root, a mkdir of an existing directory would reach fs/ as an
                 * attempted change (a violation on a read-only root) */
                if (stat(p, &st) < 0 && mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (!c)
                        break;
        }
        return 0;
}

int nono_touch_p(const char *path, unsigned mode)
{
        _cleanup_free_ char *dir = strdup(path);
        char *slash;
        int fd;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                int r = nono_mkdir_p(dir, 0755);
                if (r < 0)
                        return r;
        }
        struct stat st;
        if (lstat(path, &st) == 0)
                return 0;
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return errno == EEXIST || errno == EISDIR ? 0 : -errno;
        close(fd);
        return 0;
}

bool nono_path_under(const char *path, const char *dir)
{
        size_t n = strlen(dir);

        if (n == 1 && dir[0] == '/')
                return path[0] == '/';
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

void nono_trace(const char *what)
{
        static int on = -1;
        char buf[256];
        struct timespec t, c;

        if (on < 0)
                on = getenv("NONO_TRACE_START") != NULL;
        if (!on)
                return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int n = snprintf(buf, sizeof(buf), "nono-trace %d %lld %s\n", (int)getpid(),
                         (long long)t.tv_sec * 1000000000LL + t.tv_nsec, what);
        if (n > 0)
                (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
        n = snprintf(buf, sizeof(buf), "nono-cpu %d %lld %s\n", (int)gettid(),
                     (long long)c.tv_sec * 1000000000LL + c.tv_nsec, what);
        if (n > 0)
                (void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}
