/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rec.c - audit events of fs/, batched into the store.
 *
 * Handlers append to an in-memory batch (one mutex, no I/O); a flusher thread hands the batch to the store
 * when it holds 512 events or 100 ms after its first event, with NONO_ASYNC so the store's writer thread
 * group-commits it. One flusher serves every recording nono_fs of the process (nono run serves each granted
 * root with one): it is idle but for that timer, and a thread costs a few hundred microseconds of CPU to
 * start and end in a small VM, on the way to the agent's start. It starts with the first event. rec_flush()
 * (nono_fs_stop, SIGTERM paths) drains the batch and waits until it is durable.
 * What is not guaranteed: events of the last ~100 ms before a SIGKILL of nono itself (the pre-images, which
 * restore depends on, are written synchronously by cow.c and are not affected).
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "fs/fs-internal.h"

#define BATCH 512

#define FLUSH_NS 100000000LL /* a batch waits at most this long after its first event */

struct nono_rec {
        pthread_mutex_t lock;
        struct nono_event *ev;
        size_t n, cap;
        int64_t first_ns; /* CLOCK_MONOTONIC of the batch's first event */
        bool closed;      /* after nono_fs_stop: the store is not touched again; late events are dropped */
        pthread_mutex_t store_lock; /* keeps batches in order */
        struct nono_fs *fs;
        struct nono_rec *next; /* in the flusher's list */
        bool leaving;          /* under fl_lock: rec_close() waits to take it out; not drained again */
};

/* The flusher and the recorders it serves. Lock order: fl_life, then fl_lock, then a recorder's lock; push()
 * takes fl_lock only after letting go of its recorder's lock. fl_life keeps one start or stop of the thread
 * at a time (a recorder registering while the last one leaves must not see a thread about to end). */
static pthread_mutex_t fl_life = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t fl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fl_wake;   /* CLOCK_MONOTONIC; a batch began or filled, or stop */
static pthread_cond_t fl_idle;   /* fl_busy was cleared */
static struct nono_rec *fl_list; /* under fl_lock */
static struct nono_rec *fl_busy; /* the recorder being drained, fl_lock not held meanwhile */
static bool fl_running, fl_stop; /* under fl_lock; fl_running changes under fl_life too */
static pthread_t fl_thread;
static pthread_once_t fl_once = PTHREAD_ONCE_INIT;

static void fl_init(void)
{
        pthread_condattr_t a;

        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&fl_wake, &a);
        pthread_condattr_destroy(&a);
        pthread_cond_init(&fl_idle, NULL);
}

static int64_t mono_ns(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void free_batch(struct nono_event *ev, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                free((char *)ev[k].path);
                free((char *)ev[k].path2);
        }
        free(ev);
}

/* Takes the current batch and appends it to the store. */
static int drain(struct nono_fs *fs, unsigned flags)
{
        struct nono_rec *r = fs->rec;

        pthread_mutex_lock(&r->store_lock);
        pthread_mutex_lock(&r->lock);
        struct nono_event *ev = r->ev;
        size_t n = r->n;
        r->ev = NULL;
        r->n = r->cap = 0;
        pthread_mutex_unlock(&r->lock);
        int res = 0;
        if (n)
                res = nono_events_append(fs->cfg.store, fs->session, ev, n, flags);
        pthread_mutex_unlock(&r->store_lock);
        if (res < 0)
                fprintf(stderr, "nono: cannot record %zu file events: %s\n", n, nono_store_errmsg());
        free_batch(ev, n);
        return res;
}

/* The first recorder whose batch is due (full, or FLUSH_NS old), or NULL and when the next one will be. */
static struct nono_rec *due_locked(int64_t now, int64_t *next)
{
        *next = INT64_MAX;
        for (struct nono_rec *r = fl_list; r; r = r->next) {
                if (r->leaving)
                        continue;
                pthread_mutex_lock(&r->lock);
                int64_t at = r->n == 0 ? INT64_MAX : r->n >= BATCH ? now : r->first_ns + FLUSH_NS;
                pthread_mutex_unlock(&r->lock);
                if (at <= now)
                        return r;
                if (at < *next)
                        *next = at;
        }
        return NULL;
}

