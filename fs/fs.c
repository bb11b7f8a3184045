/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs.c - lifecycle of a nono_fs: configuration, the FUSE session (mount or attach), the worker threads, stop.
 *
 * The fast path follows passthrough_hp: (optional) writeback cache, splice in both directions (requests are
 * received by splice only without passthrough: op_init), readdirplus, long entry/attr timeouts (fs/ is the
 * only writer of the tree while the agent runs; where nono itself changes the tree it does so outside the
 * served names), worker threads started as requests need them (loop.c), and writes as large as splice
 * allows (max_write below).
 */
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "fs/cow.h"
#include "fs/fs-internal.h"
#include "fs/ops.h"

#define DEFAULT_TIMEOUT 86400.0

static bool in_initial_userns(void)
{
        char buf[128] = "";
        FILE *f = fopen("/proc/self/uid_map", "re");

        if (!f)
                return false;
        bool r = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        unsigned a, b, c;
        return r && sscanf(buf, "%u %u %u", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295u;
}

static int copy_config(nono_fs *fs, const struct nono_fs_config *cfg)
{
        fs->cfg = *cfg;
        fs->rules = calloc(cfg->n_rules + 1, sizeof(*fs->rules));
        fs->root_path = strdup(cfg->root_path ? cfg->root_path : "?");
        fs->session = cfg->session ? strdup(cfg->session) : NULL;
        if (!fs->rules || !fs->root_path || (cfg->session && !fs->session))
                return -ENOMEM;
        for (size_t k = 0; k < cfg->n_rules; k++) {
                fs->rules[k].deny = cfg->rules[k].deny;
                fs->rules[k].pattern = strdup(cfg->rules[k].pattern);
                if (!fs->rules[k].pattern)
                        return -ENOMEM;
        }
        fs->cfg.rules = fs->rules;
        fs->cfg.root_path = fs->root_path;
        fs->cfg.session = fs->session;
        return 0;
}

static void heap_buffers(void)
{
        mallopt(M_MMAP_THRESHOLD, 8 << 20);
        mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

/* A 0/1 switch from the environment: unset or empty gives dflt; anything but "0" or "1" is named on stderr
 * and means 0, which for both switches keeps the audit whole (a typo never leaves passthrough on). */
bool fs_env_flag(const char *name, bool dflt)
{
        const char *v = getenv(name);

        if (!v || !*v)
                return dflt;
        if (!strcmp(v, "0") || !strcmp(v, "1"))
                return v[0] == '1';
        fprintf(stderr, "nono: %s=%s is not 0 or 1; taking 0\n", name, v);
        return false;
}

/* libfuse's messages go to stderr, but one: a worker that finds the connection aborted (ECONNABORTED) when
 * the kernel ends it - the sandbox's mount namespace going away at the end of a session - prints "splice from
 * device: Software caused connection abort", which is the normal end of the session (libfuse stays silent
 * for ENODEV, the other way the kernel says it). Seen once on nono's stderr at the end of a `nono run` as uid
 * 65534 in the e2e tests. */
static void fs_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
        char msg[512];
        (void)level;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (!strstr(msg, strerror(ECONNABORTED)))
                fputs(msg, stderr);
}

static void fs_log_once(void)
{
        fuse_set_log_func(fs_log);
}

int nono_fs_new(const struct nono_fs_config *cfg, nono_fs **out)
{
        static pthread_once_t log_once = PTHREAD_ONCE_INIT;
        pthread_once(&log_once, fs_log_once);
        /* libfuse answers a READ it cannot splice by copying into a buffer it mallocs for that request (1 MiB
         * for the reads of a cold sequential file); above glibc's mmap threshold each is a fresh mmap whose
         * 256 pages fault in and are zeroed, then munmap'ed: half again the daemon's CPU per cold read.
         * From the heap, the buffers are reused. */
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, heap_buffers);
        struct stat st;
        int r;

        if (!cfg || cfg->root_fd < 0 || ((cfg->record || cfg->preimages) && (!cfg->store || !cfg->session)))
                return -EINVAL;
        nono_fs *fs = calloc(1, sizeof(*fs));
        if (!fs)
                return -ENOMEM;
        fs->root.fd = -1;
        fs->done_fd = -1;
        fs->watch_fd = -1;
        pthread_mutex_init(&fs->watch_lock, NULL);
        pthread_mutex_init(&fs->lock, NULL);
        pthread_mutex_init(&fs->loop_lock, NULL);
        pthread_cond_init(&fs->loop_cv, NULL);
        fsino_table_init(fs);
        r = copy_config(fs, cfg);
        if (r < 0)
                goto fail;
        fs->root.fd = fcntl(cfg->root_fd, F_DUPFD_CLOEXEC, 3);
        if (fs->root.fd < 0 || fstatat(fs->root.fd, "", &st, AT_EMPTY_PATH) < 0) {
                r = -errno;
                goto fail;
        }
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
                r = -ENOTSUP;
                goto fail;
        }
        fs->root.dev = st.st_dev;
        fs->root.ino = st.st_ino;
        fs->root.type = st.st_mode & S_IFMT;
        fs->root.nlookup = 1;
        fs->root_is_file = S_ISREG(st.st_mode);
        fs->root.deny = cfg->n_rules ? rules_match(fs->rules, cfg->n_rules, "") : 0;
        fs->is_root_daemon = geteuid() == 0 && in_initial_userns();
        fs->timeout = DEFAULT_TIMEOUT;
        /* The writeback cache is off by default: with it the kernel answers SEEK_DATA/SEEK_HOLE from a file
         * whose cached writes the daemon has not seen yet, and owns mtime and O_APPEND, which differ from the
         * backing filesystem. NONO_FS_WRITEBACK=1 turns it on (faster small writes). */
        fs->writeback = fs_env_flag("NONO_FS_WRITEBACK", false);
        fs->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fs->done_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = rec_new(fs);
        if (r < 0)
                goto fail;
        r = cow_new(fs);
        if (r < 0)
                goto fail;
        *out = fs;
        return 0;
