/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervisor.c - exec and network audit through seccomp user notification (see supervisor.h).
 *
 * Why a notification and not ptrace or an LD_PRELOAD: ptrace is denied to the agent but would also cost a
 * stop per syscall and conflict with debuggers inside; a preload is trivially bypassed by a static binary.
 * A notify filter is kernel-enforced for the whole process tree and costs one round trip per audited call.
 *
 * Reading the target's memory follows seccomp_unotify(2): open /proc/PID/mem, then check that the
 * notification id is still valid, which proves PID was not recycled between the notification and the
 * open; everything read through that fd then comes from the right process. What we read can still be
 * changed by the target right after (TOCTOU), which is why the answer is always CONTINUE and the event is a
 * record of the request, never a decision (see supervisor.h).
 */
#include "launcher/supervisor.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ARGV_MAX_ARGS  4096
#define ARGV_MAX_BYTES (256u * 1024u)
#define PATH_MAX_BYTES 4096
#define PAGE           4096u
#define BATCH_MAX      64
#define IDLE_MS        20

/* Linux 6.6: the target and the supervisor hand the CPU to each other on notify and answer, instead of a
 * wake-up through the scheduler; on a loaded machine that is the difference between microseconds and
 * milliseconds per exec. Older kernels refuse it, which only costs speed. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

struct nono_supervisor {
        int fd;      /* the listener */
        int stop_fd; /* eventfd: stop requested */
        pthread_t thread;
        bool started;
        nono_supervisor_sink sink;
        void *userdata;
        /* store mode */
        nono_store *st;
        char session[NONO_SESSION_ID_LEN + 1];
        int store_err;
        /* sendto dedupe: a UDP loop to one destination is one event, not millions */
        uint32_t last_send_pid;
        char last_send_dest[80];
        /* A shell searching PATH calls execve once per PATH entry with the same argv; all but the last fail.
         * The attempt is held here until something else happens, and repeats from the same pid with the same
         * argv replace it, their paths kept in path2 ("tried"), so the trail shows one exec, not ten. */
        struct {
                bool has;
                struct nono_event ev;
                char path[PATH_MAX_BYTES + 64];
                char *argv_json;
                char tried[PATH_MAX_BYTES];
        } pending;
        /* Store mode: events are handed to the store in batches (one append, so one commit, for a burst of
         * execs instead of one each), at the latest after IDLE_MS without a notification. */
        struct nono_event batch[BATCH_MAX];
        size_t n_batch;
        struct nono_supervisor_stats stats;
        char *argbuf; /* ARGV_MAX_BYTES scratch for argv strings */
        /* nono_supervisor_run: called once, after the first notification was answered */
        void (*after_first)(void *);
        void *after_first_arg;
};

static inline void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* snprintf that may truncate on purpose (paths and arguments the agent controls are bounded here). */
__attribute__((format(printf, 3, 4))) static void strfmt(char *buf, size_t cap, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, cap, fmt, ap);
        va_end(ap);
}

static void stat_add(uint64_t *c)
{
        __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* ---- the filter (child side) ---------------------------------------------------------------------- */

/*
 * libseccomp builds the program; we load it ourselves. libseccomp 2.5 keeps one notify fd per process in a
 * global and, once it has one, loads later NOTIFY filters without asking for a listener (their calls then
 * fail with ENOSYS), and seccomp_reset(NULL) closes that remembered fd number even if it now names another
 * file. Loading with SECCOMP_FILTER_FLAG_NEW_LISTENER directly gives a fresh listener or the kernel's own
 * errno (EBUSY when the tree already has one).
 */
int nono_supervisor_export_bpf(void *ctx, struct sock_fprog *prog)
{
        struct stat st;
        void *buf = NULL;
        int mfd, r;

        mfd = memfd_create("nono-audit-filter", MFD_CLOEXEC);
        if (mfd < 0)
                return -errno;
        r = seccomp_export_bpf(ctx, mfd);
        if (r == 0 && fstat(mfd, &st) < 0)
                r = -errno;
        if (r == 0 && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) || st.st_size > 65536))
                r = -EINVAL;
        if (r == 0 && !(buf = malloc((size_t)st.st_size)))
                r = -ENOMEM;
        if (r == 0 && pread(mfd, buf, (size_t)st.st_size, 0) != st.st_size)
                r = -EIO;
        close(mfd);
        if (r < 0) {
                free(buf);
                return r;
        }
        prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
        prog->filter = buf;
        return 0;
}