static void *flusher(void *arg)
{
        (void)arg;
        prctl(PR_SET_NAME, "nono-fs-events");
        pthread_mutex_lock(&fl_lock);
        while (!fl_stop) {
                int64_t next;
                struct nono_rec *r = due_locked(mono_ns(), &next);
                if (r) {
                        /* drained without fl_lock, so that push() never waits for the store; rec_close()
                         * waits for fl_busy before it takes r out of the list */
                        fl_busy = r;
                        pthread_mutex_unlock(&fl_lock);
                        drain(r->fs, NONO_ASYNC);
                        pthread_mutex_lock(&fl_lock);
                        fl_busy = NULL;
                        pthread_cond_broadcast(&fl_idle);
                } else if (next == INT64_MAX) {
                        pthread_cond_wait(&fl_wake, &fl_lock);
                } else {
                        struct timespec t = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
                        pthread_cond_timedwait(&fl_wake, &fl_lock, &t);
                }
        }
        pthread_mutex_unlock(&fl_lock);
        return NULL;
}

int rec_new(struct nono_fs *fs)
{
        if (!fs->cfg.record)
                return 0;
        if (!fs->cfg.store || !fs->session)
                return -EINVAL;
        struct nono_rec *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_once(&fl_once, fl_init);
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->store_lock, NULL);
        r->fs = fs;
        /* the flusher starts with the first batch (push): a session whose roots see no event, as a
         * short command's, never starts it */
        pthread_mutex_lock(&fl_lock);
        r->next = fl_list;
        fl_list = r;
        pthread_mutex_unlock(&fl_lock);
        fs->rec = r;
        return 0;
}

/* Under fl_life and fl_lock. When the thread cannot be started, batches still reach the store: when one
 * fills up (the next push tries again) and at rec_close. */
static void flusher_start_locked(void)
{
        if (fl_running || !fl_list)
                return;
        fl_stop = false;
        fl_running = pthread_create(&fl_thread, NULL, flusher, NULL) == 0;
}

/* Takes r out of the flusher's list (waiting for a drain of r in progress, and keeping the flusher from
 * starting another: with events pouring in, it would pick r again each time); the last one out ends the
 * flusher. */
static void rec_leave(struct nono_rec *r)
{
        pthread_mutex_lock(&fl_life);
        pthread_mutex_lock(&fl_lock);
        r->leaving = true;
        while (fl_busy == r)
                pthread_cond_wait(&fl_idle, &fl_lock);
        for (struct nono_rec **p = &fl_list; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        break;
                }
        bool last = !fl_list && fl_running;
        if (last) {
                fl_stop = true;
                pthread_cond_signal(&fl_wake);
        }
        pthread_mutex_unlock(&fl_lock);
        if (last) {
                pthread_join(fl_thread, NULL);
                fl_running = false;
        }
        pthread_mutex_unlock(&fl_life);
}

int rec_flush(struct nono_fs *fs)
{
        if (!fs->rec || fs->rec->closed)
                return 0;
        int r = drain(fs, 0);
        int s = nono_store_sync(fs->cfg.store);
        return r < 0 ? r : s;
}

/* Ends recording: the flusher stops, everything is made durable (queued: handed to the store's queue, for the
 * caller's next sync item to commit), and from here on fs/ does not use the store for events (the caller
 * may close it). The batch is closed in the same critical section that takes its last
 * events: an event pushed while the last batch was being written used to land in a batch nobody wrote (a
 * request still running when the stop began, e.g. after nono_fs_stop gave up waiting for the loop). Now an
 * event is either in the last batch or refused (and not counted in fs->events). */
