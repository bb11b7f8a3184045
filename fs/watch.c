/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.c - tells the kernel about changes made behind the mount while the agent runs.
 *
 * The problem: fs/ lets the kernel keep names and attributes for a day (fs.c), which is what makes it fast,
 * and fs/ tells the kernel itself when it changes something through the mount. A change made behind the
 * mount (the user's editor, a build or a `git checkout` outside the sandbox) was not seen: a file edited in
 * place kept its old size and mtime in `stat` (so `make` did not rebuild and `git status` showed no change),
 * and a file removed behind the mount stayed in the kernel's cache by name.
 *
 * The mechanism: one inotify instance per nono_fs watches every directory that fs/ holds (every directory
 * the kernel knows has an fd here; the watch is added through /proc/self/fd, never by name). One thread for
 * the process ("nono-fs-watch", below) reads the events every few milliseconds and, for a change that fs/
 * did not make itself:
 *   - a name that appeared or went (IN_CREATE, IN_MOVED_TO, IN_DELETE, IN_MOVED_FROM): the kernel forgets
 *     the name (FUSE_NOTIFY_INVAL_ENTRY; a negative entry included), and with it marks the directory
 *     changed, so that its attributes and cached listing are fetched again;
 *   - an object whose attributes changed or that a writer closed (IN_ATTRIB, IN_CLOSE_WRITE): if its ctime
 *     differs from the one fs/ last gave the kernel, the kernel forgets its attributes (not its pages: those
 *     go at the next open, ops-file.c "CACHE").
 * fs/'s own name changes are noted just before their system call (watch_own) and skipped when their event
 * comes back, so that the agent's creates and unlinks do not make the kernel look their names up again; a
 * note the event never matched ages out after two seconds. Its own attribute changes are told to the kernel
 * in the reply, with the ctime the watcher then finds, and after its own writes the kernel drops the
 * attributes itself (an open for writing sets served_ctime to 0: nothing for the watcher to do). Cost,
 * measured on tmpfs against NONO_FS_NO_WATCH=1 in alternating rounds: create of 10,000 files 3% slower,
 * unlink 2%, `nono run -- /bin/true` about 0.2 ms.
 *
 * The notifications run on this thread, never on a request handler: the kernel takes the directory's lock
 * for FUSE_NOTIFY_INVAL_ENTRY, which a request in that directory may hold while it waits for fs/.
 *
 * What it does not do: it is not part of the sandbox's security (the agent cannot change the real tree
 * except through fs/); it records nothing (changes behind the mount are not the agent's). Events the
 * kernel drops (IN_Q_OVERFLOW, past 16,384 queued) are lost, and a directory that could not be watched
 * (each nono_fs takes at most an eighth of the user's inotify watches, at most 16,384, so that the user's
 * editor keeps its own; or one fs/ may not read) is left to the checks at open (inode.c "REPLACED") and the
 * one-second freshness of names and listings (fs-internal.h "FRESHNESS"). Writes behind the mount to a file
 * that stays open are seen when it is closed. A granted file (a root that is a file) is not watched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs/fs-internal.h"

#define WATCH_MASK                                                                                           \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_ONLYDIR |     \
         IN_EXCL_UNLINK)
#define OWN_SLOTS         8192 /* power of two */
#define WATCH_DEBOUNCE_MS 5
#define OWN_PROBES        16
#define OWN_AGE_NS        2000000000ull

static uint64_t now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t own_key(const struct fsino *dir, const char *name)
{
        uintptr_t d = (uintptr_t)dir;
        return XXH3_64bits_withSeed(name, strlen(name), (uint64_t)d) | 1;
}

void watch_own(struct nono_fs *fs, const struct fsino *dir, const char *name)
{
        if (fs->watch_fd < 0)
                return;
        uint64_t key = own_key(dir, name), t = now_ns();
        pthread_mutex_lock(&fs->watch_lock);
        size_t at = key & (OWN_SLOTS - 1), pick = at;
        for (size_t k = 0; k < OWN_PROBES; k++) {
                struct own_note *n = &fs->own[(at + k) & (OWN_SLOTS - 1)];
                if (!n->key || t - n->t > OWN_AGE_NS) {
                        pick = (at + k) & (OWN_SLOTS - 1);
                        break;
                }
                if (n->t < fs->own[pick].t)
                        pick = (at + k) & (OWN_SLOTS - 1);
        }
        fs->own[pick] = (struct own_note){key, t};
        pthread_mutex_unlock(&fs->watch_lock);
}

