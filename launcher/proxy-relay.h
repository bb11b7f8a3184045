/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-relay.h - internal to the proxy: moving bytes between the agent's connection and the server's once
 * the request was allowed.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "launcher/proxy-http.h"

struct nono_pool;

struct nono_relay {
        struct nono_pool *pool; /* runs the second direction; NULL: a thread of its own */
        int cfd, sfd;           /* agent side, server side (blocking sockets) */
        bool tunnel;            /* CONNECT: both directions raw until EOF */
        /* plain HTTP: the rewritten head, then exactly one framed body */
        const char *head;
        size_t head_len;
        const char *pending; /* bytes the client sent after its head */
        size_t pending_len;
        enum nono_body_kind body;
        uint64_t content_length;
        /* out */
        uint64_t up, down;  /* bytes written to the server / to the client */
        char why[128];      /* set when the relay ended on an error */
        char why_down[128]; /* the same, written by the server -> client thread */
        /* internal */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool down_done;
        int down_ret;
};

/* Relays until both directions are done. Returns 0, or a negative errno when a side failed. */
int nono_relay_run(struct nono_relay *r);

/* write(2) until done, without SIGPIPE. */
int nono_relay_write_all(int fd, const void *buf, size_t len);