int nono_supervisor_load_filter(const struct sock_fprog *prog)
{
        long fd;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, prog);
        return fd < 0 ? -errno : (int)fd; /* the kernel makes the listener O_CLOEXEC */
}

static int load_with_listener(scmp_filter_ctx ctx)
{
        struct sock_fprog prog;
        int r = nono_supervisor_export_bpf(ctx, &prog);

        if (r < 0)
                return r;
        r = nono_supervisor_load_filter(&prog);
        free(prog.filter);
        return r;
}

int nono_supervisor_install_filter(unsigned what, int handoff_fd)
{
        return nono_supervisor_install_filter_deny(what, handoff_fd, NULL, 0);
}

static int build_filter(unsigned what, int handoff_fd, const int *deny, size_t n_deny, scmp_filter_ctx *out)
{
        scmp_filter_ctx ctx;
        int r;

        if (what & NONO_SUP_SENDMSG && handoff_fd < 0)
                return -EINVAL;
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        /* Foreign-ABI calls pass this filter untouched: the deny filter decides about them (libseccomp's
         * default kills them), this one only records. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
        if (r < 0)
                goto out;
        if (what & NONO_SUP_EXEC) {
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execve), 0);
                if (r == 0)
                        r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execveat), 0);
                if (r < 0)
                        goto out;
        }
        if (what & NONO_SUP_NET) {
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0);
                /* send() is sendto() without an address: nothing to record, no round trip. */
                if (r == 0)
                        r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendto), 1,
                                             SCMP_A4(SCMP_CMP_NE, 0));
                if (r < 0)
                        goto out;
        }
        if (what & NONO_SUP_SENDMSG) {
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmsg), 1,
                                     SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)handoff_fd));
                if (r == 0)
                        r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmmsg), 1,
                                             SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)handoff_fd));
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < n_deny; i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, deny[i], 0);
                if (r < 0)
                        goto out;
        }
        *out = ctx;
        return 0;
out:
        seccomp_release(ctx);
        return r;
}

int nono_supervisor_install_filter_deny(unsigned what, int handoff_fd, const int *deny, size_t n_deny)
{
        scmp_filter_ctx ctx;
        int r = build_filter(what, handoff_fd, deny, n_deny, &ctx);

        if (r < 0)
                return r;
        r = load_with_listener(ctx);
        seccomp_release(ctx);
        return r;
}

int nono_supervisor_compile_filter_deny(unsigned what, int handoff_fd, const int *deny, size_t n_deny,
                                        struct sock_fprog *prog)
{
        scmp_filter_ctx ctx;
        int r = build_filter(what, handoff_fd, deny, n_deny, &ctx);

        if (r < 0)
                return r;
        r = nono_supervisor_export_bpf(ctx, prog);
        seccomp_release(ctx);
        return r;
}

/* ---- reading the target --------------------------------------------------------------------------- */

/* Reads exactly len bytes at addr; -EFAULT if not mapped. */
static int mem_read(int memfd, uint64_t addr, void *buf, size_t len)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(memfd, (char *)buf + done, len - done, (off_t)(addr + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 && errno != EIO ? -errno : -EFAULT;
                done += (size_t)n;
        }
        return 0;
}

/* Reads a NUL-terminated string at addr into buf (cap > 0). Returns its length, or -E2BIG when it did not
 * fit (buf then holds the first cap-1 bytes), or a negative errno. Reads never cross a page boundary in one
 * go, so a string that ends just before an unmapped page is read whole. */
static ssize_t mem_read_str(int memfd, uint64_t addr, char *buf, size_t cap)
{
        size_t len = 0;

        if (!addr)
                return -EFAULT;
        while (len < cap - 1) {
                size_t chunk = PAGE - ((addr + len) & (PAGE - 1));
                if (chunk > cap - 1 - len)
                        chunk = cap - 1 - len;
                ssize_t n = pread(memfd, buf + len, chunk, (off_t)(addr + len));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        buf[len] = 0;
                        return -EFAULT;
                }
                char *nul = memchr(buf + len, 0, (size_t)n);
                if (nul)
                        return nul - buf;
                len += (size_t)n;
        }
        buf[len] = 0;
        return -E2BIG;
}

/* The last NSpid field: the pid as seen in the innermost pid namespace of the process (the sandbox's), or 0
 * when the process is not in it. */
