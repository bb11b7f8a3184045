/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seccomp.c - the agent's seccomp filter: allow by default, deny a list of syscalls with EPERM.
 *
 * What it stops: kernel attack surface and sandbox-undoing calls that namespaces and Landlock leave open:
 *   - io_uring (its operations bypass the seccomp checks of the syscalls they stand for),
 *   - ptrace, process_vm_readv/writev (reading or steering other processes),
 *   - keyctl, add_key, request_key (the kernel keyring is not namespaced),
 *   - bpf, perf_event_open, userfaultfd (frequent kernel-exploit primitives),
 *   - the whole mount API (mount, umount2, pivot_root, fsopen, fsconfig, fsmount, fspick, open_tree,
 *     move_mount, mount_setattr) and chroot: the agent could unmask a path or remount read-write,
 *   - setns, unshare, and clone with any CLONE_NEW* flag: a nested user namespace gives back capabilities
 *     over a fresh mount namespace; clone3 gets ENOSYS (its flags live in memory that seccomp cannot read),
 *     so libc falls back to clone, whose flags are a register that this filter checks,
 *   - open_by_handle_at (opening by inode handle bypasses the mount masks; the "shocker" escape),
 *   - kexec, module loading, reboot, swap, iopl/ioperm, acct, quotactl,
 *   - ioctl TIOCSTI and TIOCLINUX on any fd: injecting keystrokes into the user's terminal. The request is
 *     compared on its low 32 bits only, as the kernel does, so high garbage bits do not slip past,
 *   - socket()/socketpair() of families other than AF_UNIX, AF_INET and AF_INET6 (netlink, packet, vsock,
 *     bluetooth, alg...: rarely needed, large attack surface, and some reach outside the net namespace).
 * Syscalls of other ABIs (i386 via int 0x80, x32) are killed: libseccomp's bad-arch action.
 * What it does not stop: anything allowed by the list above; file access (Landlock and the mount tree do
 * that); network access through allowed families (the network namespace does that).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher/seccomp.h"
#include "launcher/supervisor.h"
#include <stdio.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

const char *const nono_seccomp_denied[] = {
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "chroot",
    "setns",
    "unshare",
    "open_by_handle_at",
    "name_to_handle_at",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "iopl",
    "ioperm",
    "acct",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "vhangup",
    "syslog",
    "uselib",
    NULL,
};

static int deny_name(scmp_filter_ctx ctx, const char *name, int err)
{
        int nr = seccomp_syscall_resolve_name(name);

        if (nr == __NR_SCMP_ERROR)
                return 0; /* not on this architecture */
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0);
}

static int build(scmp_filter_ctx ctx, bool recorded)
{
        static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
                                                 CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME};
        static const unsigned long ioctls[] = {TIOCSTI, TIOCLINUX};
        int r;

        /* recorded: the audit filter refuses (and records) these instead; see nono_seccomp_install */
        for (size_t i = 0; !recorded && nono_seccomp_denied[i]; i++)
                if ((r = deny_name(ctx, nono_seccomp_denied[i], EPERM)) < 0)
                        return r;
        if ((r = deny_name(ctx, "clone3", ENOSYS)) < 0)
                return r;
        /* clone(flags, ...): flags is argument 0 on x86_64 and aarch64. */
        for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFul, ioctls[i]));
                if (r < 0)
                        return r;
        }
        /* Families: deny 0 (AF_UNSPEC), 3..9, and everything above AF_INET6 (10). A value with high bits set
         * is above 10 as a 64-bit number, so it is denied even if its low 32 bits are an allowed family. */
        const int sock_calls[] = {SCMP_SYS(socket), SCMP_SYS(socketpair)};
        for (size_t s = 0; s < 2; s++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), sock_calls[s], 1,
                                     SCMP_A0(SCMP_CMP_GT, AF_INET6));
                if (r < 0)
                        return r;
                for (unsigned f = 0; f < AF_INET6; f++) {
                        if (f == AF_UNIX || f == AF_INET)
                                continue;
                        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), sock_calls[s], 1,
                                             SCMP_A0(SCMP_CMP_EQ, f));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The plain-denied syscalls as numbers of this architecture. */
static size_t denied_numbers(int *out, size_t cap)
{
        size_t n = 0;

        for (size_t i = 0; nono_seccomp_denied[i] && n < cap; i++) {
                int nr = seccomp_syscall_resolve_name(nono_seccomp_denied[i]);
                if (nr != __NR_SCMP_ERROR)
                        out[n++] = nr;
        }
        return n;
}

