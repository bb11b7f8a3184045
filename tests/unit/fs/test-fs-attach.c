/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-fs-attach.c - the launcher's mount model: a child in a new user and mount namespace opens /dev/fuse,
 * mounts it with nono_fs_mount_options() and passes the fd back over a unix socket; the parent serves it with
 * nono_fs_attach() + nono_fs_start(). The child works through the mount and exits; its namespace going away
 * ends the connection, which the parent sees on nono_fs_done_fd(). Works as root and unprivileged.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static int send_fd(int sock, int fd)
{
        char c = 'f';
        struct iovec io = {.iov_base = &c, .iov_len = 1};
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
        char c;
        struct iovec io = {.iov_base = &c, .iov_len = 1};
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
        if (recvmsg(sock, &m, 0) != 1)
                return -1;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        if (!cm || cm->cmsg_type != SCM_RIGHTS)
                return -1;
        int fd;
        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        return fd;
}

static int write_file(const char *p, const char *s)
{
        int fd = open(p, O_WRONLY);
        if (fd < 0)
                return -1;
        ssize_t n = write(fd, s, strlen(s));
        close(fd);
        return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* The sandbox side: returns the exit status (0 = everything worked). */
static int child(nono_fs *fs, int sock, const char *mp)
{
        uid_t uid = getuid();
        gid_t gid = getgid();
        char map[64], opts[512], buf[64] = {0};

        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return 10;
        /* the agent keeps its own ids (fs/ reports real ids, which the kernel reads in this namespace) */
        snprintf(map, sizeof(map), "%u %u 1", uid, uid);
        write_file("/proc/self/setgroups", "deny");
        if (write_file("/proc/self/uid_map", map) < 0)
                return 11;
        snprintf(map, sizeof(map), "%u %u 1", gid, gid);
        if (write_file("/proc/self/gid_map", map) < 0)
                return 12;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 13;
        int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return 14;
        if (nono_fs_mount_options(fs, fd, false, opts, sizeof(opts)) < 0)
                return 15;
        if (mount("nono", mp, "fuse.nono", MS_NOSUID | MS_NODEV, opts) < 0)
                return 16;
        if (send_fd(sock, fd) < 0)
                return 17;
        close(fd);
        if (read(sock, buf, 1) != 1) /* the parent serves now */
                return 18;
        char p[700], q[700];
        snprintf(p, sizeof(p), "%s/made-inside", mp);
        int f = open(p, O_CREAT | O_RDWR, 0640);
        if (f < 0 || write(f, "from the sandbox", 16) != 16)
                return 19;
        close(f);
        snprintf(q, sizeof(q), "%s/renamed", mp);
        if (rename(p, q) < 0)
                return 20;
        f = open(q, O_RDONLY);
        if (f < 0 || read(f, buf, sizeof(buf)) != 16 || memcmp(buf, "from the sandbox", 16))
                return 21;
        close(f);
        struct stat st;
        if (stat(q, &st) < 0 || st.st_uid != uid) /* the caller's uid */
                return 22;
        return 0;
}

static void t_attach(void **s)
{
        struct mnt m;
        int sv[2];

        /* only the served directory and the mountpoint from the harness; the fs is attached, not mounted */
        assert_int_equal(mnt_up(&m, NULL), 0);
        mnt_unmount(&m);
        struct nono_fs_config c = {.root_fd = open(m.back, O_PATH | O_CLOEXEC), .root_path = m.back};
        nono_fs *fs;
        assert_int_equal(nono_fs_new(&c, &fs), 0);
        close(c.root_fd);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        if (pid == 0) {
                close(sv[0]);
                _exit(child(fs, sv[1], m.mp));
        }
        close(sv[1]);
        int fd = recv_fd(sv[0]);
        if (fd < 0) {
                int ws;
                waitpid(pid, &ws, 0);
                if (WIFEXITED(ws) && WEXITSTATUS(ws) == 10)
                        skip(); /* no user namespaces here */
                fail_msg("the child could not mount (status %d)", WEXITSTATUS(ws));
        }
        assert_int_equal(nono_fs_attach(fs, fd), 0);
        assert_int_equal(nono_fs_start(fs), 0);
        assert_int_equal(write(sv[0], "g", 1), 1);
        int ws = 0;
        waitpid(pid, &ws, 0);
        assert_true(WIFEXITED(ws));
        assert_int_equal(WEXITSTATUS(ws), 0);
        /* the namespace is gone with the child, and with it the mount: the loop ends by itself */
        struct pollfd p = {.fd = nono_fs_done_fd(fs), .events = POLLIN};
        assert_int_equal(poll(&p, 1, -1), 1);
        assert_int_equal(nono_fs_stop(fs), 0);
        nono_fs_free(fs);
        close(sv[0]);
        char path[700], buf[32] = {0};
        snprintf(path, sizeof(path), "%s/renamed", m.back);
        int f = open(path, O_RDONLY);
        assert_true(f >= 0);
        assert_int_equal(read(f, buf, sizeof(buf)), 16);
        close(f);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, getuid());
        assert_int_equal(st.st_mode & 07777, 0640);
        mnt_down(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(t_attach),
        };
        return cmocka_run_group_tests_name("fs-attach", tests, NULL, NULL);
}
