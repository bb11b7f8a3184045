/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy.c - the proxy's life cycle and its connections (see proxy.h for what it stops and what it does not).
 *
 * A connection goes: read the request head (bounded in size and time), parse it (proxy-http.c), match the
 * host against the rules, resolve it (DNS, or the test hosts file), keep only the addresses the rules grant
 * (netrules.c), connect to one of them, then relay. The address connected to is the address that was checked.
 * Relaying uses two threads per connection, one per direction; CONNECT tunnels and responses move with
 * splice(2) (socket -> pipe -> socket, no copy to user space), request bodies are read so that exactly one
 * framed body is forwarded.
 *
 * Shutdown: nono_proxy_stop() wakes the acceptor through an eventfd and shuts down (shutdown(2), not close)
 * every socket of every live connection, which wakes their threads; each connection reports its event and
 * closes its own fds, so no fd is closed under a thread that still uses it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "launcher/netrules.h"
#include "launcher/proxy-http.h"
#include "launcher/proxy-pool.h"
#include "launcher/proxy-relay.h"
#include "launcher/proxy.h"

#define MAX_LISTENERS  8
#define MAX_ADDRS      16
#define HEAD_TIMEOUT_S 30

struct conn {
        nono_proxy *p;
        struct conn *prev, *next;
        int cfd, sfd;
        char *buf; /* the request head, then what followed it */
        size_t len, head_len;
        struct nono_http_req req;
        int64_t time_ns;
        char resolved[INET6_ADDRSTRLEN];
        int family;
        char reason[1024];
        uint64_t up, down;
};

struct nono_proxy {
        nono_netrules *rules;
        nono_hosts *hosts;
        nono_proxy_event_fn on_event;
        void *userdata;
        unsigned connect_timeout_ms, max_connections;
        int listeners[MAX_LISTENERS];
        size_t n_listeners;
        int wake_fd;
        pthread_t acceptor;
        bool started, stopped;
        pthread_mutex_t lock; /* conns, n_conns, stopping, conn fds */
        pthread_cond_t idle;
        struct conn *conns;
        unsigned n_conns;
        bool stopping;
        pthread_mutex_t ev_lock; /* serialises on_event */
        nono_pool *pool;         /* connection tasks and second relay directions */
};

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int nono_proxy_new(const struct nono_proxy_config *cfg, nono_proxy **out, char **err)
{
        nono_proxy *p = calloc(1, sizeof(*p));
        int ret;

        *err = NULL;
        if (!p)
                return -ENOMEM;
        p->wake_fd = -1;
        ret = nono_netrules_new(cfg->allow, &p->rules, err);
        if (ret == 0 && cfg->hosts_file)
                ret = nono_hosts_load(cfg->hosts_file, &p->hosts, err);
        if (ret == 0) {
                p->wake_fd = eventfd(0, EFD_CLOEXEC);
                if (p->wake_fd < 0)
                        ret = -errno;
        }
        p->max_connections = cfg->max_connections ? cfg->max_connections : 1024;
        if (ret == 0) /* two workers per connection at most (CONNECT: one per direction); 16 stay idle */
                ret = nono_pool_new(2 * p->max_connections, 16, 256 * 1024, &p->pool);
        if (ret < 0) {
                if (p->wake_fd >= 0)
                        close(p->wake_fd);
                nono_netrules_free(p->rules);
                nono_hosts_free(p->hosts);
                free(p);
                return ret;
        }
        p->on_event = cfg->on_event;
        p->userdata = cfg->userdata;
        p->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->ev_lock, NULL);
        pthread_cond_init(&p->idle, NULL);
        *out = p;
        return 0;
}

int nono_proxy_add_listener(nono_proxy *p, int fd)
{
        if (p->started || p->n_listeners == MAX_LISTENERS) {
                close(fd);
                return p->started ? -EBUSY : -E2BIG;
        }
        /* Wake the acceptor only once the request has arrived: a worker then reads it without sleeping. */
        int secs = HEAD_TIMEOUT_S;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
        p->listeners[p->n_listeners++] = fd;
        return 0;
}

/* ---- events --------------------------------------------------------------------------------------- */