static int load_plain_denies(void)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r = 0;

        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && nono_seccomp_denied[i]; i++)
                r = deny_name(ctx, nono_seccomp_denied[i], EPERM);
        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r;
}

/*
 * With audit, the syscalls denied outright are refused by the audit filter instead (EPERM, by number,
 * fail-closed: ENOSYS if the supervisor is gone), so that each attempt is recorded as a violation; every
 * other rule (argument checks, clone flags, socket families) stays in the deny filter, whose ERRNO outranks
 * NOTIFY. If the audit filter cannot be loaded, the outright denials are loaded as a plain filter after all.
 *
 * The programs are what libseccomp compiles from these rules. nono_seccomp_compile_live() compiles them;
 * the build runs it once (seccomp-gen.c) and links the result into nono (nono_seccomp_prebuilt), so that
 * the sandbox's init only copies them: init's CPU time from its start to the programs went from 2.06 to
 * 0.44 ms (compiling runs libseccomp's code for the first time in that process, every page of it faulted
 * in). A unit test checks that the two are the same bytes;
 * a binary without the prebuilt table (the generator itself) compiles them live.
 */
int nono_seccomp_compile_live(const struct nono_seccomp_opts *o, struct nono_seccomp_prog *p)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r;

        *p = (struct nono_seccomp_prog){.audit = o && o->notify_exec};
        if (!ctx)
                return -ENOMEM;
        r = build(ctx, p->audit);
        if (r >= 0)
                r = nono_supervisor_export_bpf(ctx, &p->deny);
        seccomp_release(ctx);
        if (r < 0 || !p->audit)
                return r < 0 ? r : 0;
        int nrs[64];
        size_t n = denied_numbers(nrs, 64);
        r = nono_supervisor_compile_filter_deny(NONO_SUP_DEFAULT, -1, nrs, n, &p->notify);
        if (r < 0)
                nono_seccomp_prog_free(p);
        return r;
}

/* Overridden by the table the build generates (seccomp-prebuilt.c); empty here. */
__attribute__((weak)) const struct nono_seccomp_prebuilt nono_seccomp_prebuilt[2];

static int copy_prog(const struct sock_filter *f, unsigned short len, struct sock_fprog *out)
{
        out->filter = malloc(len * sizeof(*f));
        if (!out->filter)
                return -ENOMEM;
        memcpy(out->filter, f, len * sizeof(*f));
        out->len = len;
        return 0;
}

/* Both programs (sandbox.c: in init, before the agent exists; the agent only loads them). */
int nono_seccomp_compile(const struct nono_seccomp_opts *o, struct nono_seccomp_prog *p)
{
        bool audit = o && o->notify_exec;
        const struct nono_seccomp_prebuilt *pb = &nono_seccomp_prebuilt[audit];

        if (!pb->deny_len || (audit && !pb->notify_len))
                return nono_seccomp_compile_live(o, p);
        *p = (struct nono_seccomp_prog){.audit = audit};
        if (copy_prog(pb->deny, pb->deny_len, &p->deny) < 0 ||
            (audit && copy_prog(pb->notify, pb->notify_len, &p->notify) < 0)) {
                nono_seccomp_prog_free(p);
                return -ENOMEM;
        }
        return 0;
}

void nono_seccomp_prog_free(struct nono_seccomp_prog *p)
{
        free(p->deny.filter);
        free(p->notify.filter);
        p->deny.filter = p->notify.filter = NULL;
        p->deny.len = p->notify.len = 0;
}

int nono_seccomp_load(const struct nono_seccomp_prog *p, int *notify_fd)
{
        int r;

        *notify_fd = -1;
        if (!p->deny.filter)
                return -EINVAL;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p->deny) < 0)
                return -errno;
        if (!p->audit)
                return 0;
        int fd = nono_supervisor_load_filter(&p->notify);
        if (fd >= 0) {
                *notify_fd = fd;
                return 0;
        }
        if (fd == -EBUSY)
                fprintf(stderr,
                        "nono: warning: an outer supervisor already audits this process tree (nono inside "
                        "nono?): commands and connections are not recorded\n");
        r = load_plain_denies();
        return r < 0 ? r : fd == -EBUSY ? 0 : fd;
}

int nono_seccomp_install(const struct nono_seccomp_opts *o, int *notify_fd)
{
        struct nono_seccomp_prog p;
        int r = nono_seccomp_compile(o, &p);

        *notify_fd = -1;
        if (r < 0)
                return r;
        r = nono_seccomp_load(&p, notify_fd);
        nono_seccomp_prog_free(&p);
        return r;
}
