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

struct rb_reaper {
        int sock;
};

static __attribute__((noreturn)) void helper(int sock)
{
        struct rlimit rl;
        char byte;
        char cbuf[CMSG_SPACE(sizeof(int))];

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
        return r;
}

int rb_reaper_hold(struct rb_reaper *r, int fd)
{
        char byte = 0;
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {&byte, 1};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *c;

        if (!r || r->sock < 0)
                return -EBADF;
        memset(cbuf, 0, sizeof cbuf);
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        if (sendmsg(r->sock, &m, MSG_NOSIGNAL) < 0) {
                int e = -errno;
                close(r->sock); /* the helper is gone: stop trying */
                r->sock = -1;
                return e;
        }
        return 0;
}

void rb_reaper_stop(struct rb_reaper *r)
{
        if (!r)
                return;
        if (r->sock >= 0)
                close(r->sock);
        free(r);
}
