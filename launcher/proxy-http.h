/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-http.h - internal to the proxy: parsing a proxy request head, rewriting it for the origin server, and
 * the framing of a request body. Pure functions over buffers, unit-tested without sockets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NONO_HTTP_HEAD_MAX (32 * 1024)

enum nono_body_kind {
        NONO_BODY_NONE = 0,
        NONO_BODY_LENGTH,  /* Content-Length bytes */
        NONO_BODY_CHUNKED, /* Transfer-Encoding: chunked, relayed chunk by chunk until the last one */
};

struct nono_http_req {
        char method[24];
        char host[256]; /* normalised (see nono_host_normalize) */
        uint16_t port;
        bool connect;
        /* plain requests: */
        enum nono_body_kind body;
        uint64_t content_length;
        char *out; /* the head to send to the origin server (malloc'd) */
        size_t out_len;
};

/* Length of the head in buf (through the empty line), 0 if incomplete. */
size_t nono_http_head_len(const char *buf, size_t len);

/* Parses the head buf[0..len) (as nono_http_head_len() delimited it). Returns 0, or the HTTP status to answer
 * (400, 405, 501) with a reason in `why` (never containing CR or LF). */
int nono_http_parse(const char *buf, size_t len, struct nono_http_req *r, char *why, size_t why_len);
void nono_http_req_clear(struct nono_http_req *r);

/* Rewrites a response head for the agent: drops Connection, Keep-Alive and Proxy-Connection and adds
 * "Connection: close" (the proxy serves one request per connection; without it a client would reuse the
 * connection and lose a non-idempotent request). *status gets the status code (1xx heads are interim: another
 * head follows). Returns 0, or -EPROTO for a malformed head, -ENOMEM. */
int nono_http_rewrite_response(const char *buf, size_t len, char **out, size_t *out_len, int *status);

/* Incremental chunked-body scanner: tells how many of the next bytes belong to the body, so the relay stops
 * exactly at its end and never forwards a second, smuggled request. */
struct nono_chunked {
        int state;
        uint64_t left; /* data bytes left in the current chunk */
        unsigned digits;
        bool bad;
};
/* Consumes up to len bytes; returns how many belong to the body (<= len). When the body ends, *done is set;
 * malformed framing sets c->bad and returns what was consumed so far. */
size_t nono_chunked_feed(struct nono_chunked *c, const char *buf, size_t len, bool *done);
