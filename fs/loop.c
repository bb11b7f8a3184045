/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop.c - the worker threads that answer a session's requests.
 *
 * One worker, the reader, is always blocked in read() of the session's fd and answers what it reads.
 * Another worker starts, or wakes from where it waits, only when a handler is about to wait for something
 * only another request can bring, or for a disk flush: a blocking flock() waits for another process's
 * unlock (a request for this session), a LOOKUP over the fd budget waits for FORGETs (evict.c), FSYNC and
 * FSYNCDIR flush the disk, and a change under --rollback waits for the store's durable sync. Handlers say
 * so with loop_may_block() before they wait; with one worker, such a request could hang the session (the
 * `flock` test of tests/e2e/run-functional.bats fails without it) or hold up every other. A woken worker
 * reads while requests are waiting, then goes back to wait on a condition variable, not in read().
 *
 * Why one reader: the kernel hands each request to the worker that has waited longest in read(), so two
 * workers reading take turns even for one process's sequential requests, and each turn wakes a sleeping
 * thread instead of the one that just answered. Checking for a waiting request as each is taken (and
 * waking a second worker then) does not pay either: RELEASE is asynchronous, so the next file's LOOKUP is
 * usually queued behind it. Measured on tmpfs on this project's 2-vCPU VM, 5,000 files created: 4.1
 * context switches and 86 us of daemon CPU per file with one reader, 5.7-6.2 and 92-112 us with two
 * reading or with the check; unlinks 12% faster in wall time. A check that skips RELEASE and FORGET
 * still cost create 3% and unlink 6%, and a cold `git status` (whose index preload stats in parallel
 * threads) was no faster with it: 0.20-0.22 s, 0.20-0.21 s with one reader, 0.24-0.25 s with two. What it
 * costs: requests from processes working in parallel (`make -j2`) wait for each other's handler, tens of
 * microseconds, less than a wake-up here (the make row did not move); a handler that waits for the disk
 * without saying so (a cold LOOKUP, a READ that is not passed through) holds up the others for that long.
 * Workers are capped at 8 (or nono_fs_config.threads), as in libfuse's loop.
 *
 * Why not libfuse's multithreaded loop: it is a thread that only waits for the session's end, plus
 * workers, of which there are two as soon as the first request came, both reading (the turns above).
 * `nono run` serves two roots by default (the workdir and ~/.gitconfig): six threads, each a few hundred
 * microseconds of CPU to start and to end on a small VM, for an agent that may make a handful of
 * requests. Requests are received and answered by libfuse's own fuse_session_receive_buf/process_buf.
 *
 * The session's end: the kernel ends the connection (ENODEV, ECONNABORTED) and every read fails; the
 * first worker to see it wakes the waiting ones, the last to leave writes done_fd, and loop_join
 * (nono_fs_stop) joins them all, so every RELEASE and its event has been answered and each worker's
 * libfuse state freed before the session is destroyed.
 *
 * Not a security mechanism: which requests are answered, and how, is decided in ops-*.c.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fs/fs-internal.h"

#define DEFAULT_THREADS 8u /* the cap, as libfuse's default max_threads */

static void *worker_main(void *arg);

/* A worker more, which goes to wait for a wake-up (the first one reads); under fs->loop_lock. Workers
 * block every signal: signals are the main thread's. */
