/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netrules.h - the --allow-domain allow list and the address classifier of the network proxy.
 *
 * A rule is one of:
 *   - an exact host name ("api.github.com"): matches that name, case-insensitive, with or without a trailing
 * dot;
 *   - a wildcard ("*.example.com"): matches any name below example.com ("a.example.com", "a.b.example.com"),
 *     never example.com itself nor "badexample.com";
 *   - an IP literal ("10.0.0.5", "::1" or "[::1]"): matches exactly that address written as a literal.
 *
 * What it stops: an agent reaching a host nobody granted, by name or by address, including private and
 * cloud-metadata addresses reached through a granted name whose DNS answer points inward (DNS rebinding):
 * the proxy checks the address it is about to connect to, after resolution, with nono_addr_check().
 * What it does not stop: traffic to a granted host (a granted CDN name can front other sites through TLS SNI
 * or Host headers that the proxy cannot see inside a CONNECT tunnel).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct nono_netrules nono_netrules;

/* Parses the allow list (NULL-terminated, may be NULL). On a bad entry returns -EINVAL and sets *err to a
 * malloc'd message naming the entry and the fix. */
int nono_netrules_new(const char *const *allow, nono_netrules **out, char **err);
void nono_netrules_free(nono_netrules *r);

/* How a host matched. */
enum nono_host_match {
        NONO_MATCH_NONE = 0,     /* not granted */
        NONO_MATCH_WILDCARD = 1, /* granted by a *.suffix rule */
        NONO_MATCH_EXACT = 2,    /* granted by its exact name, or the literal address */
};

/* Matches a request's host (a name, or an IP literal in canonical form, IPv6 with or without brackets). */
enum nono_host_match nono_netrules_match(const nono_netrules *r, const char *host);

/* True when the address was granted as a literal rule. */
bool nono_netrules_addr_granted(const nono_netrules *r, const struct sockaddr *sa);

/* Address classes that are refused unless granted explicitly. */
enum nono_addr_class {
        NONO_ADDR_PUBLIC = 0,
        NONO_ADDR_LOOPBACK,    /* 127/8, ::1 */
        NONO_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
        NONO_ADDR_LINKLOCAL,   /* 169.254/16, fe80::/10 */
        NONO_ADDR_CGNAT,       /* 100.64/10 */
        NONO_ADDR_UNSPECIFIED, /* 0/8, :: */
        NONO_ADDR_MULTICAST,   /* 224/4, ff00::/8, 255.255.255.255, 240/4 (reserved) */
        NONO_ADDR_METADATA,    /* cloud metadata endpoints: only the literal address grants them */
};

/* Classifies an AF_INET or AF_INET6 address. IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible and NAT64
 * (64:ff9b::/96) IPv6 addresses are classified by the IPv4 address they carry. */
enum nono_addr_class nono_addr_classify(const struct sockaddr *sa);
const char *nono_addr_class_name(enum nono_addr_class c);

/* The decision for connecting to sa on behalf of a host that matched with `how`:
 *   - public addresses: allowed;
 *   - metadata addresses: only if the literal address is a rule;
 *   - other non-public classes: if the literal address is a rule, or the host matched by exact name.
 * Returns true if allowed; otherwise writes a reason ("169.254.169.254 is a cloud metadata address...") to
 * reason. */
bool nono_addr_check(const nono_netrules *r, const struct sockaddr *sa, enum nono_host_match how,
                     char *reason, size_t reason_len);

/* Validates and normalises a request host in place: lower case, no trailing dot, no brackets around IPv6.
 * Returns 0, or -EINVAL for an invalid name or a non-canonical numeric form ("127.1", "0x7f.0.0.1",
 * "2130706433") that resolvers would read as an address. */
int nono_host_normalize(char *host);

/* Formats an address (no port) into buf (>= 46 bytes). */
const char *nono_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* A static hosts table for tests (the proxy's own resolver override; the agent never controls it).
 * File format: /etc/hosts ("ADDRESS NAME [NAME...]", '#' comments). */
typedef struct nono_hosts nono_hosts;
int nono_hosts_load(const char *path, nono_hosts **out, char **err);
void nono_hosts_free(nono_hosts *h);
/* Fills up to cap addresses (port set) for name; returns the count (0: unknown name). */
size_t nono_hosts_lookup(const nono_hosts *h, const char *name, uint16_t port, struct sockaddr_storage *out,
                         size_t cap);
