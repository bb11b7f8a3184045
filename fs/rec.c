/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rec.c - audit events of fs/, batched into the store.
 *
 * Handlers append to an in-memory batch (one mutex, no I/O); a flusher thread hands the batch to the store
 * when it holds 512 events or 100 ms after its first event, with NONO_ASYNC so the store's writer thread
 * group-commits it. rec_flush() (nono_fs_stop, SIGTERM paths) drains the batch and waits until it is durable.
 * What is not guaranteed: events of the last ~100 ms before a SIGKILL of nono itself (the pre-images, which
 * restore depends on, are written synchronously by cow.c and are not affected).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs/fs-internal.h"

#define BATCH 512

struct nono_rec {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct nono_event *ev;
        size_t n, cap;
        bool stop;
        bool closed; /* after nono_fs_stop: the store is not touched again; late events are dropped */
        pthread_t thread;
        pthread_mutex_t store_lock; /* keeps batches in order */
};

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

static void *flusher(void *arg)
{
        struct nono_fs *fs = arg;
        struct nono_rec *r = fs->rec;

        pthread_mutex_lock(&r->lock);
        while (!r->stop) {
                if (r->n == 0) {
                        pthread_cond_wait(&r->wake, &r->lock);
                        continue;
                }
                if (r->n < BATCH) {
                        struct timespec t;
                        clock_gettime(CLOCK_REALTIME, &t);
                        t.tv_nsec += 100 * 1000 * 1000;
                        if (t.tv_nsec >= 1000000000) {
                                t.tv_sec++;
                                t.tv_nsec -= 1000000000;
                        }
                        pthread_cond_timedwait(&r->wake, &r->lock, &t);
                        if (r->stop)
                                break;
                }
                pthread_mutex_unlock(&r->lock);
                drain(fs, NONO_ASYNC);
                pthread_mutex_lock(&r->lock);
        }
        pthread_mutex_unlock(&r->lock);
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
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->store_lock, NULL);
        pthread_cond_init(&r->wake, NULL);
        fs->rec = r;
        int e = pthread_create(&r->thread, NULL, flusher, fs);
        if (e) {
                fs->rec = NULL;
                free(r);
                return -e;
        }
        return 0;
}

int rec_flush(struct nono_fs *fs)
{
        if (!fs->rec || fs->rec->closed)
                return 0;
        int r = drain(fs, 0);
        int s = nono_store_sync(fs->cfg.store);
        return r < 0 ? r : s;
}

/* Ends recording: the flusher stops, everything is made durable, and from here on fs/ does not use the store
 * for events (the caller may close it). The batch is closed in the same critical section that takes its last
 * events: an event pushed while the last batch was being written used to land in a batch nobody wrote (a
 * request still running when the stop began, e.g. after nono_fs_stop gave up waiting for the loop). Now an
 * event is either in the last batch or refused (and not counted in fs->events). */
int rec_close(struct nono_fs *fs)
{
        struct nono_rec *r = fs->rec;

        if (!r || r->closed)
                return 0;
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
        pthread_mutex_lock(&r->store_lock);
        pthread_mutex_lock(&r->lock);
        r->closed = true;
        struct nono_event *ev = r->ev;
        size_t n = r->n;
        r->ev = NULL;
        r->n = r->cap = 0;
        pthread_mutex_unlock(&r->lock);
        int e = n ? nono_events_append(fs->cfg.store, fs->session, ev, n, 0) : 0;
        pthread_mutex_unlock(&r->store_lock);
        if (e < 0)
                fprintf(stderr, "nono: cannot record %zu file events: %s\n", n, nono_store_errmsg());
        free_batch(ev, n);
        int s = nono_store_sync(fs->cfg.store);
        return e < 0 ? e : s;
}

void rec_free(struct nono_fs *fs)
{
        struct nono_rec *r = fs->rec;

        if (!r)
                return;
        rec_close(fs);
        fs->rec = NULL;
        free_batch(r->ev, r->n);
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->store_lock);
        pthread_cond_destroy(&r->wake);
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
        if (r->n == 1 || r->n >= BATCH)
                pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        atomic_fetch_add(&fs->events, 1);
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
