/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-pool.h - internal to the proxy: a pool of worker threads that grows on demand and keeps idle workers.
 *
 * Why: creating and ending a thread per connection costs more than serving a small request (glibc returns an
 * exiting thread's stack with madvise(), a TLB shootdown on every CPU); reused workers make the
 * per-connection cost a queue push and a wakeup.
 */
#pragma once

#include <stddef.h>

typedef struct nono_pool nono_pool;
typedef void (*nono_pool_fn)(void *arg);

/* max_threads: never more workers than this; max_idle: idle workers beyond this end. */
int nono_pool_new(unsigned max_threads, unsigned max_idle, size_t stack_size, nono_pool **out);
/* Runs fn(arg) on a worker: an idle one, or a new one. -EAGAIN when max_threads are all busy. */
int nono_pool_submit(nono_pool *p, nono_pool_fn fn, void *arg);
/* Waits for every submitted task to finish and every worker to end, then frees. NULL is fine. */
void nono_pool_free(nono_pool *p);