static void emit(struct conn *c, const char *decision, bool allowed, int result)
{
        nono_proxy *p = c->p;
        char detail[2048];
        const char *host = c->req.host[0] ? c->req.host : "?";
        bool v6 = strchr(host, ':') != NULL;
        struct nono_proxy_event ev = {
            .time_ns = c->time_ns,
            .host = c->req.host,
            .port = c->req.port,
            .method = c->req.method[0] ? c->req.method : "?",
            .resolved = c->resolved[0] ? c->resolved : "-",
            .family = c->resolved[0] ? c->family : 0,
            .allowed = allowed,
            .result = result,
            .reason = c->reason,
            .bytes_up = c->up,
            .bytes_down = c->down,
            .detail = detail,
        };

        snprintf(detail, sizeof(detail), "%s%s%s:%u %s resolved=%s %s up=%llu down=%llu%s%s", v6 ? "[" : "",
                 host, v6 ? "]" : "", ev.port, ev.method, ev.resolved, decision, (unsigned long long)c->up,
                 (unsigned long long)c->down, c->reason[0] ? " reason=" : "", c->reason);
        if (!p->on_event)
                return;
        pthread_mutex_lock(&p->ev_lock);
        p->on_event(&ev, p->userdata);
        pthread_mutex_unlock(&p->ev_lock);
}

/* ---- answers -------------------------------------------------------------------------------------- */

