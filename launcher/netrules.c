/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netrules.c - allow-list matching and address classification for the network proxy (see netrules.h).
 *
 * Names are compared after normalisation (lower case, no trailing dot), so "API.GitHub.com." and
 * "api.github.com" are one host. Numeric hosts are only accepted in the canonical forms inet_pton() reads;
 * the legacy forms inet_aton() and resolvers also accept ("127.1", "0177.0.0.1", "2130706433") are refused,
 * so a host can never be read one way by the matcher and another way by the resolver.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/netrules.h"

struct nono_rule {
        char *name; /* exact name, or the suffix ".example.com" of a wildcard */
        bool wildcard;
        bool is_addr;
        int family;
        uint8_t addr[16];
};

struct nono_netrules {
        struct nono_rule *v;
        size_t n;
};

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...)
{
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

/* Parses a canonical IP literal (IPv6 optionally in brackets). Returns the family, or 0. */
static int parse_literal(const char *s, uint8_t addr[16])
{
        char buf[64];
        size_t l = strlen(s);

        if (l >= sizeof(buf))
                return 0;
        if (s[0] == '[' && l > 2 && s[l - 1] == ']') {
                memcpy(buf, s + 1, l - 2);
                buf[l - 2] = 0;
                return inet_pton(AF_INET6, buf, addr) == 1 ? AF_INET6 : 0;
        }
        if (inet_pton(AF_INET, s, addr) == 1)
                return AF_INET;
        if (inet_pton(AF_INET6, s, addr) == 1)
                return AF_INET6;
        return 0;
}

/* A host name: labels of [a-z0-9_-], 1..63 characters, 1..253 in total. */
static bool valid_name(const char *s)
{
        size_t total = strlen(s), label = 0;

        if (total == 0 || total > 253)
                return false;
        for (const char *p = s; *p; p++) {
                if (*p == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                        continue;
                }
                if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
                        return false;
                if (++label > 63)
                        return false;
        }
        return label > 0;
}

/* True for what inet_aton() (and so getaddrinfo) would take as an IPv4 address: digits, dots and hex. */
static bool looks_numeric(const char *s)
{
        struct in_addr a;

        return inet_aton(s, &a) != 0;
}

int nono_host_normalize(char *host)
{
        size_t l = strlen(host);
        uint8_t addr[16];

        if (l >= 2 && host[0] == '[' && host[l - 1] == ']') {
                memmove(host, host + 1, l - 2);
                host[l - 2] = 0;
                l -= 2;
                return inet_pton(AF_INET6, host, addr) == 1 ? 0 : -EINVAL;
        }
        for (char *p = host; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if (l > 1 && host[l - 1] == '.')
                host[--l] = 0;
        if (parse_literal(host, addr))
                return 0;
        if (looks_numeric(host))
                return -EINVAL;
        return valid_name(host) ? 0 : -EINVAL;
}

static int parse_rule(const char *entry, struct nono_rule *r, char **err)
{
        char *s = strdup(entry);
        int fam;

        if (!s)
                return -ENOMEM;
        memset(r, 0, sizeof(*r));
        fam = parse_literal(s, r->addr);
        if (fam) {
                r->is_addr = true;
                r->family = fam;
                r->name = s;
                return 0;
        }
        if (strchr(s, ':') || strchr(s, '/')) {
                *err = fmt_alloc("--allow-domain '%s' is not a host name: give a name or an IP address, "
                                 "without scheme, port or path",
                                 entry);
                free(s);
                return -EINVAL;
        }
        if (s[0] == '*') {
                if (s[1] != '.' || nono_host_normalize(s + 2) < 0 || !strchr(s + 2, '.') ||
                    parse_literal(s + 2, r->addr)) {
                        *err = fmt_alloc(
                            "--allow-domain '%s': a wildcard is '*.' followed by a domain of at least "
                            "two labels, e.g. '*.example.com'",
                            entry);
                        free(s);
                        return -EINVAL;
                }
                r->wildcard = true;
                memmove(s, s + 1, strlen(s)); /* keep the leading dot: ".example.com" */
                r->name = s;
                return 0;
        }
        if (nono_host_normalize(s) < 0) {
                *err =
                    fmt_alloc("--allow-domain '%s' is not a valid host name (letters, digits, '-', '_' and "
                              "dots; numeric forms only as canonical IP addresses)",
                              entry);
                free(s);
                return -EINVAL;
        }
        r->name = s;
        return 0;
}

int nono_netrules_new(const char *const *allow, nono_netrules **out, char **err)
{
        nono_netrules *r = calloc(1, sizeof(*r));
        size_t n = 0;
        int ret;

        *err = NULL;
        if (!r)
                return -ENOMEM;
        while (allow && allow[n])
                n++;
        r->v = calloc(n ? n : 1, sizeof(*r->v));
        if (!r->v) {
                free(r);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                ret = parse_rule(allow[i], &r->v[r->n], err);
                if (ret < 0) {
                        nono_netrules_free(r);
                        return ret;
                }
                r->n++;
        }
        *out = r;
        return 0;
}

void nono_netrules_free(nono_netrules *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i].name);
        free(r->v);
        free(r);
}

