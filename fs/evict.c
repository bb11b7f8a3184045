/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict.c - keeps the daemon's O_PATH fds under a budget by asking the kernel to forget old inodes.
 *
 * The problem: every directory the kernel remembers, and every file it did more with than look up and stat
 * (open, chmod, xattrs...), holds one O_PATH fd here (passthrough_hp; a stat-only file holds none, inode.c),
 * and the kernel keeps dentries as long as it likes (our entry timeouts are a day), so ripgrep or a build
 * over a node_modules-sized tree needs more fds than RLIMIT_NOFILE allows (20,000 here, not raisable without
 * CAP_SYS_RESOURCE) and lookups then fail with EMFILE. Only inodes holding an fd count against the budget.
 *
 * The mechanism: when the inodes hold more than EVICT_HIGH_PCT of the soft fd limit, a separate thread
 * (started then, the first time) picks the least recently used inodes with an fd (a clock stamped on every
 * request that names them) and calls fuse_lowlevel_notify_inval_entry(parent, name) for each, down to
 * EVICT_LOW_PCT. The kernel unhashes the dentry; when nothing holds it, the inode is evicted and FORGET
 * closes the fd. The next access is an ordinary LOOKUP. It runs on its own thread because the kernel takes
 * the parent directory's inode lock for the notification, which a request handler in that directory may be
 * holding while it waits for us.
 *
 * Why this and not closing the fds of idle inodes and reopening them by (parent, name) on demand: an fd,
 * once given to an inode, is used by every handler without a per-use reference, so closing it while the
 * inode lives could let another thread use a recycled fd number. (Inodes that never had an fd are opened
 * by their binding with an identity check, inode.c; that is the same no-follow, fd-relative step a lookup
 * takes.)
 *
 * What it does not do: the kernel cannot drop what is in use (a cwd, an open file, a mount point below us),
 * nor inodes only kept alive as parents of bindings, so a process that pins more than the limit still gets
 * EMFILE; open file handles are fds too and are not counted here (hence the headroom below the limit). The
 * invalidation is asynchronous: a burst of lookups may overshoot the high mark until the FORGETs arrive (on
 * a loaded machine several milliseconds later), so a lookup that finds the table above EVICT_CEILING_PCT
 * waits for FORGETs for at most EVICT_THROTTLE_NS, then goes on regardless. It holds the kernel's lock on
 * its directory while it waits, which a notification for that directory needs: so it stops waiting as soon
 * as the thread is about to notify in its directory (ev_cur), unless the table is above EVICT_HARD_PCT; then
 * it waits for the FORGETs of the notifications already sent, at most EVICT_TURN_NS, which makes the lookups
 * and the notifications in one directory take turns instead of the lookups running ahead. Each notification
 * needs the directory lock exclusively, and the lookups running in that directory get in between two of
 * them, so one notifier falls behind several processes walking one big directory (4 walkers of 30,000 files
 * at a limit of 20,000 reached EMFILE): a pass notifies from EVICT_NOTIFIERS threads, which the lock lets in
 * together (then 4 walkers of 30,000 and 8 of 3,000 at a limit of 512 all finish). More walkers than
 * notifiers in one directory far larger than the limit may still outrun it. Should the kernel pin
 * more than the ceiling (open files, cwds), every further lookup waits the full bound: slower, where without
 * the budget it would fail with EMFILE soon after.
 *
 * Security does not depend on any of this: an invalidation is only a cache drop, even when it names a
 * (parent, name) that changed or a parent freed since it was picked (the kernel then finds nothing, or drops
 * another entry, which is looked up again). Deny bits that stuck to an inode from a denied name are lost when
 * it is forgotten; they never protected against a hard link made before the session anyway (docs/fs.md),
 * and a link made through fs/ is refused by the rules at the time of link.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include "fs/fs-internal.h"

#define EVICT_HIGH_PCT    40
#define EVICT_LOW_PCT     25
#define EVICT_CEILING_PCT 60
#define EVICT_HARD_PCT    70
#define EVICT_THROTTLE_NS 20000000L /* 20 ms: at most this per lookup above the ceiling */
#define EVICT_NOTIFIERS   4         /* threads notifying at once during a pass */
#define EVICT_TURN_NS     2000000L  /* 2 ms: ... when it holds the lock the thread is waiting for */

/* The fds are the process's, and one process (the sandbox's parent) serves every allowed root: each nono_fs
 * whose budget runs gets an equal share of the marks. */
static _Atomic unsigned n_budgets;

static size_t share(size_t mark)
{
        unsigned n = atomic_load_explicit(&n_budgets, memory_order_relaxed);
        return n > 1 ? mark / n : mark;
}

struct victim {
        fuse_ino_t parent;
        char *name;
};

struct cand {
        struct fsino *i;
        uint64_t used;
};

void evict_touch(struct nono_fs *fs, struct fsino *i)
{
        if (i != &fs->root)
                __atomic_store_n(&i->used, atomic_load_explicit(&fs->ev_clock, memory_order_relaxed),
                                 __ATOMIC_RELAXED);
}