static uint32_t innermost_pid(const char *status, uint32_t levels)
{
        const char *p = strstr(status, "\nNSpid:");
        uint32_t v = 0, n = 0;

        if (!p)
                return 0;
        for (p += 7; *p && *p != '\n';) {
                char *end;
                unsigned long x = strtoul(p, &end, 10);
                if (end == p)
                        break;
                v = (uint32_t)x, n++, p = end;
        }
        return levels && n != levels ? 0 : v;
}

static ssize_t read_small(int dirfd, const char *name, char *buf, size_t cap)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = read(fd, buf, cap - 1);
        if (n >= 0)
                buf[n] = 0;
        return n;
}

/*
 * Pid, parent pid and real uid of the target. Pids are reported as the sandbox sees them (its pid namespace),
 * the same numbers fs/ records for file operations (FUSE reports callers in the mounter's pid namespace), so
 * the events of one process line up across the trail. The parent of the sandbox's init is outside: 0.
 */
static void read_status(int dirfd, uint32_t *pid, uint32_t *ppid, uint32_t *uid)
{
        char buf[4096], path[48];
        uint32_t levels = 0, host_ppid = 0;
        const char *p;

        *ppid = 0;
        *uid = (uint32_t)-1;
        if (read_small(dirfd, "status", buf, sizeof(buf)) <= 0)
                return;
        if ((p = strstr(buf, "\nPPid:")))
                host_ppid = (uint32_t)strtoul(p + 6, NULL, 10);
        if ((p = strstr(buf, "\nUid:")))
                *uid = (uint32_t)strtoul(p + 5, NULL, 10);
        if ((p = strstr(buf, "\nNSpid:")))
                for (p += 7; *p && *p != '\n'; p++)
                        if (*p >= '0' && *p <= '9' && (p[-1] == '\t' || p[-1] == ' '))
                                levels++;
        uint32_t ns = innermost_pid(buf, 0);
        if (ns)
                *pid = ns;
        if (!host_ppid)
                return;
        snprintf(path, sizeof(path), "/proc/%u", host_ppid);
        _cleanup_close_ int pdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pdir >= 0 && read_small(pdir, "status", buf, sizeof(buf)) > 0)
                *ppid = innermost_pid(buf, levels);
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Makes path absolute from the target's point of view: relative to its cwd, or to dirfd for execveat. */
static void absolutize(int dirfd, int64_t atfd, const char *path, char *out, size_t cap)
{
        char base[PATH_MAX_BYTES], link[64];
        ssize_t n;

        if (path[0] == '/') {
                strfmt(out, cap, "%s", path);
                return;
        }
        if (atfd == AT_FDCWD)
                snprintf(link, sizeof(link), "cwd");
        else
                snprintf(link, sizeof(link), "fd/%d", (int)atfd);
        n = readlinkat(dirfd, link, base, sizeof(base) - 1);
        if (n <= 0) {
                strfmt(out, cap, "%s", path);
                return;
        }
        base[n] = 0;
        if (!path[0]) /* execveat(fd, "", AT_EMPTY_PATH): fexecve */
                strfmt(out, cap, "%s", base);
        else
                strfmt(out, cap, "%s%s%s", base, strcmp(base, "/") ? "/" : "", path);
}

/* argv as a compact JSON array; NULL on allocation failure. A truncated argv ends with "...(truncated)". */
static char *read_argv_json(nono_supervisor *sup, int memfd, uint64_t argv_addr)
{
        cJSON *arr = cJSON_CreateArray();
        size_t used = 0;
        char *out;

        if (!arr)
                return NULL;
        for (unsigned i = 0; argv_addr; i++) {
                uint64_t ptr = 0;
                ssize_t n;

                if (i == ARGV_MAX_ARGS || used >= ARGV_MAX_BYTES - 1) {
                        cJSON_AddItemToArray(arr, cJSON_CreateString("...(truncated)"));
                        break;
                }
                if (mem_read(memfd, argv_addr + 8ull * i, &ptr, sizeof(ptr)) < 0 || !ptr)
                        break;
                n = mem_read_str(memfd, ptr, sup->argbuf + used, ARGV_MAX_BYTES - used);
                if (n == -EFAULT)
                        break;
                cJSON_AddItemToArray(arr, cJSON_CreateString(sup->argbuf + used));
                if (n < 0) {
                        cJSON_AddItemToArray(arr, cJSON_CreateString("...(truncated)"));
                        break;
                }
                used += (size_t)n + 1;
        }
        out = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
        return out;
}

