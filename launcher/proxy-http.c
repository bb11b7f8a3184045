/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-http.c - the HTTP/1.x side of the proxy: request heads in, origin-form heads out.
 *
 * Request smuggling is what this file guards against: a head the proxy reads one way and the server another
 * could carry a second request to a host the proxy never checked. So the proxy refuses what is ambiguous
 * (obsolete line folding, both Content-Length and Transfer-Encoding, conflicting lengths, a transfer coding
 * other than chunked), rewrites Host from the URI it checked, asks the server to close after one response
 * (Connection: close), and forwards exactly one framed body. Inside a CONNECT tunnel nothing is parsed: the
 * destination was fixed when the tunnel opened.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "launcher/netrules.h"
#include "launcher/proxy-http.h"

size_t nono_http_head_len(const char *buf, size_t len)
{
        for (size_t i = 0; i + 1 < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (buf[i + 1] == '\n')
                        return i + 2;
                if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
                        return i + 3;
        }
        return 0;
}

void nono_http_req_clear(struct nono_http_req *r)
{
        free(r->out);
        memset(r, 0, sizeof(*r));
}

#define FAIL(code, ...)                                                                                      \
        do {                                                                                                 \
                snprintf(why, why_len, __VA_ARGS__);                                                         \
                return (code);                                                                               \
        } while (0)

/* Parses "host:port", "[v6]:port" or (default_port != 0) a bare host into r. Returns 0 or -EINVAL. */
static int parse_authority(const char *a, size_t len, uint16_t default_port, struct nono_http_req *r)
{
        const char *colon = NULL;
        size_t hl;
        unsigned long port = default_port;

        if (len == 0)
                return -EINVAL;
        if (a[0] == '[') {
                const char *end = memchr(a, ']', len);
                if (!end)
                        return -EINVAL;
                if ((size_t)(end + 1 - a) < len) {
                        if (end[1] != ':')
                                return -EINVAL;
                        colon = end + 1;
                }
                hl = (size_t)(end + 1 - a);
        } else {
                colon = memchr(a, ':', len);
                hl = colon ? (size_t)(colon - a) : len;
        }
        if (colon) {
                size_t pl = len - (size_t)(colon + 1 - a);
                char pbuf[8];
                char *e;
                if (pl == 0 || pl > 5)
                        return -EINVAL;
                memcpy(pbuf, colon + 1, pl);
                pbuf[pl] = 0;
                for (size_t i = 0; i < pl; i++)
                        if (!isdigit((unsigned char)pbuf[i]))
                                return -EINVAL;
                port = strtoul(pbuf, &e, 10);
        }
        if (port == 0 || port > 65535 || hl == 0 || hl >= sizeof(r->host))
                return -EINVAL;
        memcpy(r->host, a, hl);
        r->host[hl] = 0;
        r->port = (uint16_t)port;
        return nono_host_normalize(r->host);
}

/* Appends to r->out. */
static int out_add(struct nono_http_req *r, size_t *cap, const char *s, size_t n)
{
        if (r->out_len + n + 1 > *cap) {
                size_t nc = (*cap ? *cap : 1024);
                while (nc < r->out_len + n + 1)
                        nc *= 2;
                char *o = realloc(r->out, nc);
                if (!o)
                        return -ENOMEM;
                r->out = o;
                *cap = nc;
        }
        memcpy(r->out + r->out_len, s, n);
        r->out_len += n;
        r->out[r->out_len] = 0;
        return 0;
}

static bool is_token_char(char c)
{
        return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c)); /* strchr finds the NUL */
}

/* Headers the proxy drops: hop-by-hop ones, and Host, which it rewrites from the checked URI. */
static bool dropped_header(const char *name, size_t n)
{
        static const char *const drop[] = {"connection",
                                           "proxy-connection",
                                           "keep-alive",
                                           "proxy-authorization",
                                           "proxy-authenticate",
                                           "te",
                                           "trailer",
                                           "upgrade",
                                           "host",
                                           NULL};
        for (size_t i = 0; drop[i]; i++)
                if (strlen(drop[i]) == n && !strncasecmp(name, drop[i], n))
                        return true;
        return false;
}

