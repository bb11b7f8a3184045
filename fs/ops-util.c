/* SPDX-License-Identifier: Apache-2.0 */
/* ops-util.c - small helpers shared by the FUSE handlers. */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs-internal.h"

/* A name the agent hands us must be one component: no '/', not empty, not "." or "..", and not one of
 * fs/'s reserved names. The kernel never sends such names through the VFS, but a malicious or buggy FUSE
 * client could, and everything after this point assumes one component. */
bool name_ok(const char *name)
{
        if (!name || !*name || strchr(name, '/'))
                return false;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
                return false;
        if (!strncmp(name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX)))
                return false;
        return true;
}

/* Opens the object of an O_PATH fd for I/O through /proc/self/fd: the only way to turn an O_PATH fd into a
 * real one without resolving a name again. Symlinks are refused (ELOOP) rather than followed. */
int reopen(struct fsino *i, int flags)
{
        if (i->type == S_IFLNK) {
                errno = ELOOP;
                return -1;
        }
        return reopen_fd(i->fd, flags);
}

/* Through the magic link, not openat(fd, "."): "." is a lookup inside the directory and needs search (x)
 * permission, so an unprivileged daemon could not list a directory of mode 0600 that the caller may list. */
int reopen_fd(int opath_fd, int flags)
{
        char p[64];

        snprintf(p, sizeof(p), "/proc/self/fd/%d", opath_fd);
        return open(p, (flags | O_CLOEXEC) & ~(O_NOFOLLOW | O_CREAT | O_EXCL));
}

static __thread bool thread_ready;

void thread_prepare(void)
{
        if (thread_ready)
                return;
        thread_ready = true;
        /* The kernel already applied the caller's umask to every mode it sends (no FUSE_CAP_DONT_MASK), so
         * the worker must create with umask 0; a private fs struct keeps that from touching the process. */
        if (unshare(CLONE_FS) == 0)
                umask(0);
}