fail:
        nono_fs_free(fs);
        return r;
}

/*
 * libfuse receives a request by splice()ing it into a pipe (so a write's data goes from the kernel's pages
 * to the backing file without a copy through user memory) only when the pipe holds max_write plus its
 * 4 KiB header; otherwise it silently reads every request into memory and the data is copied twice more.
 * A pipe cannot grow past /proc/sys/fs/pipe-max-size (1 MiB by default) without CAP_SYS_RESOURCE, which
 * neither an unprivileged daemon nor root in most containers has. So max_write is 1 MiB less the header
 * (the kernel then sends 255-page writes and reads), unless the limit is too small to be worth it.
 */
#define LIBFUSE_HEADER (4096u)
static unsigned max_write(void)
{
        unsigned long pmax = 1ul << 20;
        FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");

        if (f) {
                if (fscanf(f, "%lu", &pmax) != 1)
                        pmax = 1ul << 20;
                fclose(f);
        }
        if (pmax >= (1ul << 20) + LIBFUSE_HEADER)
                return 1u << 20;
        if (pmax < (512ul << 10) + LIBFUSE_HEADER)
                return 1u << 20; /* no splice then, but large requests */
        return (unsigned)((pmax - LIBFUSE_HEADER) & ~4095ul);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        nono_fs *fs = userdata;

        if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
                conn->want |= FUSE_CAP_WRITEBACK_CACHE;
        conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ |
                                       FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_PARALLEL_DIROPS |
                                       FUSE_CAP_READDIRPLUS | FUSE_CAP_ASYNC_READ | FUSE_CAP_ATOMIC_O_TRUNC);
        /* Receiving a request by splice is two system calls (into a pipe, then out of it) where read() is
         * one: it pays for itself only on large WRITEs, which passthrough sends to the backing file without
         * fs/. With passthrough on, create and unlink of 10,000 files on tmpfs took 6% less without it (8
         * alternating rounds; faster in 6 and 8 of 8). pt_on is known here: pt_read() saw the INIT request.
         */
        if (atomic_load(&fs->pt_on))
                conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
        /* Without passthrough, large WRITEs come to fs/, and loop.c receives by splice only while they do
         * (loop.c "SPLICE"): the first requests are read */
        if (conn->want & FUSE_CAP_SPLICE_READ) {
                fs->conn = conn;
                fs->splice_adapt = true;
                conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
        }
        /* the kernel, not fs/, clears set-id bits on write/chown/truncate by a non-root caller */
        conn->want &= ~(unsigned)(FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_POSIX_LOCKS);
        if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) /* readdirplus only where stats follow */
                conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
        /* fs/ itself tells the kernel when its cached pages of a file are stale (ops-file.c "CACHE"): with
         * auto-invalidation every write would drop the file's whole page cache at the next getattr */
        conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
        fs->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT; /* ops-file.c "LISTINGS" */
        conn->max_write = max_write();
        conn->max_readahead = 1u << 20;
}

static struct fuse_lowlevel_ops make_ops(void)
{
        struct fuse_lowlevel_ops o;

        memset(&o, 0, sizeof(o));
        o.init = op_init;
        ops_entry(&o);
        ops_file(&o);
        return o;
}