static int parse_headers(const char *p, const char *end, struct nono_http_req *r, size_t *cap, char *why,
                         size_t why_len)
{
        bool have_cl = false, have_te = false;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *le = eol ? eol : end, *colon, *v, *ve;
                size_t nl;

                if (le > p && le[-1] == '\r')
                        le--;
                if (le == p)
                        break; /* the empty line */
                if (*p == ' ' || *p == '\t')
                        FAIL(400, "obsolete header line folding is not accepted");
                colon = memchr(p, ':', (size_t)(le - p));
                if (!colon || colon == p)
                        FAIL(400, "malformed header line");
                nl = (size_t)(colon - p);
                for (size_t i = 0; i < nl; i++)
                        if (!is_token_char(p[i]))
                                FAIL(400, "malformed header name");
                for (const char *q = colon; q < le; q++)
                        if (*q == '\0' || *q == '\r')
                                FAIL(400, "control character in a header value");
                v = colon + 1;
                while (v < le && (*v == ' ' || *v == '\t'))
                        v++;
                ve = le;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                        ve--;
                if (nl == 14 && !strncasecmp(p, "content-length", nl)) {
                        uint64_t x = 0;
                        if (ve == v || ve - v > 18)
                                FAIL(400, "invalid Content-Length");
                        for (const char *q = v; q < ve; q++) {
                                if (!isdigit((unsigned char)*q))
                                        FAIL(400, "invalid Content-Length");
                                x = x * 10 + (uint64_t)(*q - '0');
                        }
                        if (have_cl && x != r->content_length)
                                FAIL(400, "conflicting Content-Length headers");
                        have_cl = true;
                        r->content_length = x;
                } else if (nl == 17 && !strncasecmp(p, "transfer-encoding", nl)) {
                        size_t vl = (size_t)(ve - v);
                        if (have_te || vl < 7 || strncasecmp(ve - 7, "chunked", 7) ||
                            (vl > 7 && ve[-8] != ' ' && ve[-8] != ','))
                                FAIL(501, "only Transfer-Encoding: chunked is supported");
                        have_te = true;
                }
                if (!dropped_header(p, nl)) {
                        if (out_add(r, cap, p, (size_t)(le - p)) < 0 || out_add(r, cap, "\r\n", 2) < 0)
                                return -ENOMEM;
                }
                p = eol ? eol + 1 : end;
        }
        if (have_cl && have_te)
                FAIL(400, "both Content-Length and Transfer-Encoding: ambiguous body");
        r->body = have_te                        ? NONO_BODY_CHUNKED
                  : have_cl && r->content_length ? NONO_BODY_LENGTH
                                                 : NONO_BODY_NONE;
        return 0;
}

static int parse_request(const char *buf, size_t len, struct nono_http_req *r, char *why, size_t why_len)
{
        const char *end = buf + len, *sp1, *sp2, *eol, *t;
        size_t cap = 0, ml, tl;
        char line[NONO_HTTP_HEAD_MAX];
        int ret;

        memset(r, 0, sizeof(*r));
        eol = memchr(buf, '\n', len);
        if (!eol)
                FAIL(400, "no request line");
        sp1 = memchr(buf, ' ', (size_t)(eol - buf));
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
        if (!sp1 || !sp2)
                FAIL(400, "malformed request line");
        ml = (size_t)(sp1 - buf);
        if (ml == 0 || ml >= sizeof(r->method))
                FAIL(400, "malformed request method");
        for (size_t i = 0; i < ml; i++)
                if (!is_token_char(buf[i]))
                        FAIL(400, "malformed request method");
        memcpy(r->method, buf, ml);
        if (strncmp(sp2 + 1, "HTTP/1.", 7))
                FAIL(400, "only HTTP/1.x requests are served");
        t = sp1 + 1;
        tl = (size_t)(sp2 - t);
        for (size_t i = 0; i < tl; i++)
                if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f)
                        FAIL(400, "control character in the request target");

        if (!strcmp(r->method, "CONNECT")) {
                r->connect = true;
                if (parse_authority(t, tl, 0, r) < 0)
                        FAIL(400, "CONNECT needs a target host:port with a valid host name and port");
                return 0;
        }
        if (tl < 7 || strncasecmp(t, "http://", 7)) {
                if (tl >= 8 && !strncasecmp(t, "https://", 8))
                        FAIL(400, "https:// URLs go through CONNECT: use the proxy as an HTTP proxy for TLS");
                FAIL(400, "this is a proxy: requests need an absolute http:// URL or CONNECT");
        }
        const char *a = t + 7, *te = t + tl, *path = a;
        while (path < te && *path != '/' && *path != '?' && *path != '#')
                path++;
        if (memchr(a, '@', (size_t)(path - a)))
                FAIL(400, "user information in the URL is not accepted: send an Authorization header");
        if (parse_authority(a, (size_t)(path - a), 80, r) < 0)
                FAIL(400, "invalid host or port in the URL");

        /* Request line in origin form, then Host from the checked URI, then the client's headers. */
        const char *frag = memchr(path, '#', (size_t)(te - path));
        size_t pl = (size_t)((frag ? frag : te) - path);
        bool v6 = strchr(r->host, ':') != NULL;
        int n = snprintf(line, sizeof(line), "%s %s%.*s HTTP/1.1\r\nHost: %s%s%s", r->method,
                         pl && *path != '/' ? "/" : "", pl ? (int)pl : 1, pl ? path : "/", v6 ? "[" : "",
                         r->host, v6 ? "]" : "");
        if (n < 0 || (size_t)n >= sizeof(line) - 16)
                FAIL(400, "request line too long");
        if (r->port != 80)
                n += snprintf(line + n, sizeof(line) - (size_t)n, ":%u", r->port);
        if (out_add(r, &cap, line, (size_t)n) < 0 || out_add(r, &cap, "\r\n", 2) < 0)
                return -ENOMEM;
        ret = parse_headers(eol + 1, end, r, &cap, why, why_len);
        if (ret)
                return ret;
        if (out_add(r, &cap, "Connection: close\r\n\r\n", 21) < 0)
                return -ENOMEM;
        return 0;
}