/* "1.2.3.4:80", "[::1]:443", or NULL for families that are not recorded (unix, netlink, unspec). */
static bool format_sockaddr(const struct sockaddr_storage *sa, size_t len, char *out, size_t cap,
                            uint32_t *family)
{
        char ip[INET6_ADDRSTRLEN];

        if (len < sizeof(sa_family_t))
                return false;
        *family = sa->ss_family;
        switch (sa->ss_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const void *)sa;
                if (len < sizeof(*in))
                        return false;
                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
                strfmt(out, cap, "%s:%u", ip, ntohs(in->sin_port));
                return true;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const void *)sa;
                if (len < sizeof(*in6))
                        return false;
                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
                strfmt(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
                return true;
        }
        case AF_UNSPEC:
        case AF_UNIX:
        case AF_NETLINK:
                return false;
        default:
                strfmt(out, cap, "family %u", sa->ss_family);
                return true;
        }
}

/* ---- one notification ----------------------------------------------------------------------------- */

struct target {
        int dirfd, memfd;
        uint32_t pid, ppid, uid;
};

static void emit(nono_supervisor *sup, struct nono_event *ev)
{
        sup->sink(ev, sup->userdata);
        stat_add(&sup->stats.events);
}

static void flush_pending(nono_supervisor *sup)
{
        if (!sup->pending.has)
                return;
        sup->pending.ev.path = sup->pending.path;
        sup->pending.ev.path2 = sup->pending.tried[0] ? sup->pending.tried : NULL;
        sup->pending.ev.detail = sup->pending.argv_json;
        emit(sup, &sup->pending.ev);
        free(sup->pending.argv_json);
        sup->pending.argv_json = NULL;
        sup->pending.has = false;
}

static void answer_continue(nono_supervisor *sup, const struct seccomp_notif *req,
                            struct seccomp_notif_resp *resp)
{
        memset(resp, 0, sizeof(*resp));
        resp->id = req->id;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        /* ENOENT: the target died or was interrupted meanwhile; nothing to answer. */
        (void)seccomp_notify_respond(sup->fd, resp);
}

static void handle_exec(nono_supervisor *sup, const struct seccomp_notif *req,
                        struct seccomp_notif_resp *resp, struct target *t)
{
        bool at = req->data.nr == __NR_execveat;
        uint64_t path_addr = req->data.args[at ? 1 : 0], argv_addr = req->data.args[at ? 2 : 1];
        char path[PATH_MAX_BYTES], abspath[PATH_MAX_BYTES + 64];
        char *argv_json;
        ssize_t n;

        n = mem_read_str(t->memfd, path_addr, path, sizeof(path));
        if (n == -EFAULT)
                snprintf(path, sizeof(path), "(unreadable)");
        argv_json = read_argv_json(sup, t->memfd, argv_addr);
        absolutize(t->dirfd, at ? (int64_t)(int32_t)req->data.args[0] : AT_FDCWD, path, abspath,
                   sizeof(abspath));
        answer_continue(sup, req, resp);
        if (!argv_json)
                return;
        if (sup->pending.has && sup->pending.ev.pid == t->pid && !strcmp(sup->pending.argv_json, argv_json)) {
                size_t used = strlen(sup->pending.tried);
                strfmt(sup->pending.tried + used, sizeof(sup->pending.tried) - used, "%s%s", used ? ":" : "",
                       sup->pending.path);
                strfmt(sup->pending.path, sizeof(sup->pending.path), "%s", abspath);
                free(argv_json);
                return;
        }
        flush_pending(sup);
        sup->pending.has = true;
        sup->pending.ev = (struct nono_event){
            .time_ns = now_ns(),
            .pid = t->pid,
            .ppid = t->ppid,
            .uid = t->uid,
            .type = NONO_EV_EXEC,
            .op = NONO_OP_EXEC,
        };
        strfmt(sup->pending.path, sizeof(sup->pending.path), "%s", abspath);
        sup->pending.argv_json = argv_json;
        sup->pending.tried[0] = 0;
}

