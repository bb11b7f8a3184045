/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sandbox.c - namespaces, init, the agent's last steps before execve, and the parent's wait loop.
 *
 * Namespaces: user (when not root: the caller's uid and gid map to themselves, setgroups denied), mount,
 * pid, ipc, uts, and net (only loopback, brought up) unless --allow-net. What they stop: seeing or reaching
 * host processes (pid), host files not granted (mount), System V IPC and abstract unix sockets of the host
 * (ipc, net), the host network entirely (net: TCP, UDP, DNS, ICMP all fail fast with ENETUNREACH).
 * What they do not stop: the kernel's attack surface (seccomp narrows it), access inside the grants.
 *
 * The agent, last: PR_SET_PDEATHSIG, Landlock, all capabilities dropped with SECBIT_NOROOT locked (so even
 * uid 0 gets no capabilities from execve: setuid-root binaries and root's own execs stay powerless),
 * no_new_privs, seccomp, every fd but 0-2 closed, the scrubbed environment, execve.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher/landlock.h"
#include "launcher/sandbox-util.h"
#include "launcher/sandbox.h"
#include "launcher/seccomp.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

extern char **environ;

static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

void nono_sandbox_sigset(sigset_t *set)
{
        sigemptyset(set);
        sigaddset(set, SIGCHLD);
        sigaddset(set, SIGWINCH);
        for (size_t i = 0; i < sizeof(fwd_signals) / sizeof(fwd_signals[0]); i++)
                sigaddset(set, fwd_signals[i]);
}

static void close_from(int lowfd, int keep)
{
        if (keep >= lowfd) {
                if (keep > lowfd)
                        syscall(__NR_close_range, lowfd, keep - 1, 0);
                syscall(__NR_close_range, keep + 1, ~0u, 0);
        } else {
                syscall(__NR_close_range, lowfd, ~0u, 0);
        }
}

__attribute__((noreturn, format(printf, 2, 3))) static void die(int status, const char *fmt, ...)
{
        va_list ap;

        fputs("nono: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        _exit(status);
}

#define SETUP_FAILED 125 /* init's status when the sandbox could not be built (bwrap uses 1) */

static void map_ids(uid_t uid, gid_t gid)
{
        char buf[64];
        int r;

        snprintf(buf, sizeof(buf), "%u %u 1\n", uid, uid);
        if ((r = nono_write_file("/proc/self/uid_map", buf)) < 0)
                die(SETUP_FAILED, "cannot map uid %u into the user namespace: %s", uid, strerror(-r));
        if ((r = nono_write_file("/proc/self/setgroups", "deny")) < 0 && r != -ENOENT)
                die(SETUP_FAILED, "cannot deny setgroups in the user namespace: %s", strerror(-r));
        snprintf(buf, sizeof(buf), "%u %u 1\n", gid, gid);
        if ((r = nono_write_file("/proc/self/gid_map", buf)) < 0)
                die(SETUP_FAILED, "cannot map gid %u into the user namespace: %s", gid, strerror(-r));
}

static void loopback_up(void)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {0};

        strcpy(ifr.ifr_name, "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                die(SETUP_FAILED, "cannot query the loopback interface: %s", strerror(errno));
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                die(SETUP_FAILED, "cannot bring the loopback interface up: %s", strerror(errno));
}

/*
 * The network namespace (loopback only) is made by init itself, after the mount tree and before anything
 * runs that could use the network (the agent, the proxy's listener). Making it and bringing loopback up is
 * about 1 ms of kernel work. A helper process that init forked used to do it while init built the mount
 * tree; against it, in the same minutes (8 alternating rounds of 30 runs), making it inline was faster in
 * every round (by 1.2 ms in the median): until the agent runs, both CPUs of a small machine are busy, and
 * the helper's fork (a copy of the page tables of all of nono), its copy-on-write faults and its exit cost
 * more CPU than the overlap won.
 */
static void net_setup(void)
{
        if (unshare(CLONE_NEWNET) < 0)
                die(SETUP_FAILED, "cannot create the network namespace: %s", strerror(errno));
        loopback_up();
}

static void proxy_listener(uint16_t port, int chan)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {
            .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct nono_chan_msg m = {.kind = NONO_CHAN_PROXY_LISTENER, .arg = port}, reply;
        int r;

        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 128) < 0)
                die(SETUP_FAILED, "cannot listen on 127.0.0.1:%u inside the sandbox: %s", port,
                    strerror(errno));
        if ((r = nono_chan_call(chan, &m, s, &reply)) < 0)
                die(SETUP_FAILED, "the proxy did not take its listener: %s", strerror(-r));
}

static int drop_capabilities(void)
{
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {{0}};

        if (prctl(PR_SET_SECUREBITS,
                  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                      SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                      SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                  0, 0, 0) < 0)
                return -errno;
        for (int cap = 0;; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno == EINVAL)
                                break;
                        return -errno;
                }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        return 0;
}

