/* SPDX-License-Identifier: Apache-2.0 */
/*
 * escape.c - nono-escape, the syscall probe the escape battery (tests/e2e/run-escape.bats) runs inside the
 * sandbox. Each subcommand attempts one thing the sandbox must refuse and reports what the kernel said:
 * exit 0 and "ALLOWED" when the attempt succeeded (an escape), exit 1 and "denied: ERRNO_NAME" otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int report(long r)
{
        if (r >= 0) {
                puts("ALLOWED");
                return 0;
        }
        printf("denied: %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
        return 1;
}

static int sock_family(const char *name)
{
        if (!strcmp(name, "netlink"))
                return AF_NETLINK;
        if (!strcmp(name, "packet"))
                return AF_PACKET;
        if (!strcmp(name, "vsock"))
                return AF_VSOCK;
        if (!strcmp(name, "alg"))
                return AF_ALG;
        if (!strcmp(name, "netlink-high")) /* low 32 bits AF_INET, high bits set */
                return -1;
        return atoi(name);
}

int main(int argc, char **argv)
{
        const char *c = argc > 1 ? argv[1] : "";

        if (!strcmp(c, "io_uring")) {
                char params[120] = {0};
                return report(syscall(__NR_io_uring_setup, 4, params));
        }
        if (!strcmp(c, "tiocsti"))
                return report(ioctl(0, TIOCSTI, "x"));
        if (!strcmp(c, "tiocsti-high")) /* same request with garbage in the upper 32 bits */
                return report(syscall(__NR_ioctl, 0, 0xdead00000000ul | TIOCSTI, "x"));
        if (!strcmp(c, "tioclinux")) {
                char sub = 6;
                return report(ioctl(0, 0x541C, &sub));
        }
        if (!strcmp(c, "mount"))
                return report(mount("none", "/tmp", "tmpfs", 0, NULL));
        if (!strcmp(c, "umount"))
                return report(umount2(argc > 2 ? argv[2] : "/proc", MNT_DETACH));
        if (!strcmp(c, "unshare-user"))
                return report(unshare(CLONE_NEWUSER));
        if (!strcmp(c, "unshare-mount"))
                return report(unshare(CLONE_NEWNS));
        if (!strcmp(c, "clone-newuser")) {
                long r = syscall(__NR_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
                if (r == 0)
                        _exit(0);
                if (r > 0)
                        waitpid(r, NULL, 0);
                return report(r);
        }
        if (!strcmp(c, "clone3")) {
                struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
                long r = syscall(__NR_clone3, &ca, sizeof(ca));
                if (r == 0)
                        _exit(0);
                return report(r);
        }
        if (!strcmp(c, "setns")) {
                int fd = open(argc > 2 ? argv[2] : "/proc/1/ns/mnt", O_RDONLY);
                if (fd < 0)
                        return report(fd);
                return report(setns(fd, 0));
        }
        if (!strcmp(c, "ptrace")) { /* attach to a process: argv[2], or a child of ours */
                pid_t p = argc > 2 ? atoi(argv[2]) : fork();
                if (p == 0) {
                        pause();
                        _exit(0);
                }
                long r = ptrace(PTRACE_ATTACH, p, 0, 0);
                int e = errno;
                if (argc <= 2) {
                        kill(p, SIGKILL);
                        waitpid(p, NULL, 0);
                }
                errno = e;
                return report(r);
        }
        if (!strcmp(c, "process_vm_readv"))
                return report(syscall(__NR_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0));
        if (!strcmp(c, "kill")) /* kill PID SIG */
                return report(kill(atoi(argv[2]), atoi(argv[3])));
        if (!strcmp(c, "bpf"))
                return report(syscall(__NR_bpf, 0, NULL, 0));
        if (!strcmp(c, "keyctl"))
                return report(syscall(__NR_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
        if (!strcmp(c, "userfaultfd"))
                return report(syscall(__NR_userfaultfd, 0));
        if (!strcmp(c, "perf_event_open")) {
                char attr[128] = {0};
                return report(syscall(__NR_perf_event_open, attr, 0, -1, -1, 0));
        }
        if (!strcmp(c, "open_by_handle_at")) {
                char h[128] = {0};
                return report(syscall(__NR_open_by_handle_at, AT_FDCWD, h, O_RDONLY));
        }
        if (!strcmp(c, "socket")) {
                int fam = sock_family(argv[2]);
                if (fam == -1)
                        return report(syscall(__NR_socket, 0x100000000ul | AF_NETLINK, SOCK_RAW, 0));
                return report(socket(fam, SOCK_RAW, 0));
        }
        if (!strcmp(c, "abstract") || !strcmp(c, "unix")) { /* connect to a unix socket */
                struct sockaddr_un a = {.sun_family = AF_UNIX};
                int s = socket(AF_UNIX, SOCK_STREAM, 0);
                socklen_t len;
                if (c[0] == 'a') {
                        strncpy(a.sun_path + 1, argv[2], sizeof(a.sun_path) - 2);
                        len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[2]);
                } else {
                        strncpy(a.sun_path, argv[2], sizeof(a.sun_path) - 1);
                        len = sizeof(a);
                }
                return report(connect(s, (struct sockaddr *)&a, len));
        }
        if (!strcmp(c, "chroot"))
                return report(chroot("/tmp"));
        fprintf(stderr, "nono-escape: unknown probe '%s'\n", c);
        return 2;
}
