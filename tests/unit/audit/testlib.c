/* SPDX-License-Identifier: Apache-2.0 */
/* testlib.c - see testlib.h. */
#include "testlib.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launcher/audit.h"
#include "launcher/supervisor.h"

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t self_start_time(void)
{
        char buf[1024], *p;
        FILE *f = fopen("/proc/self/stat", "re");
        size_t n;
        unsigned long long v = 0;

        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        /* field 22 (starttime); p points at field 2's end, so skip 20 spaces */
        for (int i = 0; p && i < 20; i++)
                p = strchr(p + 1, ' ');
        if (p)
                sscanf(p + 1, "%llu", &v);
        return v;
}

int tl_session_create(nono_store *st, char *const *argv, struct nono_session *out)
{
        static char *roots[] = {"/tmp/project", NULL};
        char cwd[4096];

        memset(out, 0, sizeof(*out));
        if (!getcwd(cwd, sizeof(cwd)))
                snprintf(cwd, sizeof(cwd), "/");
        out->kind = NONO_SESSION_RUN;
        out->state = NONO_SESSION_RUNNING;
        out->argv = (char **)argv;
        out->cwd = cwd;
        out->policy_json = "{\"profile\":\"test\"}";
        out->roots = roots;
        out->start_ns = now_ns();
        out->pid = getpid();
        out->pid_start = self_start_time();
        int r = nono_session_create(st, out);
        /* the borrowed pointers must not be freed by nono_session_clear */
        out->argv = NULL;
        out->cwd = NULL;
        out->policy_json = NULL;
        out->roots = NULL;
        return r;
}

int tl_session_finish(nono_store *st, struct nono_session *s, int exit_status)
{
        struct nono_session cur = {0};
        int r = nono_session_get(st, s->id, &cur);

        if (r < 0)
                return r;
        cur.state = NONO_SESSION_FINISHED;
        cur.end_ns = now_ns();
        cur.exit_status = exit_status;
        r = nono_session_update(st, &cur);
        if (r == 0)
                r = nono_audit_session_end(st, s->id, exit_status, cur.end_ns - cur.start_ns);
        nono_session_clear(&cur);
        return r;
}

static int send_fd(int sock, int fd)
{
        char c = 'F', cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec io = {&c, 1};
        struct msghdr m = {
            .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

        memset(cbuf, 0, sizeof(cbuf));
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
        return sendmsg(sock, &m, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
        char c, cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec io = {&c, 1};
        struct msghdr m = {
            .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm;
        int fd;

        if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
                return -EPROTO;
        cm = CMSG_FIRSTHDR(&m);
        if (!cm || cm->cmsg_type != SCM_RIGHTS)
                return c > 0 && c != 'F' ? -(int)c : -EPROTO; /* the child's errno */
        memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
        return fd;
}

static int install_deny_connect(void)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r = ctx ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(connect), 0) : -ENOMEM;

        if (r == 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r;
}

static pid_t spawn(unsigned what, bool deny_connect, const int *deny, size_t n_deny, char *const *argv,
                   int (*fn)(void *), void *arg, int *notify_fd)
{
        int sv[2], fd;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(sv[0]);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        _exit(120);
                if (deny_connect && install_deny_connect() < 0)
                        _exit(121);
                fd = nono_supervisor_install_filter_deny(what, sv[1], deny, n_deny);
                if (fd < 0) {
                        char c = (char)-fd;
                        (void)!write(sv[1], &c, 1); /* report the errno instead of an fd */
                        _exit(122);
                }
                if (send_fd(sv[1], fd) < 0)
                        _exit(123);
                close(fd);
                close(sv[1]);
                if (fn)
                        _exit(fn(arg));
                execv(argv[0], argv);
                _exit(127);
        }
        close(sv[1]);
        fd = recv_fd(sv[0]);
        close(sv[0]);
        if (fd < 0) {
                int st;
                waitpid(pid, &st, 0);
                return fd;
        }
        *notify_fd = fd;
        return pid;
}

pid_t tl_spawn(unsigned what, bool deny_connect, char *const *argv, int (*fn)(void *), void *arg,
               int *notify_fd)
{
        return spawn(what, deny_connect, NULL, 0, argv, fn, arg, notify_fd);
}

pid_t tl_spawn_deny(const int *deny, size_t n, int (*fn)(void *), void *arg, int *notify_fd)
{
        return spawn(NONO_SUP_EXEC, false, deny, n, NULL, fn, arg, notify_fd);
}

int tl_wait(pid_t pid)
{
        int st;

        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