/* True (and the note consumed) when fs/ itself changed this name lately. */
static bool own_consume(struct nono_fs *fs, const struct fsino *dir, const char *name)
{
        uint64_t key = own_key(dir, name), t = now_ns();
        bool hit = false;
        pthread_mutex_lock(&fs->watch_lock);
        size_t at = key & (OWN_SLOTS - 1);
        for (size_t k = 0; k < OWN_PROBES && !hit; k++) {
                struct own_note *n = &fs->own[(at + k) & (OWN_SLOTS - 1)];
                if (n->key == key && t - n->t <= OWN_AGE_NS) {
                        n->key = 0;
                        hit = true;
                }
        }
        pthread_mutex_unlock(&fs->watch_lock);
        return hit;
}

/* ---- wd -> directory (open addressing, under fs->lock) ------------------------------------------------- */

static size_t wslot(const struct nono_fs *fs, int wd)
{
        return ((size_t)wd * 2654435761u) & (fs->wmap_size - 1);
}

static void wmap_put_locked(struct nono_fs *fs, int wd, struct fsino *i)
{
        if ((fs->wmap_count + 1) * 2 > fs->wmap_size) {
                size_t osize = fs->wmap_size, nsize = osize ? osize * 2 : 64;
                struct wentry *old = fs->wmap, *n = calloc(nsize, sizeof(*n));
                if (!n)
                        return; /* not remembered: its events are dropped */
                fs->wmap = n;
                fs->wmap_size = nsize;
                fs->wmap_count = 0;
                for (size_t k = 0; k < osize; k++)
                        if (old[k].i)
                                wmap_put_locked(fs, old[k].wd, old[k].i);
                free(old);
        }
        size_t s = wslot(fs, wd);
        while (fs->wmap[s].i)
                s = (s + 1) & (fs->wmap_size - 1);
        fs->wmap[s] = (struct wentry){wd, i};
        fs->wmap_count++;
}

static struct fsino *wmap_get_locked(struct nono_fs *fs, int wd)
{
        if (!fs->wmap_size)
                return NULL;
        for (size_t s = wslot(fs, wd); fs->wmap[s].i; s = (s + 1) & (fs->wmap_size - 1))
                if (fs->wmap[s].wd == wd)
                        return fs->wmap[s].i;
        return NULL;
}

static void wmap_del_locked(struct nono_fs *fs, int wd)
{
        if (!fs->wmap_size)
                return;
        size_t s = wslot(fs, wd);
        while (fs->wmap[s].i && fs->wmap[s].wd != wd)
                s = (s + 1) & (fs->wmap_size - 1);
        if (!fs->wmap[s].i)
                return;
        fs->wmap[s].i = NULL;
        fs->wmap_count--;
        /* backward shift: re-place the entries of the run after the hole */
        for (size_t n = (s + 1) & (fs->wmap_size - 1); fs->wmap[n].i; n = (n + 1) & (fs->wmap_size - 1)) {
                struct wentry e = fs->wmap[n];
                fs->wmap[n].i = NULL;
                fs->wmap_count--;
                wmap_put_locked(fs, e.wd, e.i);
        }
}

/* ---- watches ------------------------------------------------------------------------------------------ */

void watch_add(struct nono_fs *fs, struct fsino *i)
{
        char p[64];
        int fd = __atomic_load_n(&i->fd, __ATOMIC_ACQUIRE);

        if (fs->watch_fd < 0 || fd < 0 || i->type != S_IFDIR)
                return;
        if (atomic_fetch_add_explicit(&fs->watch_count, 1, memory_order_relaxed) >= fs->watch_budget) {
                atomic_fetch_sub_explicit(&fs->watch_count, 1, memory_order_relaxed);
                return; /* over its share of the user's watches: left to the checks at open */
        }
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        int wd = inotify_add_watch(fs->watch_fd, p, WATCH_MASK);
        if (wd < 0) { /* ENOSPC: the user's limit; EACCES: a directory fs/ may not read */
                atomic_fetch_sub_explicit(&fs->watch_count, 1, memory_order_relaxed);
                return;
        }
        pthread_mutex_lock(&fs->lock);
        /* the same directory watched twice (two fsinos cannot share it; a directory renamed and found
         * again is the same fsino) gives the same wd: keep one entry */
        if (!wmap_get_locked(fs, wd))
                wmap_put_locked(fs, wd, i);
        i->wd = wd;
        pthread_mutex_unlock(&fs->lock);
}