static int new_session(nono_fs *fs)
{
        char opts[256];
        struct fuse_lowlevel_ops o = make_ops();

        if (close_is_silent(fs->root.fd))
                o.flush = NULL; /* one round trip less per close() of a written file (ops-util.c) */
        if (fs->se)
                return -EALREADY;
        snprintf(opts, sizeof(opts), "default_permissions,fsname=nono,subtype=nono%s",
                 fs->is_root_daemon ? ",allow_other" : "");
        char *argv[] = {"nono", "-o", opts, NULL};
        struct fuse_args args = FUSE_ARGS_INIT(3, argv);
        fs->se = fuse_session_new(&args, &o, sizeof(o), fs);
        fuse_opt_free_args(&args);
        return fs->se ? 0 : -EIO;
}

dev_t nono_fs_mount_dev(const char *path)
{
        struct statx sx;

        /* AT_STATX_DONT_SYNC: FUSE answers from the attributes it has (the root's, made at mount) instead of
         * asking the server, which may not be serving yet */
        if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &sx) < 0)
                return 0;
        return makedev(sx.stx_dev_major, sx.stx_dev_minor);
}

/* Why: FUSE_INIT's max_readahead can only lower the window, and a new FUSE mount starts at the kernel's
 * default of 128 KiB, so reading a file that is not cached goes through the server 128 KiB at a time, each
 * request waiting for the one before. /sys/class/bdi/MAJ:MIN/read_ahead_kb is the same knob `blockdev
 * --setra` turns for a disk; only root may write it. Not a security mechanism. */
void nono_fs_tune_readahead(dev_t dev)
{
        char p[64];

        if (!dev || major(dev) != 0) /* FUSE mounts have anonymous devices (major 0) */
                return;
        snprintf(p, sizeof(p), "/sys/class/bdi/%u:%u/read_ahead_kb", major(dev), minor(dev));
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        /* two of the largest READ requests (max_pages follows max_write, see max_write()), so one is served
         * while the next is on its way and a window is never split into a full request and a 4 KiB one */
        char v[16];
        int n = snprintf(v, sizeof(v), "%u", 2 * (max_write() >> 10));
        if (write(fd, v, (size_t)n) != n) {
                /* the window stays at 128 KiB: slower cold reads, nothing else */
        }
        close(fd);
}

int nono_fs_mount(nono_fs *fs, const char *mountpoint)
{
        int r = new_session(fs);
        if (r < 0)
                return r;
        if (fuse_session_mount(fs->se, mountpoint) != 0)
                return -EIO;
        pt_setup(fs);
        fs->mountpoint = strdup(mountpoint);
        nono_fs_tune_readahead(nono_fs_mount_dev(mountpoint));
        return 0;
}

int nono_fs_attach(nono_fs *fs, int fuse_fd)
{
        char p[32];
        int r = new_session(fs);

        if (r < 0)
                return r;
        snprintf(p, sizeof(p), "/dev/fd/%d", fuse_fd);
        if (fuse_session_mount(fs->se, p) != 0)
                return -EIO;
        return pt_setup(fs);
}