static void *evict_main(void *arg);

/* Asks the thread for a pass (fs->lock held), starting it the first time: most sessions never come near
 * the budget, and a thread costs a few hundred microseconds of CPU to start and end in a small VM. Should
 * it fail to start, nothing is evicted and the next note tries again. */
static void wake_locked(struct nono_fs *fs)
{
        if (!fs->ev_thread_on) {
                if (pthread_create(&fs->ev_thread, NULL, evict_main, fs) != 0)
                        return;
                fs->ev_thread_on = true;
        }
        fs->ev_pending = true;
        pthread_cond_signal(&fs->ev_cond);
}

void evict_note_locked(struct nono_fs *fs)
{
        atomic_fetch_add_explicit(&fs->ev_clock, 1, memory_order_relaxed);
        if (fs->ev_running && !fs->ev_pending && fs->fd_count > share(fs->ev_high) &&
            fs->fd_count >= fs->ev_next)
                wake_locked(fs);
}

static int cmp_cand(const void *a, const void *b)
{
        uint64_t x = ((const struct cand *)a)->used, y = ((const struct cand *)b)->used;
        return x < y ? -1 : x > y;
}

/* Chooses up to want of the least recently used inodes the kernel holds by a live binding. */
static size_t pick_locked(struct nono_fs *fs, struct victim *v, size_t want)
{
        struct cand *c = malloc((fs->table_count + 1) * sizeof(*c));
        size_t n = 0, k = 0;

        if (!c)
                return 0;
        for (size_t b = 0; b < fs->table_size; b++)
                for (struct fsino *i = fs->table[b]; i && n <= fs->table_count; i = i->hnext)
                        if (i->fd >= 0 && i->nlookup && i->parent && i->name && !i->gone)
                                c[n++] = (struct cand){i, __atomic_load_n(&i->used, __ATOMIC_RELAXED)};
        qsort(c, n, sizeof(*c), cmp_cand);
        uint64_t now = atomic_fetch_add_explicit(&fs->ev_clock, 1, memory_order_relaxed) + 1;
        for (size_t j = 0; j < n && k < want; j++) {
                struct fsino *i = c[j].i;
                if (!(v[k].name = strdup(i->name)))
                        break;
                v[k++].parent = i->parent == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i->parent;
                /* not again next pass should the kernel keep it (in use) */
                __atomic_store_n(&i->used, now, __ATOMIC_RELAXED);
        }
        free(c);
        return k;
}

struct job {
        struct nono_fs *fs;
        struct victim *v;
        size_t n;
        _Atomic size_t next;
};

static void *notify_main(void *arg)
{
        struct job *j = arg;
        struct nono_fs *fs = j->fs;

        for (size_t k; (k = atomic_fetch_add(&j->next, 1)) < j->n;) {
                /* a lookup waiting in evict_throttle() in this directory may hold the lock the kernel
                 * needs for this notification: let it go first */
                pthread_mutex_lock(&fs->lock);
                fs->ev_cur = j->v[k].parent;
                if (fs->ev_waiters)
                        pthread_cond_broadcast(&fs->ev_room);
                pthread_mutex_unlock(&fs->lock);
                /* -ENOENT: the kernel no longer has it cached; -ENODEV: the connection is gone */
                (void)fuse_lowlevel_notify_inval_entry(fs->se, j->v[k].parent, j->v[k].name,
                                                       strlen(j->v[k].name));
        }
        return NULL;
}

/* Several notifiers at once: each notification takes the directory lock exclusively, and lookups that run
 * in that directory meanwhile are let in between two notifications; notifiers waiting together are let in
 * together, so the drops keep pace with several processes looking names up in one directory. */
static void pass(struct nono_fs *fs, size_t want)
{
        struct job j = {.fs = fs, .v = calloc(want, sizeof(struct victim))};
        pthread_t t[EVICT_NOTIFIERS - 1];
        size_t nt = 0;

        if (!j.v)
                return;
        pthread_mutex_lock(&fs->lock);
        j.n = pick_locked(fs, j.v, want);
        pthread_mutex_unlock(&fs->lock);
        atomic_init(&j.next, 0);
        while (nt < EVICT_NOTIFIERS - 1 && nt * 16 < j.n &&
               pthread_create(&t[nt], NULL, notify_main, &j) == 0)
                nt++;
        notify_main(&j);
        while (nt)
                pthread_join(t[--nt], NULL);
        pthread_mutex_lock(&fs->lock);
        fs->ev_cur = 0;
        pthread_mutex_unlock(&fs->lock);
        for (size_t k = 0; k < j.n; k++)
                free(j.v[k].name);
        free(j.v);
}