void watch_forget_locked(struct nono_fs *fs, struct fsino *i)
{
        if (i->wd <= 0)
                return;
        if (fs->watch_fd >= 0 && wmap_get_locked(fs, i->wd) == i) {
                wmap_del_locked(fs, i->wd);
                (void)inotify_rm_watch(fs->watch_fd, i->wd);
        }
        i->wd = 0;
        atomic_fetch_sub_explicit(&fs->watch_count, 1, memory_order_relaxed);
}

/* ---- the thread --------------------------------------------------------------------------------------- */

static fuse_ino_t node_of(struct nono_fs *fs, const struct fsino *i)
{
        return i == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
}

/* The kernel forgets the attributes of the object st describes if fs/ gave it another ctime. */
static void attrs_changed(struct nono_fs *fs, const struct stat *st)
{
        fuse_ino_t node = 0;
        pthread_mutex_lock(&fs->lock);
        struct fsino *i = st->st_ino == fs->root.ino && st->st_dev == fs->root.dev
                              ? &fs->root
                              : fsino_find_locked(fs, st->st_dev, st->st_ino);
        uint64_t served = i ? atomic_load_explicit(&i->served_ctime, memory_order_relaxed) : 0;
        /* served 0: the kernel has no attributes of it from fs/ to forget (its root's are placeholders until
         * the first GETATTR, whose reply an invalidation would make it discard) */
        if (served && served != ctime_ns(st))
                node = node_of(fs, i);
        pthread_mutex_unlock(&fs->lock);
        if (node)
                (void)fuse_lowlevel_notify_inval_inode(fs->se, node, -1, 0);
}

static void handle(struct nono_fs *fs, struct fsino *dir, const struct inotify_event *e)
{
        struct stat st;
        const char *name = e->len ? e->name : NULL;

        if (!name) { /* the directory itself */
                if ((e->mask & IN_ATTRIB) && fstat(dir->fd, &st) == 0)
                        attrs_changed(fs, &st);
                return;
        }
        if (!strncmp(name, NONO_STASH_PREFIX, strlen(NONO_STASH_PREFIX)))
                return;
        if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) {
                if (own_consume(fs, dir, name))
                        return;
                /* the kernel also marks the directory changed: its attributes and cached listing are
                 * fetched again. Not FUSE_NOTIFY_INVAL_INODE on the directory: it makes the kernel discard
                 * a GETATTR reply in flight, and a storm of them (a checkout behind the mount) kept the
                 * root's placeholder attributes (mode 0) in place: EACCES for an unprivileged agent */
                (void)fuse_lowlevel_notify_inval_entry(fs->se, node_of(fs, dir), name, strlen(name));
                return;
        }
        if ((e->mask & (IN_ATTRIB | IN_CLOSE_WRITE)) && fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                attrs_changed(fs, &st);
}

/* One thread serves the watches of every nono_fs in the process (nono run has one per granted root): a
 * thread each cost the start of `nono run` about 0.35 ms per root. It is started with the first watch and
 * stays (blocked in epoll_wait) until the process exits. It handles a batch under hub.lock, so that
 * watch_stop() (which takes it) never frees an fs whose events are being handled. Handling may wait for a
 * directory lock in the kernel; no request handler takes hub.lock, so that wait always ends. */
static struct {
        pthread_mutex_t lock;
        int epfd;
        bool started;
        pthread_t thread;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1};

/* At most 16 reads a round, so that one root's stream of events (a build writing through the mount) does
 * not keep the other roots waiting, nor watch_stop() on hub.lock. */