static unsigned ll_access(unsigned a)
{
        return (a & NONO_ACCESS_READ ? NONO_LL_READ : 0) | (a & NONO_ACCESS_WRITE ? NONO_LL_WRITE : 0) |
               (a & NONO_ACCESS_EXEC ? NONO_LL_EXEC : 0);
}

static int apply_landlock(const struct nono_sandbox_config *c)
{
        const struct nono_policy *p = c->policy;
        _cleanup_free_ struct nono_ll_rule *rules = calloc(p->n_grants + 3, sizeof(*rules));
        size_t n = 0;

        if (!rules)
                return -ENOMEM;
        rules[n++] = (struct nono_ll_rule){"/tmp", NONO_LL_READ | NONO_LL_WRITE | NONO_LL_EXEC};
        rules[n++] = (struct nono_ll_rule){"/dev", NONO_LL_READ | NONO_LL_WRITE | NONO_LL_DEV};
        rules[n++] = (struct nono_ll_rule){"/proc", NONO_LL_READ | NONO_LL_WRITE};
        for (size_t i = 0; i < p->n_grants; i++)
                rules[n++] = (struct nono_ll_rule){p->grants[i].path, ll_access(p->grants[i].access)};
        struct nono_ll_config lc = {.rules = rules,
                                    .n_rules = n,
                                    .tcp_connect_ports = &c->proxy_port,
                                    .n_tcp_connect_ports = c->proxy_port ? 1 : 0};
        return nono_landlock_apply(&lc);
}

/* The agent: pid 2. Never returns. */
static void agent_main(const struct nono_sandbox_config *c, int chan, const struct nono_seccomp_prog *prog)
{
        struct nono_chan_msg m = {0}, reply;
        int abi, nfd, r;

        prctl(PR_SET_NAME, "nono-agent");
        nono_trace("agent: started");
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                die(SETUP_FAILED, "PR_SET_PDEATHSIG: %s", strerror(errno));
        if (chdir(c->cwd) < 0)
                die(SETUP_FAILED, "cannot enter %s inside the sandbox: %s (is it granted?)", c->cwd,
                    strerror(errno));
        abi = apply_landlock(c);
        if (abi < 0)
                die(SETUP_FAILED, "Landlock failed: %s", strerror(-abi));
        nono_trace("agent: landlock applied");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                die(SETUP_FAILED, "cannot set no_new_privs: %s", strerror(errno));
        if ((r = drop_capabilities()) < 0)
                die(SETUP_FAILED, "cannot drop capabilities: %s", strerror(-r));
        if ((r = nono_seccomp_load(prog, &nfd)) < 0)
                die(SETUP_FAILED, "cannot load the seccomp filter: %s", strerror(-r));
        nono_trace("agent: seccomp installed");
        if (nfd >= 0) {
                m.kind = NONO_CHAN_SECCOMP_NOTIFY;
                if ((r = nono_chan_call(chan, &m, nfd, &reply)) < 0)
                        die(SETUP_FAILED, "the supervisor did not take the seccomp listener: %s",
                            strerror(-r));
                close(nfd);
        }
        m = (struct nono_chan_msg){.kind = NONO_CHAN_EXEC, .arg = abi};
        if ((r = nono_chan_call(chan, &m, -1, &reply)) < 0)
                die(SETUP_FAILED, "nono went away before the agent started: %s", strerror(-r));
        nono_trace("agent: exec allowed");
        close_from(3, -1);
        environ = (char **)c->envp;
        execvp(c->argv[0], c->argv);
        r = errno;
        if (r == ENOENT)
                die(127, "%s: command not found inside the sandbox (is its directory granted?)", c->argv[0]);
        die(r == EACCES ? 126 : 127, "cannot execute %s: %s", c->argv[0], strerror(r));
}