enum nono_host_match nono_netrules_match(const nono_netrules *r, const char *host)
{
        uint8_t addr[16];
        int fam = parse_literal(host, addr);
        size_t hl = strlen(host);
        enum nono_host_match best = NONO_MATCH_NONE;

        for (size_t i = 0; i < r->n; i++) {
                const struct nono_rule *x = &r->v[i];

                if (fam) {
                        if (x->is_addr && x->family == fam && !memcmp(x->addr, addr, fam == AF_INET ? 4 : 16))
                                return NONO_MATCH_EXACT;
                        continue;
                }
                if (x->is_addr)
                        continue;
                if (!x->wildcard) {
                        if (!strcmp(x->name, host))
                                return NONO_MATCH_EXACT;
                        continue;
                }
                size_t sl = strlen(x->name); /* ".example.com": needs at least one character before it */
                if (hl > sl && !strcmp(host + hl - sl, x->name))
                        best = NONO_MATCH_WILDCARD;
        }
        return best;
}

/* The address family and bytes of sa; IPv6 carrying an IPv4 address is reduced to it. */
static int addr_bytes(const struct sockaddr *sa, uint8_t out[16])
{
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
        static const uint8_t zero[12] = {0};

        if (sa->sa_family == AF_INET) {
                memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                return AF_INET;
        }
        if (sa->sa_family != AF_INET6)
                return 0;
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12) ||
            (!memcmp(a, zero, 12) &&
             (a[12] | a[13] | a[14] | (a[15] & 0xfe)) != 0)) { /* ::a.b.c.d, not ::1 */
                memcpy(out, a + 12, 4);
                return AF_INET;
        }
        memcpy(out, a, 16);
        return AF_INET6;
}

static enum nono_addr_class classify4(const uint8_t a[4])
{
        if ((a[0] == 169 && a[1] == 254 && a[2] == 169 && (a[3] == 254 || a[3] == 253)) ||
            (a[0] == 169 && a[1] == 254 && a[2] == 170 && a[3] == 2) || /* AWS ECS task credentials */
            (a[0] == 100 && a[1] == 100 && a[2] == 100 && a[3] == 200)) /* Alibaba Cloud */
                return NONO_ADDR_METADATA;
        if (a[0] == 127)
                return NONO_ADDR_LOOPBACK;
        if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
                return NONO_ADDR_PRIVATE;
        if (a[0] == 169 && a[1] == 254)
                return NONO_ADDR_LINKLOCAL;
        if (a[0] == 100 && (a[1] & 0xc0) == 64)
                return NONO_ADDR_CGNAT;
        if (a[0] == 0)
                return NONO_ADDR_UNSPECIFIED;
        if (a[0] >= 224)
                return NONO_ADDR_MULTICAST;
        return NONO_ADDR_PUBLIC;
}

static enum nono_addr_class classify6(const uint8_t a[16])
{
        static const uint8_t ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
        static const uint8_t zero[16] = {0};

        if (!memcmp(a, ec2, 16))
                return NONO_ADDR_METADATA;
        if (!memcmp(a, zero, 15))
                return a[15] == 1   ? NONO_ADDR_LOOPBACK
                       : a[15] == 0 ? NONO_ADDR_UNSPECIFIED
                                    : NONO_ADDR_PUBLIC;
        if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
                return NONO_ADDR_PRIVATE;
        if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
                return NONO_ADDR_LINKLOCAL;
        if (a[0] == 0xff)
                return NONO_ADDR_MULTICAST;
        return NONO_ADDR_PUBLIC;
}

enum nono_addr_class nono_addr_classify(const struct sockaddr *sa)
{
        uint8_t a[16];

        switch (addr_bytes(sa, a)) {
        case AF_INET:
                return classify4(a);
        case AF_INET6:
                return classify6(a);
        default:
                return NONO_ADDR_UNSPECIFIED;
        }
}

const char *nono_addr_class_name(enum nono_addr_class c)
{
        switch (c) {
        case NONO_ADDR_PUBLIC:
                return "public";
        case NONO_ADDR_LOOPBACK:
                return "loopback";
        case NONO_ADDR_PRIVATE:
                return "private";
        case NONO_ADDR_LINKLOCAL:
                return "link-local";
        case NONO_ADDR_CGNAT:
                return "carrier-grade NAT";
        case NONO_ADDR_UNSPECIFIED:
                return "unspecified";
        case NONO_ADDR_MULTICAST:
                return "multicast or reserved";
        case NONO_ADDR_METADATA:
                return "cloud metadata";
        }
        return "unknown";
}

