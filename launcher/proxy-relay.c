/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-relay.c - the data path of the proxy.
 *
 * Tunnels and responses move with splice(2) through a pipe per direction, so payload bytes never enter user
 * space; that is what keeps a proxied download close to a direct one. A request body is read, because the
 * proxy must see where it ends: it forwards one body (Content-Length or chunked) and nothing after it, so a
 * client cannot slip a second request to another host into the same connection.
 *
 * A side that fails shuts both sockets down, which wakes the other direction's thread. A side that ends
 * cleanly only half-closes (shutdown SHUT_WR) the other, as TCP intends.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/proxy-pool.h"
#include "launcher/proxy-relay.h"

/* A pipe starts at the default 64 KiB; a transfer past PIPE_GROW_AFTER bytes gets a 1 MiB pipe, which cuts
 * the proxy's CPU per GB by about a third. Not from the start: pipe capacity counts against the user's
 * pipe-user-pages-soft limit (64 MiB by default), and many small connections must not use it up. */
#define PIPE_SIZE       (1024 * 1024)
#define PIPE_GROW_AFTER (4u * 1024 * 1024)
#define SPLICE_MAX      (1024 * 1024)
#define BUF_SIZE        (64 * 1024)

int nono_relay_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static void abort_both(struct nono_relay *r)
{
        shutdown(r->cfd, SHUT_RDWR);
        shutdown(r->sfd, SHUT_RDWR);
}

/* Moves bytes from -> to until EOF; returns 0 at EOF, or a negative errno. */
static int splice_all(int from, int to, uint64_t *count)
{
        int pfd[2], ret = 0;

        bool grown = false;

        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
        for (;;) {
                if (!grown && *count >= PIPE_GROW_AFTER) { /* the pipe is empty here */
                        (void)fcntl(pfd[1], F_SETPIPE_SZ, PIPE_SIZE);
                        grown = true;
                }
                ssize_t n = splice(from, NULL, pfd[1], NULL, SPLICE_MAX, SPLICE_F_MOVE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        ret = n < 0 ? -errno : 0;
                        break;
                }
                while (n > 0) {
                        ssize_t m = splice(pfd[0], NULL, to, NULL, (size_t)n, SPLICE_F_MOVE);
                        if (m < 0 && errno == EINTR)
                                continue;
                        if (m <= 0) {
                                ret = m < 0 ? -errno : -EPIPE;
                                goto out;
                        }
                        n -= m;
                        *count += (uint64_t)m;
                }
        }
out:
        close(pfd[0]);
        close(pfd[1]);
        return ret;
}

/* Plain HTTP: forwards the response head(s) rewritten for one request per connection (interim 1xx heads as
 * they come), then whatever follows. */