static void *evict_main(void *arg)
{
        struct nono_fs *fs = arg;

        prctl(PR_SET_NAME, "nono-fs-evict");

        pthread_mutex_lock(&fs->lock);
        for (;;) {
                while (!fs->ev_pending && !fs->ev_stop)
                        pthread_cond_wait(&fs->ev_cond, &fs->lock);
                if (fs->ev_stop)
                        break;
                size_t want = fs->fd_count > share(fs->ev_low) ? fs->fd_count - share(fs->ev_low) : 0;
                pthread_mutex_unlock(&fs->lock);
                if (want)
                        pass(fs, want);
                pthread_mutex_lock(&fs->lock);
                /* The FORGETs arrive later; should the kernel have kept everything (all in use), do not
                 * rescan the table on every lookup but after a quarter of the gap between the marks. */
                fs->ev_next = fs->fd_count + (share(fs->ev_high) - share(fs->ev_low)) / 4 + 1;
                fs->ev_pending = false;
        }
        pthread_mutex_unlock(&fs->lock);
        return NULL;
}

void evict_throttle(struct nono_fs *fs, struct fsino *dir)
{
        fuse_ino_t id = dir == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)dir;
        struct timespec end;

        pthread_mutex_lock(&fs->lock);
        if (fs->ev_running && fs->fd_count >= share(fs->ev_ceiling)) {
                if (!fs->ev_pending) /* the last pass ended before the FORGETs were due: another */
                        wake_locked(fs);
                clock_gettime(CLOCK_MONOTONIC, &end);
                end.tv_nsec += fs->ev_cur == id ? EVICT_TURN_NS : EVICT_THROTTLE_NS;
                end.tv_sec += end.tv_nsec / 1000000000L;
                end.tv_nsec %= 1000000000L;
                fs->ev_waiters++;
                pthread_mutex_unlock(&fs->lock);
                loop_may_block(fs); /* the FORGETs it waits for are requests */
                pthread_mutex_lock(&fs->lock);
                while (fs->ev_running && fs->fd_count >= share(fs->ev_ceiling) &&
                       (fs->ev_cur != id || fs->fd_count >= share(fs->ev_hard)))
                        if (pthread_cond_timedwait(&fs->ev_room, &fs->lock, &end) == ETIMEDOUT)
                                break;
                if (--fs->ev_waiters == 0 && !fs->ev_running)
                        pthread_cond_broadcast(&fs->ev_room); /* evict_stop waits for us */
        }
        pthread_mutex_unlock(&fs->lock);
}

void evict_note_release_locked(struct nono_fs *fs)
{
        if (fs->ev_waiters && fs->fd_count < share(fs->ev_ceiling))
                pthread_cond_broadcast(&fs->ev_room);
}

static void evict_set_limit(struct nono_fs *fs, size_t soft)
{
        pthread_mutex_lock(&fs->lock);
        fs->ev_high = soft * EVICT_HIGH_PCT / 100;
        fs->ev_low = soft * EVICT_LOW_PCT / 100;
        fs->ev_ceiling = soft * EVICT_CEILING_PCT / 100;
        fs->ev_hard = soft * EVICT_HARD_PCT / 100;
        fs->ev_next = 0;
        pthread_mutex_unlock(&fs->lock);
}

int evict_start(struct nono_fs *fs)
{
        struct rlimit rl;

        if (fs->ev_running)
                return 0;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        /* RLIM_INFINITY cannot happen for NOFILE (nr_open bounds it), but stay finite */
        evict_set_limit(fs, rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur);
        pthread_condattr_t a;
        int e = pthread_condattr_init(&a);
        if (e)
                return -e;
        (void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        e = pthread_cond_init(&fs->ev_room, &a);
        pthread_condattr_destroy(&a);
        if (e)
                return -e;
        e = pthread_cond_init(&fs->ev_cond, NULL);
        if (e) {
                pthread_cond_destroy(&fs->ev_room);
                return -e;
        }
        fs->ev_stop = fs->ev_pending = false;
        pthread_mutex_lock(&fs->lock);
        fs->ev_thread_on = false; /* started by the first note above the high mark */
        fs->ev_running = true;
        pthread_mutex_unlock(&fs->lock);
        atomic_fetch_add(&n_budgets, 1);
        return 0;
}

void evict_stop(struct nono_fs *fs)
{
        pthread_mutex_lock(&fs->lock);
        bool running = fs->ev_running, thread = fs->ev_thread_on;
        fs->ev_running = false;
        fs->ev_thread_on = false;
        fs->ev_stop = true;
        if (running) {
                pthread_cond_signal(&fs->ev_cond);
                pthread_cond_broadcast(&fs->ev_room);
        }
        while (running && fs->ev_waiters) /* a lookup still in evict_throttle leaves within its bound */
                pthread_cond_wait(&fs->ev_room, &fs->lock);
        pthread_mutex_unlock(&fs->lock);
        if (!running)
                return;
        atomic_fetch_sub(&n_budgets, 1);
        if (thread)
                pthread_join(fs->ev_thread, NULL);
        pthread_cond_destroy(&fs->ev_cond);
        pthread_cond_destroy(&fs->ev_room);
}