/* Destination of connect/sendto/sendmsg/sendmmsg, read into sa; false when there is none to record. */
static bool read_dest(const struct seccomp_notif *req, int memfd, struct sockaddr_storage *sa, size_t *salen,
                      uint16_t *op)
{
        uint64_t addr, len;
        int nr = req->data.nr;

        if (nr == __NR_connect || nr == __NR_sendto) {
                addr = req->data.args[nr == __NR_connect ? 1 : 4];
                len = req->data.args[nr == __NR_connect ? 2 : 5];
                *op = nr == __NR_connect ? NONO_OP_CONNECT : NONO_OP_SENDTO;
        } else { /* sendmsg(fd, msghdr, flags), sendmmsg(fd, mmsghdr[], n, flags): the first name */
                struct msghdr mh;
                if (mem_read(memfd, req->data.args[1], &mh, sizeof(mh)) < 0)
                        return false;
                addr = (uint64_t)(uintptr_t)mh.msg_name;
                len = mh.msg_namelen;
                *op = NONO_OP_SENDTO;
        }
        if (!addr || len < sizeof(sa_family_t))
                return false;
        if (len > sizeof(*sa))
                len = sizeof(*sa);
        memset(sa, 0, sizeof(*sa));
        if (mem_read(memfd, addr, sa, len) < 0)
                return false;
        *salen = len;
        return true;
}

static void handle_net(nono_supervisor *sup, const struct seccomp_notif *req, struct seccomp_notif_resp *resp,
                       struct target *t)
{
        struct sockaddr_storage sa;
        size_t salen = 0;
        uint16_t op = NONO_OP_CONNECT;
        uint32_t family = 0;
        char dest[80];
        bool have = read_dest(req, t->memfd, &sa, &salen, &op);

        answer_continue(sup, req, resp);
        if (!have || !format_sockaddr(&sa, salen, dest, sizeof(dest), &family))
                return;
        if (op == NONO_OP_SENDTO) {
                if (sup->last_send_pid == t->pid && !strcmp(sup->last_send_dest, dest))
                        return;
                sup->last_send_pid = t->pid;
                snprintf(sup->last_send_dest, sizeof(sup->last_send_dest), "%s", dest);
        }
        flush_pending(sup);
        struct nono_event ev = {
            .time_ns = now_ns(),
            .pid = t->pid,
            .ppid = t->ppid,
            .uid = t->uid,
            .type = NONO_EV_NET,
            .op = op,
            .oflags = family,
            .detail = dest,
        };
        emit(sup, &ev);
}

static bool is_audited(int nr)
{
        return nr == __NR_execve || nr == __NR_execveat || nr == __NR_connect || nr == __NR_sendto ||
               nr == __NR_sendmsg || nr == __NR_sendmmsg;
}

/* A syscall of the deny list: refused by number, recorded as a violation. */
static void handle_denied(nono_supervisor *sup, const struct seccomp_notif *req,
                          struct seccomp_notif_resp *resp, struct target *t)
{
        char *name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
        char num[32];

        memset(resp, 0, sizeof(*resp));
        resp->id = req->id;
        resp->error = -EPERM;
        (void)seccomp_notify_respond(sup->fd, resp);
        flush_pending(sup);
        snprintf(num, sizeof(num), "syscall %d", req->data.nr);
        struct nono_event ev = {
            .time_ns = now_ns(),
            .pid = t->pid,
            .ppid = t->ppid,
            .uid = t->uid,
            .type = NONO_EV_SESSION,
            .op = NONO_OP_SYSCALL,
            .result = EPERM,
            .flags = NONO_EVF_VIOLATION,
            .path = name ? name : num,
            .detail = "refused by the seccomp filter",
        };
        emit(sup, &ev);
        free(name);
}

static void handle(nono_supervisor *sup, const struct seccomp_notif *req, struct seccomp_notif_resp *resp)
{
        char proc[32];
        struct target t = {.dirfd = -1, .memfd = -1, .pid = req->pid};

        stat_add(&sup->stats.notifications);
        snprintf(proc, sizeof(proc), "/proc/%u", req->pid);
        t.dirfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t.dirfd >= 0)
                t.memfd = openat(t.dirfd, "mem", O_RDONLY | O_CLOEXEC);
        if (!is_audited(req->data.nr)) {
                /* deny list: refused whether or not we can see the process; no memory is read */
                if (t.dirfd >= 0)
                        read_status(t.dirfd, &t.pid, &t.ppid, &t.uid);
                handle_denied(sup, req, resp, &t);
                goto out;
        }
        /* The check that makes the fds above trustworthy: the notification is still pending, so PID is still
         * the process that made it (it cannot exit and be recycled while blocked in the notification). */
        if (t.memfd < 0 || seccomp_notify_id_valid(sup->fd, req->id) < 0) {
                stat_add(&sup->stats.lost);
                answer_continue(sup, req, resp);
                goto out;
        }
        read_status(t.dirfd, &t.pid, &t.ppid, &t.uid);
        switch (req->data.nr) {
        case __NR_execve:
        case __NR_execveat:
                handle_exec(sup, req, resp, &t);
                break;
        case __NR_connect:
        case __NR_sendto:
        case __NR_sendmsg:
        case __NR_sendmmsg:
                handle_net(sup, req, resp, &t);
                break;
        }