int nono_fs_mount_options(nono_fs *fs, int fuse_fd, bool root_is_file, char *buf, size_t len)
{
        int n = snprintf(
            buf, len, "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions,allow_other,max_read=%u",
            fuse_fd, (root_is_file || fs->root_is_file) ? S_IFREG : S_IFDIR, (unsigned)getuid(),
            (unsigned)getgid(), 1u << 20);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Every inode the kernel remembers holds one O_PATH fd here (the passthrough_hp design), so a tree of 100,000
 * stat'd files needs 100,000 fds: raise the soft limit to the hard one, and as root the hard one to the
 * kernel's nr_open. Done when serving starts, after the sandbox's agent was cloned, so the agent keeps the
 * ordinary limit (select() users). Where that is still too few, evict.c keeps the table under a share of it.
 */
static void raise_fd_limit(void)
{
        struct rlimit rl;
        unsigned long nr_open = 0;
        FILE *f;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (geteuid() == 0 && (f = fopen("/proc/sys/fs/nr_open", "re"))) {
                if (fscanf(f, "%lu", &nr_open) == 1 && nr_open > rl.rlim_max)
                        rl.rlim_max = nr_open;
                fclose(f);
        }
        if (rl.rlim_cur == rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int nono_fs_start(nono_fs *fs)
{
        raise_fd_limit();
        if (!fs->se)
                return -ENOTCONN;
        if (fs->started)
                return -EALREADY;
        int e = evict_start(fs); /* the fd budget: after raise_fd_limit, whose result it reads */
        if (e < 0)
                return e;
        watch_start(fs); /* changes behind the mount (watch.c); nono works without it */
        e = loop_start(fs);
        if (e < 0) {
                watch_stop(fs);
                evict_stop(fs);
                return e;
        }
        fs->started = true;
        return 0;
}

int nono_fs_done_fd(nono_fs *fs)
{
        return fs->done_fd;
}

/* Lazily unmounts our own mount without closing the device fd under the worker threads (which
 * fuse_session_unmount would do): they see ENODEV once the kernel is done with the connection. */
static void detach(const char *mp)
{
        if (umount2(mp, MNT_DETACH) == 0 || (errno != EPERM && errno != EACCES))
                return;
        pid_t p = fork();
        if (p == 0) {
                int null = open("/dev/null", O_RDWR);
                if (null >= 0) {
                        dup2(null, 1);
                        dup2(null, 2);
                }
                execlp("fusermount3", "fusermount3", "-u", "-q", "-z", "--", mp, (char *)NULL);
                _exit(127);
        }
        if (p > 0)
                while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
                        ;
}

static int stop(nono_fs *fs, bool queued)
{
        int r = 0;

        if (fs->stopped)
                return 0;
        fs->stopped = true;
        /* The loop ends by itself when the kernel drops the connection: after our own unmount, once the
         * last open file is released (so every RELEASE, and its event, is still served), or when the
         * namespace holding an attached mount is gone. Only a mount still busy after 5 s is cut short. */
        if (fs->se && fs->mountpoint)
                detach(fs->mountpoint);
        if (fs->started) {
                struct pollfd p = {.fd = fs->done_fd, .events = POLLIN};
                if (poll(&p, 1, 5000) != 1) {
                        fuse_session_exit(fs->se);
                        r = -EBUSY;
                } else {
                        loop_join(fs);
                        fs->started = false;
                }
        }
        watch_stop(fs); /* as evict_stop: notifications fail fast once the connection is gone */
        evict_stop(fs); /* its notifications fail fast once the connection is gone */
        if (fs->se && !fs->started) {
                fuse_session_unmount(fs->se); /* closes the device fd (the mount is gone already) */
                handles_close_all(fs);
        }
        /* after this, fs/ never touches the store again: the caller may close it */
        int c = cow_finish(fs);
        int f = rec_close(fs, queued);
        return r < 0 ? r : c < 0 ? c : f;
}

int nono_fs_stop(nono_fs *fs)
{
        return stop(fs, false);
}

int nono_fs_stop_queued(nono_fs *fs)
{
        return stop(fs, true);
}

void nono_fs_free(nono_fs *fs)
{
        if (!fs)
                return;
        if (fs->started && !fs->stopped)
                nono_fs_stop(fs);
        /* nono_fs_stop gave up on a mount still busy after 5 s (-EBUSY): its loop threads may still serve a
         * request, and every request uses this fs. It stays allocated (a bounded leak, in a process that is
         * about to exit) rather than being freed under them. */
        if (fs->started)
                return;
        cow_free(fs);
        rec_free(fs);
        if (fs->se && !fs->started) {
                fuse_session_unmount(fs->se);
                fuse_session_destroy(fs->se);
        }
        fsino_table_free(fs);
        if (fs->root.fd >= 0)
                close(fs->root.fd);
        if (fs->done_fd >= 0)
                close(fs->done_fd);
        for (size_t k = 0; fs->rules && k < fs->cfg.n_rules; k++)
                free((char *)fs->rules[k].pattern);
        free(fs->rules);
        free(fs->root_path);
        free(fs->session);
        free(fs->mountpoint);
        free(fs->own);
        free(fs->wmap);
        free(fs->loop_tids);
        pthread_mutex_destroy(&fs->loop_lock);
        pthread_cond_destroy(&fs->loop_cv);
        pthread_mutex_destroy(&fs->watch_lock);
        pthread_mutex_destroy(&fs->lock);
        free(fs);
}

void nono_fs_get_stats(nono_fs *fs, struct nono_fs_stats *out)
{
        out->files_read = atomic_load(&fs->files_read);
        out->files_changed = atomic_load(&fs->files_changed);
        out->violations = atomic_load(&fs->violations);
        out->events = atomic_load(&fs->events);
        out->preimage_bytes = atomic_load(&fs->preimage_bytes);
        out->passthrough_opens = atomic_load(&fs->passthrough_opens);
}

int nono_fs_mount_options_early(int fuse_fd, bool root_is_file, char *buf, size_t len)
{
        int n = snprintf(
            buf, len, "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions,allow_other,max_read=%u",
            fuse_fd, root_is_file ? S_IFREG : S_IFDIR, (unsigned)getuid(), (unsigned)getgid(), 1u << 20);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