int nono_http_parse(const char *buf, size_t len, struct nono_http_req *r, char *why, size_t why_len)
{
        int ret = parse_request(buf, len, r, why, why_len);

        if (ret) { /* nothing half-built is left to the caller */
                free(r->out);
                r->out = NULL;
                r->out_len = 0;
        }
        return ret;
}

int nono_http_rewrite_response(const char *buf, size_t len, char **out, size_t *out_len, int *status)
{
        static const char *const drop[] = {"connection", "keep-alive", "proxy-connection", NULL};
        struct nono_http_req tmp = {0}; /* reuses out_add() */
        const char *p = buf, *end = buf + len;
        size_t cap = 0;
        bool first = true;

        if (len < 12 || strncmp(buf, "HTTP/1.", 7) || buf[8] != ' ' || !isdigit((unsigned char)buf[9]) ||
            !isdigit((unsigned char)buf[10]) || !isdigit((unsigned char)buf[11]))
                return -EPROTO;
        *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *le = eol ? eol : end, *colon;
                bool keep = true;

                if (le > p && le[-1] == '\r')
                        le--;
                if (le == p)
                        break;
                colon = first ? NULL : memchr(p, ':', (size_t)(le - p));
                for (size_t i = 0; colon && drop[i]; i++)
                        if (strlen(drop[i]) == (size_t)(colon - p) &&
                            !strncasecmp(p, drop[i], (size_t)(colon - p)))
                                keep = false;
                if (keep &&
                    (out_add(&tmp, &cap, p, (size_t)(le - p)) < 0 || out_add(&tmp, &cap, "\r\n", 2) < 0))
                        goto nomem;
                first = false;
                p = eol ? eol + 1 : end;
        }
        if (*status >= 200 && out_add(&tmp, &cap, "Connection: close\r\n", 19) < 0)
                goto nomem;
        if (out_add(&tmp, &cap, "\r\n", 2) < 0)
                goto nomem;
        *out = tmp.out;
        *out_len = tmp.out_len;
        return 0;
nomem:
        free(tmp.out);
        return -ENOMEM;
}

/* States of the chunked scanner. */
enum {
        CH_SIZE,
        CH_EXT,
        CH_SIZE_LF,
        CH_DATA,
        CH_DATA_CR,
        CH_DATA_LF,
        CH_TRAILER_START,
        CH_TRAILER,
        CH_END_LF
};

size_t nono_chunked_feed(struct nono_chunked *c, const char *buf, size_t len, bool *done)
{
        size_t i = 0;

        *done = false;
        while (i < len && !c->bad) {
                char ch = buf[i];
                switch (c->state) {
                case CH_SIZE:
                        if (isxdigit((unsigned char)ch)) {
                                if (++c->digits > 15) {
                                        c->bad = true;
                                        return i;
                                }
                                c->left = c->left * 16 + (uint64_t)(isdigit((unsigned char)ch)
                                                                        ? ch - '0'
                                                                        : (tolower(ch) - 'a' + 10));
                        } else if (c->digits && (ch == ';' || ch == ' ' || ch == '\t')) {
                                c->state = CH_EXT;
                        } else if (c->digits && ch == '\r') {
                                c->state = CH_SIZE_LF;
                        } else {
                                c->bad = true;
                                return i;
                        }
                        i++;
                        break;
                case CH_EXT:
                        if (ch == '\r')
                                c->state = CH_SIZE_LF;
                        else if (ch == '\n') {
                                c->bad = true;
                                return i;
                        }
                        i++;
                        break;
                case CH_SIZE_LF:
                        if (ch != '\n') {
                                c->bad = true;
                                return i;
                        }
                        i++;
                        c->digits = 0;
                        c->state = c->left ? CH_DATA : CH_TRAILER_START;
                        break;
                case CH_DATA: {
                        size_t n = len - i < c->left ? len - i : (size_t)c->left;
                        i += n;
                        c->left -= n;
                        if (!c->left)
                                c->state = CH_DATA_CR;
                        break;
                }
                case CH_DATA_CR:
                case CH_DATA_LF:
                        if (ch != (c->state == CH_DATA_CR ? '\r' : '\n')) {
                                c->bad = true;
                                return i;
                        }
                        i++;
                        c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
                        break;
                case CH_TRAILER_START:
                        i++;
                        c->state = ch == '\r' ? CH_END_LF : CH_TRAILER;
                        break;
                case CH_TRAILER:
                        i++;
                        if (ch == '\n')
                                c->state = CH_TRAILER_START;
                        break;
                case CH_END_LF:
                        if (ch != '\n') {
                                c->bad = true;
                                return i;
                        }
                        *done = true;
                        return i + 1;
                }
        }
        return i;
}