out:
        if (t.memfd >= 0)
                close(t.memfd);
        if (t.dirfd >= 0)
                close(t.dirfd);
}

static void store_sink(const struct nono_event *ev, void *userdata);

/* ---- the thread ----------------------------------------------------------------------------------- */

static void batch_flush(nono_supervisor *sup)
{
        int r;

        if (!sup->n_batch)
                return;
        r = nono_events_append(sup->st, sup->session, sup->batch, sup->n_batch, NONO_ASYNC);
        if (r < 0) {
                __atomic_add_fetch(&sup->stats.errors, sup->n_batch, __ATOMIC_RELAXED);
                if (!sup->store_err)
                        sup->store_err = r;
        }
        for (size_t i = 0; i < sup->n_batch; i++) {
                free((char *)sup->batch[i].path);
                free((char *)sup->batch[i].path2);
                free((char *)sup->batch[i].detail);
        }
        sup->n_batch = 0;
}

static void store_sink(const struct nono_event *ev, void *userdata)
{
        nono_supervisor *sup = userdata;
        struct nono_event *b = &sup->batch[sup->n_batch];

        *b = *ev;
        b->path = ev->path ? strdup(ev->path) : NULL;
        b->path2 = ev->path2 ? strdup(ev->path2) : NULL;
        b->detail = ev->detail ? strdup(ev->detail) : NULL;
        if ((ev->path && !b->path) || (ev->path2 && !b->path2) || (ev->detail && !b->detail)) {
                free((char *)b->path);
                free((char *)b->path2);
                free((char *)b->detail);
                stat_add(&sup->stats.errors);
                if (!sup->store_err)
                        sup->store_err = -ENOMEM;
                return;
        }
        if (++sup->n_batch == BATCH_MAX)
                batch_flush(sup);
}

static void *supervisor_main(void *arg)
{
        nono_supervisor *sup = arg;
        struct seccomp_notif *req = NULL;
        struct seccomp_notif_resp *resp = NULL;
        bool stopping = false;

        prctl(PR_SET_NAME, "nono-exec-audit");
        if (seccomp_notify_alloc(&req, &resp) < 0)
                return NULL;
        for (;;) {
                struct pollfd p[2] = {{.fd = sup->fd, .events = POLLIN},
                                      {.fd = sup->stop_fd, .events = POLLIN}};
                /* Once stop is requested, drain what is ready without waiting, then leave. */
                bool idle_work = sup->pending.has || sup->n_batch;
                int n = poll(p, stopping ? 1 : 2, stopping ? 0 : idle_work ? IDLE_MS : -1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 && !stopping) {
                        flush_pending(sup); /* quiet for a while: the PATH search is over */
                        batch_flush(sup);
                        continue;
                }
                if (n <= 0)
                        break;
                if (!stopping && p[1].revents)
                        stopping = true;
                if (p[0].revents & POLLIN) {
                        memset(req, 0, sizeof(*req));
                        if (seccomp_notify_receive(sup->fd, req) == 0)
                                handle(sup, req, resp);
                        if (sup->after_first) { /* the target runs on meanwhile */
                                void (*f)(void *) = sup->after_first;
                                sup->after_first = NULL;
                                f(sup->after_first_arg);
                        }
                        continue;
                }
                if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                        /* Every process using the filter is gone: nothing more can come. */
                        break;
                }
        }
        flush_pending(sup);
        batch_flush(sup);
        seccomp_notify_free(req, resp);
        return NULL;
}

void nono_supervisor_warm(void)
{
        struct seccomp_notif *req = NULL;
        struct seccomp_notif_resp *resp = NULL;

        (void)seccomp_api_get();                    /* probes the kernel's seccomp API once per process */
        if (seccomp_notify_alloc(&req, &resp) == 0) /* asks the kernel for the notification sizes */
                seccomp_notify_free(req, resp);
}