static void drain(struct nono_fs *fs, char *buf, size_t cap)
{
        ssize_t n;
        for (int reads = 0; reads < 16 && (n = read(fs->watch_fd, buf, cap)) > 0; reads++) {
                const struct inotify_event *last = NULL; /* the previous attribute event of this read */
                for (char *q = buf; q < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *)q;
                        q += sizeof(*e) + e->len;
                        if (e->mask & IN_Q_OVERFLOW)
                                continue;
                        /* a created file gives IN_ATTRIB (its owner set) and IN_CLOSE_WRITE in a row: one
                         * look at its attributes answers both */
                        bool attr =
                            !(e->mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_IGNORED));
                        if (attr && last && last->wd == e->wd && last->len == e->len &&
                            !memcmp(last->name, e->name, e->len))
                                continue;
                        last = attr ? e : NULL;
                        pthread_mutex_lock(&fs->lock);
                        struct fsino *d = wmap_get_locked(fs, e->wd);
                        if (d && (e->mask & IN_IGNORED)) { /* the directory is gone, or unwatched */
                                wmap_del_locked(fs, e->wd);
                                d->wd = 0;
                                d = NULL;
                        }
                        if (d && d != &fs->root)
                                d->nlookup++; /* pinned while handled: its fd stays open */
                        pthread_mutex_unlock(&fs->lock);
                        if (!d)
                                continue;
                        handle(fs, d, e);
                        fsino_forget(fs, d, 1);
                }
        }
}

static void *watch_main(void *arg)
{
        static char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
        struct epoll_event ev[16];

        (void)arg;
        prctl(PR_SET_NAME, "nono-fs-watch", 0, 0, 0);
        for (;;) {
                if (epoll_wait(hub.epfd, ev, 16, -1) < 0)
                        continue;
                /* Events come one per change; reading them as they come woke this thread for every create
                 * or unlink the agent made through the mount (on 2 CPUs: create 15% slower, measured). A
                 * change behind the mount is seen WATCH_DEBOUNCE_MS later instead. */
                struct timespec d = {0, WATCH_DEBOUNCE_MS * 1000000L};
                nanosleep(&d, NULL);
                pthread_mutex_lock(&hub.lock);
                int n = epoll_wait(hub.epfd, ev, 16, 0); /* what is ready now, its fs still registered */
                for (int k = 0; k < n; k++)
                        drain(ev[k].data.ptr, buf, sizeof(buf));
                pthread_mutex_unlock(&hub.lock);
        }
        return NULL;
}

int watch_start(struct nono_fs *fs)
{
        fs->watch_fd = -1;
        if (fs->root_is_file || fs_env_flag("NONO_FS_NO_WATCH", false))
                return 0;
        /* inotify watches are counted per user (fs.inotify.max_user_watches), and the user's editor and
         * file watchers need theirs: each nono_fs takes at most an eighth of the limit */
        unsigned long max = 0;
        FILE *f = fopen("/proc/sys/fs/inotify/max_user_watches", "re");
        if (!f || fscanf(f, "%lu", &max) != 1)
                max = 8192;
        if (f)
                fclose(f);
        fs->watch_budget = max / 8 < 16384 ? max / 8 : 16384;
        fs->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        fs->own = fs->watch_fd < 0 ? NULL : calloc(OWN_SLOTS, sizeof(*fs->own));
        if (!fs->own)
                goto off;
        pthread_mutex_lock(&hub.lock);
        if (!hub.started) {
                if (hub.epfd < 0)
                        hub.epfd = epoll_create1(EPOLL_CLOEXEC);
                hub.started = hub.epfd >= 0 && pthread_create(&hub.thread, NULL, watch_main, NULL) == 0;
        }
        struct epoll_event fe = {.events = EPOLLIN, .data.ptr = fs};
        bool ok = hub.started && epoll_ctl(hub.epfd, EPOLL_CTL_ADD, fs->watch_fd, &fe) == 0;
        fs->watch_on = ok;
        pthread_mutex_unlock(&hub.lock);
        if (!ok)
                goto off;
        watch_add(fs, &fs->root);
        return 0;
off: /* nono works without it: changes behind the mount are then seen as without the watcher */
        if (fs->watch_fd >= 0)
                close(fs->watch_fd);
        fs->watch_fd = -1;
        return 0;
}

void watch_stop(struct nono_fs *fs)
{
        pthread_mutex_lock(&hub.lock); /* not while the thread handles a batch */
        if (fs->watch_on)
                epoll_ctl(hub.epfd, EPOLL_CTL_DEL, fs->watch_fd, NULL);
        fs->watch_on = false;
        pthread_mutex_unlock(&hub.lock);
        pthread_mutex_lock(&fs->lock);
        int fd = fs->watch_fd;
        fs->watch_fd = -1; /* watch_add and watch_forget_locked do nothing from here on */
        pthread_mutex_unlock(&fs->lock);
        if (fd >= 0)
                close(fd);
}