struct agent_args {
        const struct nono_sandbox_config *c;
        int chan;
        const struct nono_seccomp_prog *prog;
};

static int agent_trampoline(void *arg)
{
        struct agent_args *a = arg;
        sigset_t set;

        sigemptyset(&set);
        sigprocmask(SIG_SETMASK, &set, NULL);
        agent_main(a->c, a->chan, a->prog);
        return SETUP_FAILED;
}

/*
 * The agent shares init's memory until its execve (CLONE_VM | CLONE_VFORK, as posix_spawn does), on a stack
 * of its own: no copy of init's page tables (init is a copy of all of nono), and its execve does not tear
 * one down. init is suspended meanwhile, so the two never run on the same memory at once; the agent leaves
 * it consistent (it frees what it allocates, and only execve or _exit end it), and init, once resumed, only
 * waits for signals and children. Signal masks and dispositions are the agent's own (no CLONE_SIGHAND).
 */
static pid_t spawn_agent(struct agent_args *a)
{
        const size_t size = 1u << 20;
        void *stack =
            mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        pid_t pid;

        if (stack == MAP_FAILED)
                return -errno;
        pid = clone(agent_trampoline, (char *)stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
        if (pid < 0)
                return -errno;
        munmap(stack, size); /* the agent has exec'd or exited: its stack is free */
        return pid;
}

/* init: pid 1 of the new pid namespace. Never returns. uid, gid: nono's, taken before the clone (in the
 * new user namespace, before its map is written, getuid() says the overflow id, 65534, whoever we are). */
static void init_main(const struct nono_sandbox_config *c, int chan, uid_t uid, gid_t gid)
{
        struct nono_seccomp_opts so = {.notify_exec = c->notify_exec};
        struct nono_seccomp_prog prog;
        char err[1024] = "";
        sigset_t set;
        pid_t agent;
        int r;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                die(SETUP_FAILED, "PR_SET_PDEATHSIG: %s", strerror(errno));
        /* nono may have died before PDEATHSIG was armed: then its end of the channel is closed. */
        struct pollfd pfd = {.fd = chan, .events = POLLRDHUP};
        if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP)))
                _exit(SETUP_FAILED);
        prctl(PR_SET_NAME, "nono-init");
        nono_trace("init: started");
        close_from(3, chan);
        if (c->user_ns)
                map_ids(uid, gid);
        if (sethostname("nono", 4) < 0)
                die(SETUP_FAILED, "sethostname: %s", strerror(errno));
        /* built now, while the parent writes the session record; the agent only loads it */
        if ((r = nono_seccomp_compile(&so, &prog)) < 0)
                die(SETUP_FAILED, "cannot build the seccomp filter: %s", strerror(-r));
        nono_trace("init: ids, hostname, seccomp");
        if (nono_sandbox_build_root(c, chan, err, sizeof(err)) < 0)
                die(SETUP_FAILED, "cannot build the sandbox: %s", err);
        if (!c->share_net)
                net_setup();
        nono_trace("init: network up");
        if (c->proxy_port && !c->share_net)
                proxy_listener(c->proxy_port, chan);

        nono_trace("init: root built");
        agent = spawn_agent(&(struct agent_args){c, chan, &prog});
        if (agent < 0)
                die(SETUP_FAILED, "cannot start the agent: %s", strerror(-agent));
        close(chan);
        nono_sandbox_sigset(&set);
        for (;;) {
                siginfo_t si;
                if (sigwaitinfo(&set, &si) < 0)
                        continue;
                if (si.si_signo == SIGCHLD) {
                        int st;
                        pid_t p;
                        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                                if (p == agent) {
                                        nono_trace("init: agent reaped");
                                        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
                                }
                        continue;
                }
                /* Only what nono forwards (kill(2) from outside: SI_USER); the terminal's signals already
                 * reached the agent's process group directly. */
                if (si.si_code == SI_USER && si.si_signo != SIGWINCH)
                        kill(agent, si.si_signo);
        }
        (void)r;
}