static int sup_start(int notify_fd, nono_supervisor_sink sink, void *userdata, nono_store *st,
                     const char *session, bool thread, nono_supervisor **out)
{
        nono_supervisor *sup;
        int r;

        if (notify_fd < 0 && thread)
                return -EINVAL;
        sup = calloc(1, sizeof(*sup));
        if (!sup)
                return -ENOMEM;
        sup->fd = notify_fd;
        sup->sink = sink;
        sup->userdata = st ? (void *)sup : userdata;
        sup->st = st;
        if (session)
                snprintf(sup->session, sizeof(sup->session), "%s", session);
        sup->argbuf = malloc(ARGV_MAX_BYTES);
        sup->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (notify_fd >= 0)
                (void)ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
        if (!sup->argbuf || sup->stop_fd < 0) {
                r = sup->argbuf ? -errno : -ENOMEM;
                goto fail;
        }
        if (thread) {
                r = -pthread_create(&sup->thread, NULL, supervisor_main, sup);
                if (r < 0)
                        goto fail;
                sup->started = true;
        }
        *out = sup;
        return 0;
fail:
        if (sup->stop_fd >= 0)
                close(sup->stop_fd);
        free(sup->argbuf);
        free(sup);
        return r;
}

int nono_supervisor_start_sink(int notify_fd, nono_supervisor_sink sink, void *userdata,
                               nono_supervisor **out)
{
        if (!sink)
                return -EINVAL;
        return sup_start(notify_fd, sink, userdata, NULL, NULL, true, out);
}

int nono_supervisor_start(int notify_fd, nono_store *st, const char *session, nono_supervisor **out)
{
        if (!st || !session || strlen(session) > NONO_SESSION_ID_LEN)
                return -EINVAL;
        return sup_start(notify_fd, store_sink, NULL, st, session, true, out);
}

int nono_supervisor_prepare(int notify_fd, nono_store *st, const char *session, nono_supervisor **out)
{
        if (!st || !session || strlen(session) > NONO_SESSION_ID_LEN)
                return -EINVAL;
        return sup_start(notify_fd, store_sink, NULL, st, session, false, out);
}

void nono_supervisor_set_fd(nono_supervisor *sup, int notify_fd)
{
        sup->fd = notify_fd;
        (void)ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
}

void nono_supervisor_run(nono_supervisor *sup, void (*after_first)(void *), void *arg)
{
        prctl(PR_SET_NAME, "nono-exec-audit");
        sup->after_first = after_first;
        sup->after_first_arg = arg;
        (void)supervisor_main(sup);
}

void nono_supervisor_stop_request(nono_supervisor *sup)
{
        uint64_t one = 1;

        if (sup && write(sup->stop_fd, &one, sizeof(one)) < 0) {
                /* an eventfd write only fails on overflow, which cannot happen here */
        }
}

static int sup_stop(nono_supervisor *sup, bool sync)
{
        uint64_t one = 1;
        int r;

        if (!sup)
                return 0;
        if (sup->started) {
                if (write(sup->stop_fd, &one, sizeof(one)) < 0) {
                        /* an eventfd write only fails on overflow, which cannot happen here */
                }
                pthread_join(sup->thread, NULL);
        }
        r = sup->store_err;
        if (sup->st && sync) {
                int s = nono_store_sync(sup->st);
                if (!r && s < 0)
                        r = s;
        }
        if (sup->fd >= 0)
                close(sup->fd);
        close(sup->stop_fd);
        free(sup->argbuf);
        free(sup);
        return r;
}

int nono_supervisor_stop(nono_supervisor *sup)
{
        return sup_stop(sup, true);
}

int nono_supervisor_stop_queued(nono_supervisor *sup)
{
        return sup_stop(sup, false);
}

void nono_supervisor_get_stats(nono_supervisor *sup, struct nono_supervisor_stats *out)
{
        out->notifications = __atomic_load_n(&sup->stats.notifications, __ATOMIC_RELAXED);
        out->events = __atomic_load_n(&sup->stats.events, __ATOMIC_RELAXED);
        out->lost = __atomic_load_n(&sup->stats.lost, __ATOMIC_RELAXED);
        out->errors = __atomic_load_n(&sup->stats.errors, __ATOMIC_RELAXED);
}