bool nono_netrules_addr_granted(const nono_netrules *r, const struct sockaddr *sa)
{
        uint8_t a[16];
        int fam = addr_bytes(sa, a);

        for (size_t i = 0; fam && i < r->n; i++) {
                const struct nono_rule *x = &r->v[i];
                uint8_t b[16];
                int xf = x->family;

                if (!x->is_addr)
                        continue;
                memcpy(b, x->addr, 16);
                if (xf == AF_INET6) { /* a rule written as ::ffff:a.b.c.d grants a.b.c.d */
                        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
                        memcpy(&s6.sin6_addr, x->addr, 16);
                        xf = addr_bytes((struct sockaddr *)&s6, b);
                }
                if (xf == fam && !memcmp(a, b, fam == AF_INET ? 4 : 16))
                        return true;
        }
        return false;
}

const char *nono_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
        const void *a = sa->sa_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;

        if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || !inet_ntop(sa->sa_family, a, buf, len))
                snprintf(buf, len, "?");
        return buf;
}

bool nono_addr_check(const nono_netrules *r, const struct sockaddr *sa, enum nono_host_match how,
                     char *reason, size_t reason_len)
{
        enum nono_addr_class c = nono_addr_classify(sa);
        char a[INET6_ADDRSTRLEN];

        if (c == NONO_ADDR_PUBLIC || nono_netrules_addr_granted(r, sa))
                return true;
        if (c != NONO_ADDR_METADATA && how == NONO_MATCH_EXACT)
                return true;
        nono_addr_str(sa, a, sizeof(a));
        if (c == NONO_ADDR_METADATA)
                snprintf(
                    reason, reason_len,
                    "%s, a cloud metadata address: only --allow-domain %s (the literal address) grants it", a,
                    a);
        else
                snprintf(reason, reason_len,
                         "%s, a %s address: grant the exact host name or --allow-domain %s to reach it", a,
                         nono_addr_class_name(c), a);
        return false;
}

/* ---- hosts file ----------------------------------------------------------------------------------- */

struct nono_hosts_ent {
        char *name;
        struct sockaddr_storage addr;
};

struct nono_hosts {
        struct nono_hosts_ent *v;
        size_t n, cap;
};

void nono_hosts_free(nono_hosts *h)
{
        if (!h)
                return;
        for (size_t i = 0; i < h->n; i++)
                free(h->v[i].name);
        free(h->v);
        free(h);
}

static int hosts_add(nono_hosts *h, const char *name, int fam, const uint8_t *addr)
{
        struct nono_hosts_ent *e;

        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 16;
                void *v = realloc(h->v, cap * sizeof(*h->v));
                if (!v)
                        return -ENOMEM;
                h->v = v;
                h->cap = cap;
        }
        e = &h->v[h->n];
        memset(e, 0, sizeof(*e));
        e->name = strdup(name);
        if (!e->name)
                return -ENOMEM;
        if (nono_host_normalize(e->name) < 0) {
                free(e->name);
                return -EINVAL;
        }
        e->addr.ss_family = (sa_family_t)fam;
        if (fam == AF_INET)
                memcpy(&((struct sockaddr_in *)&e->addr)->sin_addr, addr, 4);
        else
                memcpy(&((struct sockaddr_in6 *)&e->addr)->sin6_addr, addr, 16);
        h->n++;
        return 0;
}

int nono_hosts_load(const char *path, nono_hosts **out, char **err)
{
        nono_hosts *h = calloc(1, sizeof(*h));
        FILE *f;
        char line[1024];
        unsigned lineno = 0;
        int ret = 0;

        *err = NULL;
        if (!h)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f) {
                ret = -errno;
                *err = fmt_alloc("cannot read hosts file %s: %s", path, strerror(errno));
                free(h);
                return ret;
        }
        while (ret == 0 && fgets(line, sizeof(line), f)) {
                char *save = NULL, *tok;
                uint8_t addr[16];
                int fam;

                lineno++;
                line[strcspn(line, "#\r\n")] = 0;
                tok = strtok_r(line, " \t", &save);
                if (!tok)
                        continue;
                fam = parse_literal(tok, addr);
                if (!fam) {
                        *err = fmt_alloc("%s:%u: '%s' is not an IP address", path, lineno, tok);
                        ret = -EINVAL;
                        break;
                }
                while (ret == 0 && (tok = strtok_r(NULL, " \t", &save))) {
                        ret = hosts_add(h, tok, fam, addr);
                        if (ret == -EINVAL)
                                *err = fmt_alloc("%s:%u: '%s' is not a host name", path, lineno, tok);
                }
        }
        fclose(f);
        if (ret < 0) {
                nono_hosts_free(h);
                return ret;
        }
        *out = h;
        return 0;
}

size_t nono_hosts_lookup(const nono_hosts *h, const char *name, uint16_t port, struct sockaddr_storage *out,
                         size_t cap)
{
        size_t n = 0;

        for (size_t i = 0; i < h->n && n < cap; i++) {
                if (strcmp(h->v[i].name, name))
                        continue;
                out[n] = h->v[i].addr;
                if (out[n].ss_family == AF_INET)
                        ((struct sockaddr_in *)&out[n])->sin_port = htons(port);
                else
                        ((struct sockaddr_in6 *)&out[n])->sin6_port = htons(port);
                n++;
        }
        return n;
}