static int response_heads(struct nono_relay *r)
{
        char buf[NONO_HTTP_HEAD_MAX];
        size_t len = 0, hl;
        int status = 0, ret;

        do {
                char *out = NULL;
                size_t out_len = 0;

                while (!(hl = nono_http_head_len(buf, len))) {
                        ssize_t n;
                        if (len == sizeof(buf)) {
                                snprintf(r->why_down, sizeof(r->why_down), "response head too large");
                                return -EPROTO;
                        }
                        n = read(r->sfd, buf + len, sizeof(buf) - len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        if (n == 0) { /* the server closed before a whole head: pass on what came */
                                return len ? nono_relay_write_all(r->cfd, buf, len) : 0;
                        }
                        len += (size_t)n;
                }
                ret = nono_http_rewrite_response(buf, hl, &out, &out_len, &status);
                if (ret < 0) {
                        snprintf(r->why_down, sizeof(r->why_down), "malformed response head");
                        return ret;
                }
                ret = nono_relay_write_all(r->cfd, out, out_len);
                free(out);
                if (ret < 0)
                        return ret;
                r->down += out_len;
                memmove(buf, buf + hl, len - hl);
                len -= hl;
        } while (status >= 100 && status < 200 && status != 101);
        ret = nono_relay_write_all(r->cfd, buf, len);
        if (ret == 0)
                r->down += len;
        return ret;
}

static void *down_main(void *arg)
{
        struct nono_relay *r = arg;
        int ret = r->tunnel ? 0 : response_heads(r);

        if (ret == 0)
                ret = splice_all(r->sfd, r->cfd, &r->down);

        if (ret < 0) {
                snprintf(r->why_down, sizeof(r->why_down), "server to client: %s", strerror(-ret));
                abort_both(r);
                return (void *)(intptr_t)ret;
        }
        shutdown(r->cfd, SHUT_WR);
        if (!r->tunnel)
                shutdown(r->cfd, SHUT_RD); /* the response is complete: stop waiting for more request body */
        return NULL;
}

/* The second direction as a pool task, with a completion the first direction waits on. */
static void down_task(void *arg)
{
        struct nono_relay *r = arg;
        int ret = (int)(intptr_t)down_main(r);

        pthread_mutex_lock(&r->lock);
        r->down_ret = ret;
        r->down_done = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

static void *down_thread(void *arg)
{
        down_task(arg);
        return NULL;
}

static int send_counted(struct nono_relay *r, const char *buf, size_t len)
{
        int ret = nono_relay_write_all(r->sfd, buf, len);

        if (ret == 0)
                r->up += len;
        return ret;
}

/* Forwards the request body: exactly content_length bytes, or chunks up to the last one. */
static int send_body(struct nono_relay *r)
{
        char buf[BUF_SIZE];
        const char *p = r->pending;
        size_t n = r->pending_len;
        uint64_t left = r->content_length;
        struct nono_chunked ch = {0};
        bool done = r->body == NONO_BODY_NONE;
        int ret;

        while (!done) {
                if (n == 0) {
                        ssize_t k = read(r->cfd, buf, sizeof(buf));
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                snprintf(r->why, sizeof(r->why),
                                         "request body cut short (the client closed, or the server answered "
                                         "before reading it)");
                                return k < 0 ? -errno : -ECONNRESET;
                        }
                        p = buf;
                        n = (size_t)k;
                }
                size_t take;
                if (r->body == NONO_BODY_LENGTH) {
                        take = n < left ? n : (size_t)left;
                        left -= take;
                        done = left == 0;
                } else {
                        take = nono_chunked_feed(&ch, p, n, &done);
                        if (ch.bad) {
                                snprintf(r->why, sizeof(r->why), "malformed chunked request body");
                                return -EPROTO;
                        }
                }
                ret = send_counted(r, p, take);
                if (ret < 0)
                        return ret;
                p += take;
                n -= take;
        }
        return 0;
}

static int up_run(struct nono_relay *r)
{
        int ret;

        if (r->tunnel) {
                ret = send_counted(r, r->pending, r->pending_len);
                if (ret == 0)
                        ret = splice_all(r->cfd, r->sfd, &r->up);
                if (ret == 0)
                        shutdown(r->sfd, SHUT_WR);
                return ret;
        }
        ret = send_counted(r, r->head, r->head_len);
        if (ret == 0)
                ret = send_body(r);
        return ret;
}

int nono_relay_run(struct nono_relay *r)
{
        int ret;

        /* A request without a body has nothing left to send: the response is relayed in this thread. */
        if (!r->tunnel && r->body == NONO_BODY_NONE) {
                ret = send_counted(r, r->head, r->head_len);
                if (ret < 0) {
                        snprintf(r->why, sizeof(r->why), "client to server: %s", strerror(-ret));
                        abort_both(r);
                        return ret;
                }
                ret = (int)(intptr_t)down_main(r);
                if (ret < 0)
                        memcpy(r->why, r->why_down, sizeof(r->why));
                return ret;
        }
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        r->down_done = false;
        if (!r->pool || nono_pool_submit(r->pool, down_task, r) < 0) {
                pthread_attr_t attr;
                pthread_t t;

                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                pthread_attr_setstacksize(&attr, 128 * 1024); /* response_heads() has a 32 KiB buffer */
                ret = pthread_create(&t, &attr, down_thread, r);
                pthread_attr_destroy(&attr);
                if (ret) {
                        pthread_mutex_destroy(&r->lock);
                        pthread_cond_destroy(&r->cond);
                        return -ret;
                }
        }
        ret = up_run(r);
        if (ret < 0) {
                if (!r->why[0])
                        snprintf(r->why, sizeof(r->why), "client to server: %s", strerror(-ret));
                abort_both(r);
        }
        pthread_mutex_lock(&r->lock);
        while (!r->down_done)
                pthread_cond_wait(&r->cond, &r->lock);
        pthread_mutex_unlock(&r->lock);
        if (ret == 0 && r->down_ret < 0) {
                ret = r->down_ret;
                memcpy(r->why, r->why_down, sizeof(r->why));
        }
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        return ret;
}
