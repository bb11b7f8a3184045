/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy.h - the filtering HTTP proxy that enforces --allow-domain, and its two ends in `nono run`.
 *
 * The agent lives in its own network namespace with only loopback. Before it starts, the sandbox child
 * (inside that namespace) creates a TCP listening socket on 127.0.0.1 with nono_proxy_listener_create() and
 * hands the fd to the nono parent (SCM_RIGHTS). The parent, outside the namespace, accepts on it: a socket
 * stays bound to the namespace it was created in, so connections from the agent arrive directly, with no
 * bridge process and no extra copy, while the proxy's own outgoing connections use the host's network.
 *
 * The proxy serves HTTP CONNECT (a tunnel: TLS passes through, uninspected) and plain HTTP requests with
 * absolute URIs (forwarded with one request per connection). For each, it matches the host against the
 * allow list, resolves it itself, refuses addresses the rules do not grant (see netrules.h) and connects to
 * the address it checked (so a DNS answer cannot change between check and use). A refused request gets "403
 * Forbidden" with the reason in the body and in an X-Nono-Deny-Reason header.
 *
 * What it stops: reaching hosts that were not granted, by name or address, including loopback, private,
 * link-local and cloud-metadata addresses behind a granted name. What it does not stop: anything sent to a
 * granted host (data exfiltration to a granted host, domain fronting through TLS SNI inside CONNECT); it is
 * not the whole confinement: the network namespace, Landlock (TCP connect only to the proxy port) and seccomp
 * are what make the agent unable to bypass it.
 *
 * Threads: one acceptor thread and a pool of workers: one per connection (two for a tunnel or a request with
 * a body, one per direction), kept for reuse rather than created per connection; tunnel bytes move with
 * splice(2) through a pipe, never through user space.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* One attempt, reported when the connection ends (denials: at once). Strings valid during the callback. */
struct nono_proxy_event {
        int64_t time_ns;  /* CLOCK_REALTIME of the request */
        const char *host; /* as requested (normalised), "" if the request could not be parsed */
        uint16_t port;
        const char *method;   /* "CONNECT", "GET", ... */
        const char *resolved; /* the address connected to (or refused), "-" if none */
        int family;           /* AF_INET, AF_INET6 of resolved, or 0 */
        bool allowed;         /* the policy allowed it (it may still have failed: see result) */
        int result;           /* 0, EACCES when denied, or the errno of a failure (resolution, connect) */
        const char *reason;   /* why it was denied or failed; "" when it went through */
        uint64_t bytes_up;    /* agent -> server, payload (request body or tunnel bytes) */
        uint64_t bytes_down;  /* server -> agent */
        const char *detail;   /* "host:port METHOD resolved=ADDR allow|deny|error up=N down=N[ reason=...]" */
};

/* Called for every attempt, serialised (never two at once), from proxy threads. */
typedef void (*nono_proxy_event_fn)(const struct nono_proxy_event *ev, void *userdata);

struct nono_proxy_config {
        const char *const *allow; /* NULL-terminated --allow-domain entries */
        const char *hosts_file;   /* tests only: resolve names from this file instead of DNS; NULL: DNS */
        nono_proxy_event_fn on_event;
        void *userdata;
        unsigned connect_timeout_ms; /* 0: 10000 */
        unsigned max_connections;    /* 0: 1024; more at once get 503 */
};

typedef struct nono_proxy nono_proxy;

/* Checks the config (allow list, hosts file) and prepares a stopped proxy. On a bad config returns a negative
 * errno and *err (malloc'd) names the problem and the fix. */
int nono_proxy_new(const struct nono_proxy_config *cfg, nono_proxy **out, char **err);
/* Adds a listening socket; the proxy owns the fd from now on (closes it on failure too). Call before start.
 */
int nono_proxy_add_listener(nono_proxy *p, int fd);
/* Starts serving in background threads; returns at once. Proxy threads block every signal. */
int nono_proxy_start(nono_proxy *p);
/* For the launcher's channel handler: add_listener + start in one call (fd owned by the proxy). */
int nono_proxy_take_listener(nono_proxy *p, int fd);
/* Stops accepting, ends every open connection, waits until all of them reported their event. Idempotent. */
void nono_proxy_stop(nono_proxy *p);
/* Stops (if needed) and frees. NULL is fine. */
void nono_proxy_free(nono_proxy *p);

/* The port the proxy listens on inside the agent's network namespace (the namespace is new and empty, so any
 * port is free; this is the one Landlock lets the agent connect to). */
#define NONO_PROXY_PORT 3128

/* Creates a listening TCP socket on 127.0.0.1:*port (*port 0: the kernel picks and *port gets it) in the
 * caller's network namespace; returns the fd (O_CLOEXEC) or a negative errno. Call it inside the agent's
 * namespace, after the loopback interface is up, then send the fd to the parent and close it in the child:
 * the agent must not inherit it (it could accept the agent's own connections). */
int nono_proxy_listener_create(uint16_t *port);
/* The same on any local address ("127.0.0.1", "::1"), for `nono __proxy`. */
int nono_proxy_listen(const char *addr, uint16_t port, uint16_t *bound_port);

/* Sets, in a NULL-terminated malloc'd environment array (entries malloc'd, as built for execve), HTTP_PROXY,
 * HTTPS_PROXY, ALL_PROXY, http_proxy, https_proxy, all_proxy = http://127.0.0.1:PORT and NO_PROXY, no_proxy =
 * localhost,127.0.0.1,::1, replacing any existing value. *envp may be NULL. */
int nono_proxy_env(uint16_t port, char ***envp);
/* The same with setenv(3) on the current process (for a child that execs with environ). */
int nono_proxy_setenv(uint16_t port);

/* The audit record of an attempt, for nono_events_append() (store/store.h): type NONO_EV_NET, op
 * NONO_OP_PROXY, detail = ev->detail, oflags = address family (as the supervisor's net events), result 0 /
 * EACCES / errno, NONO_EVF_VIOLATION when denied, bytes_read = bytes to the agent, bytes_written = bytes to
 * the server. Strings point into ev: append before the callback returns. pid/ppid/uid are 0: a TCP connection
 * into the proxy does not say which process of the sandbox made it. */
struct nono_event;
void nono_proxy_event_to_store(const struct nono_proxy_event *ev, struct nono_event *out);