static void answer(struct conn *c, int code, const char *reason)
{
        const char *text = code == 403   ? "Forbidden"
                           : code == 400 ? "Bad Request"
                           : code == 501 ? "Not Implemented"
                           : code == 503 ? "Service Unavailable"
                           : code == 504 ? "Gateway Timeout"
                                         : "Bad Gateway";
        char msg[4096];
        int n = snprintf(msg, sizeof(msg),
                         "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n%s: %s\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\nnono: %s\n",
                         code, text, code == 403 ? "X-Nono-Deny-Reason" : "X-Nono-Error", reason,
                         strlen(reason) + 7, reason);

        if (n > 0)
                (void)nono_relay_write_all(c->cfd, msg,
                                           (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

static void deny(struct conn *c)
{
        answer(c, 403, c->reason);
        emit(c, "deny", false, EACCES);
}

/* ---- connection setup ----------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the request head; the whole head must arrive within HEAD_TIMEOUT_S (a client trickling bytes cannot
 * hold a thread for longer). */
static int read_head(struct conn *c)
{
        int64_t deadline = mono_ms() + HEAD_TIMEOUT_S * 1000;

        c->buf = malloc(NONO_HTTP_HEAD_MAX);
        if (!c->buf)
                return -ENOMEM;
        while (!(c->head_len = nono_http_head_len(c->buf, c->len))) {
                struct pollfd pfd = {.fd = c->cfd, .events = POLLIN};
                int64_t left = deadline - mono_ms();
                ssize_t n;

                if (c->len == NONO_HTTP_HEAD_MAX)
                        return -E2BIG;
                if (left <= 0)
                        return -ETIMEDOUT;
                n = recv(c->cfd, c->buf + c->len, NONO_HTTP_HEAD_MAX - c->len, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        if (errno == EAGAIN && poll(&pfd, 1, (int)left) == 0)
                                return -ETIMEDOUT;
                        continue;
                }
                if (n <= 0)
                        return n < 0 ? -errno : -ECONNRESET;
                c->len += (size_t)n;
        }
        return 0;
}

/* Resolves the request host; returns the number of addresses, or a negative error with c->reason set. */
static int resolve(struct conn *c, struct sockaddr_storage *addrs)
{
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        char port[8];
        int n = 0, r;

        snprintf(port, sizeof(port), "%u", c->req.port);
        struct in6_addr lit;
        bool literal =
            inet_pton(AF_INET, c->req.host, &lit) == 1 || inet_pton(AF_INET6, c->req.host, &lit) == 1;

        if (c->p->hosts && !literal) {
                n = (int)nono_hosts_lookup(c->p->hosts, c->req.host, c->req.port, addrs, MAX_ADDRS);
                if (n == 0) {
                        snprintf(c->reason, sizeof(c->reason),
                                 "cannot resolve %s: not in the proxy's hosts file", c->req.host);
                        return -ENOENT;
                }
                return n;
        }
        hints.ai_flags |= literal ? AI_NUMERICHOST : 0;
        r = getaddrinfo(c->req.host, port, &hints, &res);
        if (r) {
                snprintf(c->reason, sizeof(c->reason), "cannot resolve %s: %s", c->req.host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        for (struct addrinfo *a = res; a && n < MAX_ADDRS; a = a->ai_next) {
                if (a->ai_addrlen > sizeof(*addrs) || (a->ai_family != AF_INET && a->ai_family != AF_INET6))
                        continue;
                memset(&addrs[n], 0, sizeof(addrs[n]));
                memcpy(&addrs[n++], a->ai_addr, a->ai_addrlen);
        }
        freeaddrinfo(res);
        if (n == 0) {
                snprintf(c->reason, sizeof(c->reason), "cannot resolve %s: no IPv4 or IPv6 address",
                         c->req.host);
                return -EHOSTUNREACH;
        }
        return n;
}

/* Sets c->sfd under the lock so that nono_proxy_stop() can wake a connect or a relay; fails when stopping. */
static int set_sfd(struct conn *c, int fd)
{
        int ret = 0;

        pthread_mutex_lock(&c->p->lock);
        if (c->p->stopping && fd >= 0)
                ret = -ECANCELED;
        else
                c->sfd = fd;
        pthread_mutex_unlock(&c->p->lock);
        return ret;
}

static int connect_one(struct conn *c, const struct sockaddr_storage *sa)
{
        socklen_t sl = sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int ret = 0, one = 1, err = 0;
        socklen_t el = sizeof(err);

        if (fd < 0)
                return -errno;
        if (set_sfd(c, fd) < 0) {
                close(fd);
                return -ECANCELED;
        }
        if (connect(fd, (const struct sockaddr *)sa, sl) < 0) {
                if (errno != EINPROGRESS) {
                        ret = -errno;
                } else {
                        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                        int r = poll(&pfd, 1, (int)c->p->connect_timeout_ms);
                        if (r == 0)
                                ret = -ETIMEDOUT;
                        else if (r < 0)
                                ret = -errno;
                        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err)
                                ret = err ? -err : -errno;
                }
        }
        if (ret == 0) {
                (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                return 0;
        }
        set_sfd(c, -1);
        close(fd);
        return ret;
}

/* Checks and connects; on failure has answered the client and reported the event. Returns 0 when connected.
 */
static int open_upstream(struct conn *c)
{
        struct sockaddr_storage addrs[MAX_ADDRS];
        enum nono_host_match how = nono_netrules_match(c->p->rules, c->req.host);
        bool any_allowed = false;
        int n, ret = -EACCES;

        if (how == NONO_MATCH_NONE) {
                snprintf(c->reason, sizeof(c->reason),
                         "%s is not in the allow list: add --allow-domain %s to grant it", c->req.host,
                         c->req.host);
                deny(c);
                return -EACCES;
        }
        n = resolve(c, addrs);
        if (n < 0) {
                answer(c, 502, c->reason);
                emit(c, "error", true, -n);
                return n;
        }
        for (int i = 0; i < n; i++) {
                char why[384];
                if (!nono_addr_check(c->p->rules, (struct sockaddr *)&addrs[i], how, why, sizeof(why))) {
                        if (!any_allowed && !c->reason[0]) {
                                nono_addr_str((struct sockaddr *)&addrs[i], c->resolved, sizeof(c->resolved));
                                c->family = addrs[i].ss_family;
                                snprintf(c->reason, sizeof(c->reason), "%s resolves to %s", c->req.host, why);
                        }
                        continue;
                }
                any_allowed = true;
                nono_addr_str((struct sockaddr *)&addrs[i], c->resolved, sizeof(c->resolved));
                c->family = addrs[i].ss_family;
                ret = connect_one(c, &addrs[i]);
                if (ret == 0) {
                        c->reason[0] = 0;
                        return 0;
                }
                snprintf(c->reason, sizeof(c->reason), "cannot connect to %s (%s): %s", c->req.host,
                         c->resolved, strerror(-ret));
        }
        if (!any_allowed) {
                deny(c);
                return -EACCES;
        }
        answer(c, ret == -ETIMEDOUT ? 504 : 502, c->reason);
        emit(c, "error", true, -ret);
        return ret;
}

static void serve(struct conn *c)
{
        char why[256];
        int code, ret;

        c->time_ns = now_ns();
        ret = read_head(c);
        if (ret < 0) {
                if (c->len > 0) { /* a client that sent nothing is not an attempt */
                        snprintf(c->reason, sizeof(c->reason), "%s",
                                 ret == -E2BIG       ? "request head too large"
                                 : ret == -ETIMEDOUT ? "request head not complete after 30 s"
                                                     : "incomplete request head");
                        answer(c, 400, c->reason);
                        emit(c, "error", false, EPROTO);
                }
                return;
        }
        code = nono_http_parse(c->buf, c->head_len, &c->req, why, sizeof(why));
        if (code) {
                snprintf(c->reason, sizeof(c->reason), "%s", code < 0 ? strerror(-code) : why);
                answer(c, code < 0 ? 503 : code, c->reason);
                emit(c, "error", false, code < 0 ? -code : EPROTO);
                return;
        }
        if (open_upstream(c) < 0)
                return;
        struct nono_relay r = {
            .pool = c->p->pool,
            .cfd = c->cfd,
            .sfd = c->sfd,
            .tunnel = c->req.connect,
            .head = c->req.connect ? NULL : c->req.out,
            .head_len = c->req.connect ? 0 : c->req.out_len,
            .pending = c->buf + c->head_len,
            .pending_len = c->len - c->head_len,
            .body = c->req.body,
            .content_length = c->req.content_length,
        };
        if (c->req.connect) {
                static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
                if (nono_relay_write_all(c->cfd, ok, sizeof(ok) - 1) < 0) {
                        snprintf(c->reason, sizeof(c->reason), "client went away");
                        emit(c, "allow", true, ECONNRESET);
                        return;
                }
        }
        ret = nono_relay_run(&r);
        c->up = r.up;
        c->down = r.down;
        if (r.why[0])
                snprintf(c->reason, sizeof(c->reason), "%s", r.why);
        emit(c, "allow", true, ret < 0 ? -ret : 0);
}

/* ---- threads -------------------------------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
        nono_proxy *p = c->p;

        pthread_mutex_lock(&p->lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                p->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (--p->n_conns == 0)
                pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->lock);
        if (c->sfd >= 0)
                close(c->sfd);
        close(c->cfd);
        nono_http_req_clear(&c->req);
        free(c->buf);
        free(c);
}

static void conn_task(void *arg)
{
        struct conn *c = arg;

        serve(c);
        conn_free(c);
}

static void accept_one(nono_proxy *p, int lfd)
{
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;
        struct conn *c;

        if (fd < 0)
                return;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->p = p;
        c->cfd = fd;
        c->sfd = -1;
        pthread_mutex_lock(&p->lock);
        if (p->n_conns >= p->max_connections) {
                pthread_mutex_unlock(&p->lock);
                (void)send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                close(fd);
                free(c);
                return;
        }
        c->next = p->conns;
        if (p->conns)
                p->conns->prev = c;
        p->conns = c;
        p->n_conns++;
        pthread_mutex_unlock(&p->lock);

        if (nono_pool_submit(p->pool, conn_task, c) < 0) {
                (void)send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                conn_free(c);
        }
}

static void *acceptor_main(void *arg)
{
        nono_proxy *p = arg;
        struct pollfd pfd[MAX_LISTENERS + 1];

        for (size_t i = 0; i < p->n_listeners; i++)
                pfd[i] = (struct pollfd){.fd = p->listeners[i], .events = POLLIN};
        pfd[p->n_listeners] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
        for (;;) {
                if (poll(pfd, p->n_listeners + 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[p->n_listeners].revents)
                        break;
                for (size_t i = 0; i < p->n_listeners; i++)
                        if (pfd[i].revents & POLLIN)
                                accept_one(p, pfd[i].fd);
        }
        return NULL;
}

int nono_proxy_start(nono_proxy *p)
{
        int r;

        if (p->started)
                return -EALREADY;
        if (p->n_listeners == 0)
                return -EINVAL;
        for (size_t i = 0; i < p->n_listeners; i++)
                (void)fcntl(p->listeners[i], F_SETFL, fcntl(p->listeners[i], F_GETFL) | O_NONBLOCK);
        /* Proxy threads take no signals: the launcher's main thread handles them, and a write to a socket the
         * peer closed must return EPIPE, not kill nono with SIGPIPE. Threads inherit this mask. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&p->acceptor, NULL, acceptor_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r)
                return -r;
        p->started = true;
        return 0;
}

int nono_proxy_take_listener(nono_proxy *p, int fd)
{
        int r = nono_proxy_add_listener(p, fd);

        return r < 0 ? r : nono_proxy_start(p);
}

void nono_proxy_stop(nono_proxy *p)
{
        uint64_t one = 1;

        if (!p || p->stopped)
                return;
        p->stopped = true;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_mutex_unlock(&p->lock);
        if (p->started) {
                (void)!write(p->wake_fd, &one, sizeof(one));
                pthread_join(p->acceptor, NULL);
        }
        for (size_t i = 0; i < p->n_listeners; i++)
                close(p->listeners[i]);
        p->n_listeners = 0;
        pthread_mutex_lock(&p->lock);
        for (struct conn *c = p->conns; c; c = c->next) {
                shutdown(c->cfd, SHUT_RDWR);
                if (c->sfd >= 0)
                        shutdown(c->sfd, SHUT_RDWR);
        }
        while (p->n_conns)
                pthread_cond_wait(&p->idle, &p->lock);
        pthread_mutex_unlock(&p->lock);
}

void nono_proxy_free(nono_proxy *p)
{
        if (!p)
                return;
        nono_proxy_stop(p);
        nono_pool_free(p->pool);
        close(p->wake_fd);
        nono_netrules_free(p->rules);
        nono_hosts_free(p->hosts);
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->ev_lock);
        pthread_cond_destroy(&p->idle);
        free(p);
}
