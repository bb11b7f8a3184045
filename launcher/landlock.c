/* SPDX-License-Identifier: Apache-2.0 */
/*
 * landlock.c - Landlock, the unprivileged LSM, as a second wall behind the mount tree.
 *
 * What it stops: access to any file outside the granted hierarchies even if the mount tree had a hole
 * (a path reached through /proc/PID/root of a process outside, an fd smuggled in, a mistake in the masks);
 * writing where only reading was granted; executing outside exec grants; making device nodes anywhere;
 * linking/renaming a file into a hierarchy with more rights (REFER, ABI 2); truncate (ABI 3); TCP bind and
 * connect to any port not explicitly allowed (ABI 4); ioctls on devices other than /dev's (ABI 5); connecting
 * to abstract unix sockets and sending signals outside the sandbox (ABI 6 scoping). With ABI 7 denials are
 * logged to the kernel audit log after exec too.
 * What it does not stop: reading or writing inside a granted hierarchy (the masks under a granted parent are
 * mount masks, not Landlock rules: Landlock only adds rights); UDP and connect() to path unix sockets (the
 * network namespace and the mount tree close those); anything on a kernel older than the ABI of the rule.
 * Unknown rights are dropped for older ABIs (best effort), and the caller warns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher/landlock.h"
#include "launcher/sandbox-util.h"

/* The system headers are Linux 6.1: everything is defined here, with the kernel's values. */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH      1
#define LL_RULE_NET_PORT          2

#define LL_FS_EXECUTE     (1ull << 0)
#define LL_FS_WRITE_FILE  (1ull << 1)
#define LL_FS_READ_FILE   (1ull << 2)
#define LL_FS_READ_DIR    (1ull << 3)
#define LL_FS_REMOVE_DIR  (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR   (1ull << 6)
#define LL_FS_MAKE_DIR    (1ull << 7)
#define LL_FS_MAKE_REG    (1ull << 8)
#define LL_FS_MAKE_SOCK   (1ull << 9)
#define LL_FS_MAKE_FIFO   (1ull << 10)
#define LL_FS_MAKE_BLOCK  (1ull << 11)
#define LL_FS_MAKE_SYM    (1ull << 12)
#define LL_FS_REFER       (1ull << 13) /* ABI 2 */
#define LL_FS_TRUNCATE    (1ull << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV   (1ull << 15) /* ABI 5 */

#define LL_NET_BIND_TCP    (1ull << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL               (1ull << 1)

#define LL_RESTRICT_SELF_LOG_NEW_EXEC_ON (1u << 1) /* ABI 7 */

struct ll_ruleset_attr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
};

struct ll_path_beneath_attr {
        uint64_t allowed_access;
        int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
        uint64_t allowed_access;
        uint64_t port;
};

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule       445
#define __NR_landlock_restrict_self  446
#endif

static uint64_t fs_rights_for_abi(int abi)
{
        uint64_t r = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

        if (abi >= 2)
                r |= LL_FS_REFER;
        if (abi >= 3)
                r |= LL_FS_TRUNCATE;
        if (abi >= 5)
                r |= LL_FS_IOCTL_DEV;
        return r;
}

int nono_landlock_abi(void)
{
        long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

        return abi < 0 ? 0 : (int)abi;
}

const char *nono_landlock_describe(int abi)
{
        if (abi <= 0)
                return "Landlock is not available: only namespaces, mount masks and seccomp confine the "
                       "agent";
        if (abi < 4)
                return "Landlock without network rules or scoping: TCP and signals are confined by the "
                       "namespaces only";
        if (abi < 6)
                return "Landlock without scoping of abstract unix sockets and signals (kernel < 6.12)";
        return "Landlock with filesystem, TCP and scoping rules";
}

static uint64_t rights(unsigned a, bool is_dir, uint64_t handled)
{
        uint64_t r = 0;

        if (a & NONO_LL_READ)
                r |= LL_FS_READ_FILE | LL_FS_READ_DIR;
        if (a & NONO_LL_EXEC)
                r |= LL_FS_EXECUTE;
        if (a & NONO_LL_WRITE)
                r |= LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR |
                     LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO | LL_FS_MAKE_SYM | LL_FS_REFER |
                     LL_FS_TRUNCATE;
        if (a & NONO_LL_DEV)
                r |= LL_FS_IOCTL_DEV;
        if (!is_dir) /* rights that only make sense on directories are refused on files */
                r &= LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
        return r & handled;
}

int nono_landlock_apply(const struct nono_ll_config *c)
{
        int abi = nono_landlock_abi();
        struct ll_ruleset_attr attr = {0};
        _cleanup_close_ int rfd = -1;
        unsigned flags = 0;

        if (abi <= 0)
                return 0;
        attr.handled_access_fs = fs_rights_for_abi(abi);
        if (abi >= 4)
                attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        if (abi >= 6)
                attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        /* Older kernels take the shorter struct; they reject non-zero bytes they do not know. */
        size_t size = abi >= 6 ? sizeof(attr) : abi >= 4 ? 16 : 8;
        rfd = syscall(__NR_landlock_create_ruleset, &attr, size, 0);
        if (rfd < 0)
                return -errno;

        for (size_t i = 0; i < c->n_rules; i++) {
                _cleanup_close_ int fd = open(c->rules[i].path, O_PATH | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0)
                        continue;
                struct ll_path_beneath_attr pb = {
                    .allowed_access = rights(c->rules[i].access, S_ISDIR(st.st_mode), attr.handled_access_fs),
                    .parent_fd = fd,
                };
                if (!pb.allowed_access)
                        continue;
                if (syscall(__NR_landlock_add_rule, rfd, LL_RULE_PATH_BENEATH, &pb, 0) < 0)
                        return -errno;
        }
        for (size_t i = 0; abi >= 4 && i < c->n_tcp_connect_ports; i++) {
                struct ll_net_port_attr np = {.allowed_access = LL_NET_CONNECT_TCP,
                                              .port = c->tcp_connect_ports[i]};
                if (syscall(__NR_landlock_add_rule, rfd, LL_RULE_NET_PORT, &np, 0) < 0)
                        return -errno;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (abi >= 7)
                flags |= LL_RESTRICT_SELF_LOG_NEW_EXEC_ON;
        if (syscall(__NR_landlock_restrict_self, rfd, flags) < 0)
                return -errno;
        return abi;
}