int nono_sandbox_spawn(const struct nono_sandbox_config *c, struct nono_sandbox *sb, char *err, size_t errlen)
{
        int sp[2], pidfd = -1;
        unsigned long flags =
            CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
        pid_t pid;

        *sb = (struct nono_sandbox){.pid = -1, .chan = -1, .pidfd = -1};
        if (c->user_ns)
                flags |= CLONE_NEWUSER;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                snprintf(err, errlen, "socketpair: %s", strerror(errno));
                return -errno;
        }
        uid_t uid = geteuid();
        gid_t gid = getegid();
        fflush(NULL);
        pid = syscall(SYS_clone, flags, NULL, &pidfd, NULL, 0);
        if (pid < 0) {
                int e = errno;
                close(sp[0]);
                close(sp[1]);
                if (e == EPERM || e == ENOSPC || e == EINVAL)
                        snprintf(err, errlen,
                                 "cannot create the sandbox namespaces: %s. nono needs unprivileged user "
                                 "namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                                 "user.max_user_namespaces > 0, and no AppArmor restriction "
                                 "kernel.apparmor_restrict_unprivileged_userns=0) or root",
                                 strerror(e));
                else
                        snprintf(err, errlen, "clone: %s", strerror(e));
                return -e;
        }
        if (pid == 0) {
                sigset_t set;
                close(sp[0]);
                sigemptyset(&set);
                /* init keeps the forwarded signals blocked and takes them with sigwaitinfo */
                nono_sandbox_sigset(&set);
                sigprocmask(SIG_SETMASK, &set, NULL);
                /* Dispositions are left alone: execve resets handlers, and what the user set to SIG_IGN
                 * (nohup) stays ignored for the agent as it would without nono. init needs SIGCHLD. */
                signal(SIGCHLD, SIG_DFL);
                init_main(c, sp[1], uid, gid);
        }
        nono_trace("run: cloned");
        close(sp[1]);
        sb->pid = pid;
        sb->chan = sp[0];
        sb->pidfd = pidfd;
        return 0;
}

int nono_sandbox_serve(struct nono_sandbox *sb, nono_chan_handler h, void *userdata)
{
        for (;;) {
                struct nono_chan_msg m, reply;
                int fd, r = nono_chan_recv(sb->chan, &m, &fd);
                if (r <= 0)
                        return r == 0 ? -ECHILD : r; /* init died (its error is on stderr) */
                reply = (struct nono_chan_msg){.kind = m.kind, .index = m.index};
                if (m.kind == NONO_CHAN_EXEC) {
                        if (fd >= 0)
                                close(fd);
                        /* the handler holds the exec until the session is durable */
                        if (h && (r = h(userdata, &m, -1, &reply)) < 0) {
                                nono_sandbox_kill(sb);
                                return r;
                        }
                        sb->landlock_abi = m.arg;
                        sb->exec_reached = true;
                } else if (h) {
                        r = h(userdata, &m, fd, &reply);
                        if (r < 0) {
                                nono_sandbox_kill(sb);
                                return r;
                        }
                } else {
                        if (fd >= 0)
                                close(fd);
                        reply.status = -EOPNOTSUPP;
                }
                if ((r = nono_chan_send(sb->chan, &reply, -1)) < 0)
                        return r;
                if (m.kind == NONO_CHAN_EXEC) {
                        close(sb->chan);
                        sb->chan = -1;
                        return 0;
                }
        }
}

static int reap(struct nono_sandbox *sb, bool block)
{
        int st;
        pid_t p = waitpid(sb->pid, &st, block ? 0 : WNOHANG);

        if (p != sb->pid)
                return -1;
        sb->pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int nono_sandbox_wait(struct nono_sandbox *sb, int sigfd)
{
        for (;;) {
                struct signalfd_siginfo si;
                int r = reap(sb, false);
                if (r >= 0)
                        return r;
                ssize_t n = read(sigfd, &si, sizeof(si));
                if (n != sizeof(si)) {
                        if (n < 0 && errno == EINTR)
                                continue;
                        return reap(sb, true);
                }
                if (si.ssi_signo == SIGCHLD || si.ssi_signo == SIGWINCH)
                        continue;
                if ((int)si.ssi_code == SI_USER || (int)si.ssi_code == SI_QUEUE)
                        kill(sb->pid, si.ssi_signo);
        }
}

void nono_sandbox_kill(struct nono_sandbox *sb)
{
        if (sb->pid > 0) {
                kill(sb->pid, SIGKILL);
                reap(sb, true);
        }
        if (sb->chan >= 0)
                close(sb->chan);
        if (sb->pidfd >= 0)
                close(sb->pidfd);
        sb->chan = sb->pidfd = -1;
}
