/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_reap.c - the detached helper that frees replaced inodes after a restore (why: restore_reap.h).
 *
 * The helper is forked from a process that has threads (the store's writer), so between fork and _exit it
 * makes system calls only: no malloc, no stdio, no locks. It is a grandchild in its own session with every
 * inherited fd closed but its socket (it must not hold the caller's stdout pipe, the store's files or a
 * terminal), so nothing waits for it: a shell, `$(...)` or a test harness sees the command end when the
 * restore ends.
 */
#include "launcher/restore_reap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#define IOPRIO_CLASS_IDLE  3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

#define BATCH 200 /* fds per message (the kernel's limit is 253): one wake-up of the helper per batch */

struct rb_reaper {
        int sock;
        int fds[BATCH];
        size_t n;
};

static __attribute__((noreturn)) void helper(int sock)
{
        struct rlimit rl;
        char byte;
        char cbuf[CMSG_SPACE(BATCH * sizeof(int))];

        if (dup2(sock, 3) < 0)
                _exit(1);
        syscall(__NR_close_range, 4, ~0U, 0);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
                if (null > 3)
                        close(null);
        }
        setsid();
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
        setpriority(PRIO_PROCESS, 0, 19);
        for (;;) {
                struct iovec iov = {&byte, 1};
                struct msghdr m = {
                    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
                ssize_t n = recvmsg(3, &m, MSG_CMSG_CLOEXEC);
                if (n == 0 || (n < 0 && errno != EINTR))
                        break;
                /* the fd stays open until _exit; fds the table could not take were dropped by the kernel,
                 * which frees their inodes here just the same */
        }
        _exit(0);
}

struct rb_reaper *rb_reaper_start(void)
{
        int sv[2], st;
        pid_t pid;
        struct rb_reaper *r = malloc(sizeof *r);

        if (!r)
                return NULL;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                free(r);
                return NULL;
        }
        pid = fork();
        if (pid == 0) {
                close(sv[0]);
                if (fork() == 0)
                        helper(sv[1]);
                _exit(0);
        }
        close(sv[1]);
        if (pid < 0 || waitpid(pid, &st, 0) < 0) {
                close(sv[0]);
                free(r);
                return NULL;
        }
        r->sock = sv[0];
        r->n = 0;
        return r;
}

static int flush(struct rb_reaper *r)
{
        char byte = 0;
        char cbuf[CMSG_SPACE(BATCH * sizeof(int))];
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = cbuf,
                           .msg_controllen = CMSG_SPACE(r->n * sizeof(int))};
        struct cmsghdr *c;
        int e = 0;

        if (!r->n)
                return 0;
        memset(cbuf, 0, sizeof cbuf);
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(r->n * sizeof(int));
        memcpy(CMSG_DATA(c), r->fds, r->n * sizeof(int));
        if (r->sock < 0 || sendmsg(r->sock, &m, MSG_NOSIGNAL) < 0) {
                e = r->sock < 0 ? -EBADF : -errno;
                if (r->sock >= 0)
                        close(r->sock); /* the helper is gone: stop trying */
                r->sock = -1;
        }
        /* ours can go: the helper has its own references (or, if it is gone, the inodes are freed here) */
        for (size_t i = 0; i < r->n; i++)
                close(r->fds[i]);
        r->n = 0;
        return e;
}

int rb_reaper_hold(struct rb_reaper *r, int fd)
{
        if (!r || r->sock < 0)
                return -EBADF;
        r->fds[r->n++] = fd;
        return r->n == BATCH ? flush(r) : 0;
}

void rb_reaper_stop(struct rb_reaper *r)
{
        if (!r)
                return;
        flush(r);
        if (r->sock >= 0)
                close(r->sock);
        free(r);
}