int rec_close(struct nono_fs *fs, bool queued)
{
        struct nono_rec *r = fs->rec;

        if (!r || r->closed)
                return 0;
        rec_leave(r);
        pthread_mutex_lock(&r->store_lock);
        pthread_mutex_lock(&r->lock);
        r->closed = true;
        struct nono_event *ev = r->ev;
        size_t n = r->n;
        r->ev = NULL;
        r->n = r->cap = 0;
        pthread_mutex_unlock(&r->lock);
        int e = n ? nono_events_append(fs->cfg.store, fs->session, ev, n, queued ? NONO_ASYNC : 0) : 0;
        pthread_mutex_unlock(&r->store_lock);
        if (e < 0)
                fprintf(stderr, "nono: cannot record %zu file events: %s\n", n, nono_store_errmsg());
        free_batch(ev, n);
        int s = queued ? 0 : nono_store_sync(fs->cfg.store);
        return e < 0 ? e : s;
}

void rec_free(struct nono_fs *fs)
{
        struct nono_rec *r = fs->rec;

        if (!r)
                return;
        rec_close(fs, false);
        fs->rec = NULL;
        free_batch(r->ev, r->n);
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->store_lock);
        free(r);
}

static void push(struct nono_fs *fs, uint32_t pid, uint32_t uid, uint16_t op, const char *path,
                 const char *path2, int result, uint32_t flags, uint32_t oflags, uint64_t rd, uint64_t wr)
{
        struct nono_rec *r = fs->rec;
        struct timespec t;
        char *p = strdup(path ? path : ""), *p2 = path2 ? strdup(path2) : NULL;

        if (!p || (path2 && !p2)) {
                free(p);
                free(p2);
                return;
        }
        clock_gettime(CLOCK_REALTIME, &t);
        pthread_mutex_lock(&r->lock);
        if (r->closed) {
                pthread_mutex_unlock(&r->lock);
                free(p);
                free(p2);
                return;
        }
        if (r->n == r->cap) {
                size_t nc = r->cap ? r->cap * 2 : 64;
                struct nono_event *ne = realloc(r->ev, nc * sizeof(*ne));
                if (!ne) {
                        pthread_mutex_unlock(&r->lock);
                        free(p);
                        free(p2);
                        return;
                }
                r->ev = ne;
                r->cap = nc;
        }
        r->ev[r->n++] = (struct nono_event){
            .time_ns = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec,
            .pid = pid,
            .uid = uid,
            .type = NONO_EV_FILE,
            .op = op,
            .result = result,
            .flags = flags,
            .oflags = oflags,
            .root = fs->cfg.root_id,
            .bytes_read = rd,
            .bytes_written = wr,
            .path = p,
            .path2 = p2,
        };
        bool wake = r->n == 1 || r->n == BATCH;
        if (r->n == 1)
                r->first_ns = mono_ns();
        pthread_mutex_unlock(&r->lock);
        atomic_fetch_add(&fs->events, 1);
        if (wake) { /* the flusher's next deadline changed */
                pthread_mutex_lock(&fl_life);
                pthread_mutex_lock(&fl_lock);
                flusher_start_locked();
                pthread_cond_signal(&fl_wake);
                pthread_mutex_unlock(&fl_lock);
                pthread_mutex_unlock(&fl_life);
        }
}

void rec_event(struct nono_fs *fs, fuse_req_t req, uint16_t op, const char *path, const char *path2,
               int result, uint32_t flags, uint32_t oflags, uint64_t rd, uint64_t wr)
{
        if (!fs->rec)
                return;
        const struct fuse_ctx *c = req ? fuse_req_ctx(req) : NULL;
        push(fs, c ? (uint32_t)c->pid : 0, c ? (uint32_t)c->uid : 0, op, path, path2, result, flags, oflags,
             rd, wr);
}

void rec_event_as(struct nono_fs *fs, uint32_t pid, uint32_t uid, uint16_t op, const char *path, int result,
                  uint32_t flags, uint32_t oflags, uint64_t rd, uint64_t wr)
{
        if (fs->rec)
                push(fs, pid, uid, op, path, NULL, result, flags, oflags, rd, wr);
}
