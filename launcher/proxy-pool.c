/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-pool.c - worker threads for the proxy (see proxy-pool.h). A task is queued, then an idle worker is
 * woken or, when none is idle, a new (detached) worker is started; a task is never left waiting for another
 * task to finish, so tasks may wait on each other (a relay waits for its other direction) without deadlock
 * while fewer than max_threads run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "launcher/proxy-pool.h"

struct task {
        nono_pool_fn fn;
        void *arg;
        struct task *next;
};

struct nono_pool {
        pthread_mutex_t lock;
        pthread_cond_t work, gone;
        struct task *head, *tail;
        unsigned threads, idle, queued, max_threads, max_idle;
        size_t stack_size;
        bool closing;
};

static void *worker(void *arg)
{
        nono_pool *p = arg;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (!p->head && !p->closing && p->idle < p->max_idle) {
                        p->idle++;
                        pthread_cond_wait(&p->work, &p->lock);
                        p->idle--;
                }
                struct task *t = p->head;
                if (!t)
                        break; /* closing, or enough idle workers already */
                p->head = t->next;
                if (!p->head)
                        p->tail = NULL;
                p->queued--;
                pthread_mutex_unlock(&p->lock);
                t->fn(t->arg);
                free(t);
                pthread_mutex_lock(&p->lock);
        }
        if (--p->threads == 0)
                pthread_cond_broadcast(&p->gone);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int nono_pool_new(unsigned max_threads, unsigned max_idle, size_t stack_size, nono_pool **out)
{
        nono_pool *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->gone, NULL);
        p->max_threads = max_threads;
        p->max_idle = max_idle;
        p->stack_size = stack_size;
        *out = p;
        return 0;
}

int nono_pool_submit(nono_pool *p, nono_pool_fn fn, void *arg)
{
        struct task *t = malloc(sizeof(*t));
        int ret = 0;

        if (!t)
                return -ENOMEM;
        *t = (struct task){.fn = fn, .arg = arg};
        pthread_mutex_lock(&p->lock);
        if (p->closing) {
                ret = -ECANCELED;
        } else if (p->idle > p->queued) {
                pthread_cond_signal(&p->work);
        } else if (p->threads >= p->max_threads) {
                ret = -EAGAIN;
        } else {
                pthread_attr_t attr;
                pthread_t th;

                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                pthread_attr_setstacksize(&attr, p->stack_size);
                ret = -pthread_create(&th, &attr, worker, p);
                pthread_attr_destroy(&attr);
                if (ret == 0)
                        p->threads++;
        }
        if (ret == 0) {
                if (p->tail)
                        p->tail->next = t;
                else
                        p->head = t;
                p->tail = t;
                p->queued++;
        }
        pthread_mutex_unlock(&p->lock);
        if (ret < 0)
                free(t);
        return ret;
}

void nono_pool_free(nono_pool *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->closing = true;
        pthread_cond_broadcast(&p->work);
        while (p->threads)
                pthread_cond_wait(&p->gone, &p->lock);
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->gone);
        free(p);
}