static int spawn_locked(nono_fs *fs)
{
        sigset_t all, old;
        pthread_t t;

        if (fs->loop_n_tids == fs->loop_tids_cap) {
                size_t n = fs->loop_tids_cap ? 2 * fs->loop_tids_cap : 4;
                pthread_t *v = realloc(fs->loop_tids, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                fs->loop_tids = v;
                fs->loop_tids_cap = n;
        }
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int e = pthread_create(&t, NULL, worker_main, fs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e)
                return -e;
        fs->loop_tids[fs->loop_n_tids++] = t;
        fs->loop_threads++;
        return 0;
}

/* Makes sure a worker is reading: none is (all are answering a request) and one more is wanted. A woken
 * or new worker counts as reading from here, so a second call wakes no second one. */
static void want_reader_locked(nono_fs *fs)
{
        if (fs->loop_reading > 0 || fs->loop_ending)
                return;
        if (fs->loop_waiting > fs->loop_wakes) {
                fs->loop_wakes++;
                fs->loop_reading++;
                pthread_cond_signal(&fs->loop_cv);
        } else if (fs->loop_threads < fs->loop_cap && spawn_locked(fs) == 0) {
                fs->loop_wakes++; /* the new worker takes this wake-up at once */
                fs->loop_reading++;
        }
}

void loop_may_block(nono_fs *fs)
{
        pthread_mutex_lock(&fs->loop_lock);
        want_reader_locked(fs);
        pthread_mutex_unlock(&fs->loop_lock);
}

static bool pending(nono_fs *fs)
{
        struct pollfd p = {.fd = fuse_session_fd(fs->se), .events = POLLIN};
        return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * SPLICE: how requests are received. By splice(), a large WRITE's data goes from the kernel's pages to the
 * backing file with no copy through fs/'s memory, but every request costs two system calls (into a pipe,
 * then a small one out of it) where read() is one. Without passthrough (an unprivileged daemon), fs/
 * therefore receives by splice only while large WRITEs come: after a WRITE of SPLICE_FROM bytes or more,
 * and until a request that is not one. libfuse looks at FUSE_CAP_SPLICE_READ in its connection's `want`
 * each time it receives, so the switch is that bit; the word is written only here after INIT, and a
 * worker that reads it as it changes receives one request the other way, which works either way.
 * Measured as uid 65534 against always splicing: create and unlink of 5,000 files on tmpfs 8% faster;
 * always reading made a 512 MiB write+fsync on ext4 15-20% slower (a copy of every byte more).
 */
#define OP_WRITE    16u
#define SPLICE_FROM (64u << 10)

struct in_start { /* the start of every request (linux/fuse.h's fuse_in_header) */
        uint32_t len, opcode;
};

static void adapt_splice(nono_fs *fs, const struct fuse_buf *buf)
{
        const struct in_start *in = buf->mem;
        bool big = (buf->flags & FUSE_BUF_IS_FD) || /* it was spliced: a large WRITE */
                   (in && buf->size >= sizeof(*in) && in->opcode == OP_WRITE && in->len >= SPLICE_FROM);
        unsigned was = __atomic_load_n(&fs->conn->want, __ATOMIC_RELAXED);
        if (big != !!(was & FUSE_CAP_SPLICE_READ))
                __atomic_store_n(&fs->conn->want,
                                 big ? was | FUSE_CAP_SPLICE_READ : was & ~FUSE_CAP_SPLICE_READ,
                                 __ATOMIC_RELAXED);
}

/* Waits for a wake-up (true) or the session's end (false). */
static bool wait_wake(nono_fs *fs)
{
        pthread_mutex_lock(&fs->loop_lock);
        fs->loop_waiting++;
        while (!fs->loop_wakes && !fs->loop_ending)
                pthread_cond_wait(&fs->loop_cv, &fs->loop_lock);
        fs->loop_waiting--;
        bool go = !fs->loop_ending;
        if (go)
                fs->loop_wakes--;
        pthread_mutex_unlock(&fs->loop_lock);
        return go;
}

static void *worker_main(void *arg)
{
        nono_fs *fs = arg;
        struct fuse_buf buf = {.mem = NULL};

        prctl(PR_SET_NAME, "nono-fs");
        pthread_mutex_lock(&fs->loop_lock);
        bool reader = !fs->loop_has_reader; /* the first worker */
        fs->loop_has_reader = true;
        if (reader)
                fs->loop_reading++;
        pthread_mutex_unlock(&fs->loop_lock);
        if (!reader && !wait_wake(fs))
                goto out;
        for (;;) {
                buf.flags = 0; /* libfuse's read() path leaves the last request's flags */
                int r = fuse_session_receive_buf(fs->se, &buf);
                if (r == -EINTR || r == -EAGAIN)
                        continue;
                pthread_mutex_lock(&fs->loop_lock);
                fs->loop_reading--;
                if (r <= 0) {
                        /* 0: the kernel ended the connection (ENODEV) or the session was told to exit; an
                         * error (libfuse said which on stderr) ends it, as it ended libfuse's loop */
                        fs->loop_ending = true;
                        pthread_cond_broadcast(&fs->loop_cv);
                        pthread_mutex_unlock(&fs->loop_lock);
                        fuse_session_exit(fs->se);
                        break;
                }
                pthread_mutex_unlock(&fs->loop_lock);
                if (fs->splice_adapt)
                        adapt_splice(fs, &buf);
                fuse_session_process_buf(fs->se, &buf);
                if (!reader && !pending(fs)) {
                        if (!wait_wake(fs)) /* a wake-up counts its worker as reading */
                                break;
                        continue;
                }
                pthread_mutex_lock(&fs->loop_lock);
                fs->loop_reading++;
                pthread_mutex_unlock(&fs->loop_lock);
        }
out:
        free(buf.mem);
        pthread_mutex_lock(&fs->loop_lock);
        bool last = --fs->loop_threads == 0;
        pthread_mutex_unlock(&fs->loop_lock);
        if (last) { /* the session's last use of fs by this thread */
                uint64_t one = 1;
                if (write(fs->done_fd, &one, sizeof(one)) < 0) {
                        /* cannot fail for an eventfd far from its maximum */
                }
        }
        return NULL;
}

int loop_start(nono_fs *fs)
{
        pthread_mutex_lock(&fs->loop_lock);
        fs->loop_cap = fs->cfg.threads ? fs->cfg.threads : DEFAULT_THREADS;
        int r = spawn_locked(fs);
        pthread_mutex_unlock(&fs->loop_lock);
        return r;
}

void loop_join(nono_fs *fs)
{
        /* after done_fd: no worker is left to start another */
        for (size_t i = 0; i < fs->loop_n_tids; i++)
                pthread_join(fs->loop_tids[i], NULL);
        fs->loop_n_tids = 0;
}
