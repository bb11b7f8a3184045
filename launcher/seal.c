/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal.c - the audit key, sealing and verification (see seal.h for what it stops and what it does not).
 *
 * Verification combines three witnesses: the store's own chain check (stored chain prefixes against the
 * chain recomputed from content, which names the first altered event), the sequence numbers (gaps), and the
 * seal (the signed count and head, which catch appends, truncation and a consistent rewrite).
 */
#include "launcher/seal.h"
#include "launcher/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_MAGIC "nono-seal-v1"
#define KEY_FILE   "audit.key"
#define PUB_FILE   "audit.pub"

static __thread char errbuf[512];

const char *nono_audit_errmsg(void)
{
        return errbuf;
}

__attribute__((format(printf, 2, 3))) static int fail(int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
        va_end(ap);
        return r;
}

static void pkey_freep(EVP_PKEY **p)
{
        EVP_PKEY_free(*p);
}
static void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_pkey_   __attribute__((cleanup(pkey_freep)))
#define _cleanup_fclose_ __attribute__((cleanup(fclosep)))

/* ---- keys ----------------------------------------------------------------------------------------- */

int nono_audit_key_dir(char *buf, size_t len)
{
        const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        int n;

        if (x && *x == '/')
                n = snprintf(buf, len, "%s/nono/keys", x);
        else if (home && *home == '/')
                n = snprintf(buf, len, "%s/.config/nono/keys", home);
        else
                return fail(-ENOENT, "neither $XDG_CONFIG_HOME nor $HOME is set: set HOME");
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int mkdir_p(const char *dir, mode_t mode)
{
        char tmp[4096];

        if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int key_from_pkey(EVP_PKEY *pk, struct nono_audit_key *out)
{
        size_t l1 = 32, l2 = 32;

        if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519)
                return -EINVAL;
        if (EVP_PKEY_get_raw_private_key(pk, out->priv, &l1) != 1 ||
            EVP_PKEY_get_raw_public_key(pk, out->pub, &l2) != 1 || l1 != 32 || l2 != 32)
                return -EINVAL;
        return 0;
}

/*
 * The key file as nono writes it (PEM_write_PrivateKey of an Ed25519 key): PKCS#8 (RFC 8410), 48 bytes of
 * DER that end in the 32-byte seed. Read directly, because PEM_read_PrivateKey first registers every
 * cipher and digest name of OpenSSL and sets up its decoders: most of a millisecond of CPU in each
 * `nono run`, spent to parse a fixed 64-character line. Anything else (another PEM layout, a different
 * key type) goes to OpenSSL's reader, which judges it as before. The public key is derived from the seed by
 * libsodium, which signs (store/sodium-lazy.c), so a plain run does not load libcrypto at all.
 */
static int key_parse_fast(FILE *f, struct nono_audit_key *out)
{
        static const uint8_t der_prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                               0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
        static const char begin[] = "-----BEGIN PRIVATE KEY-----\n", end[] = "-----END PRIVATE KEY-----\n";
        char text[256], b64[65];
        uint8_t der[48 + 3];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        int ok = -EINVAL;

        text[n] = '\0';
        if (n != strlen(begin) + 65 + strlen(end) || strncmp(text, begin, strlen(begin)) ||
            text[strlen(begin) + 64] != '\n' || strcmp(text + strlen(begin) + 65, end))
                return -EINVAL;
        memcpy(b64, text + strlen(begin), 64);
        b64[64] = '\0';
        size_t dlen = 0;
        uint8_t sk[64];
        if (sodium_base642bin(der, sizeof(der), b64, 64, NULL, &dlen, NULL, sodium_base64_VARIANT_ORIGINAL) ==
                0 &&
            dlen == 48 && !memcmp(der, der_prefix, 16) &&
            crypto_sign_seed_keypair(out->pub, sk, der + 16) == 0) {
                memcpy(out->priv, der + 16, 32);
                ok = 0;
        }
        explicit_bzero(sk, sizeof(sk));
        explicit_bzero(text, sizeof(text));
        explicit_bzero(b64, sizeof(b64));
        explicit_bzero(der, sizeof(der));
        return ok;
}

static int key_read(const char *path, struct nono_audit_key *out)
{
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_pkey_ EVP_PKEY *pk = NULL;
        struct stat st;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return errno == ENOENT ? -ENOENT
                                       : fail(-errno, "cannot open audit key %s: %s", path, strerror(errno));
        f = fdopen(fd, "r");
        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return fail(-EPERM,
                            "audit key %s is not a regular file owned by you: remove it and run again", path);
        if (st.st_mode & 077)
                return fail(-EPERM,
                            "audit key %s can be read by others: chmod 600 %s (and consider it leaked)", path,
                            path);
        if (key_parse_fast(f, out) == 0)
                return 0;
        rewind(f);
        pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!pk || key_from_pkey(pk, out) < 0)
                return fail(-EINVAL,
                            "audit key %s is not an Ed25519 PEM private key: move it away to make a new one",
                            path);
        return 0;
}

/* Writes the PEM of pk (private or public) to dir/name through a temporary file; with excl, never replaces
 * an existing file (-EEXIST). */
static int write_pem(const char *dir, const char *name, EVP_PKEY *pk, bool priv, bool excl)
{
        char tmp[4200], dst[4200];
        int fd, r = 0;
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
        snprintf(dst, sizeof(dst), "%s/%s", dir, name);
        fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                unlink(tmp);
                return -ENOMEM;
        }
        if ((priv ? PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, pk)) != 1)
                r = -EIO;
        if (fflush(f) != 0 || fsync(fd) < 0)
                r = r ? r : -errno;
        fclose(f);
        if (!r && !priv && fchmodat(AT_FDCWD, tmp, 0644, 0) < 0)
                r = -errno;
        if (!r)
                r = excl ? (link(tmp, dst) < 0 ? -errno : 0) : (rename(tmp, dst) < 0 ? -errno : 0);
        unlink(tmp);
        return r;
}

static int key_create(const char *dir)
{
        _cleanup_pkey_ EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        int r;

        if (!pk)
                return fail(-EIO, "cannot generate an Ed25519 key (OpenSSL failed)");
        r = write_pem(dir, KEY_FILE, pk, true, true);
        if (r == -EEXIST)
                return 0; /* another nono made it first: use theirs */
        if (r < 0)
                return fail(r, "cannot write the audit key in %s: %s", dir, strerror(-r));
        r = write_pem(dir, PUB_FILE, pk, false, false);
        if (r < 0)
                return fail(r, "cannot write the audit public key in %s: %s", dir, strerror(-r));
        return 0;
}

int nono_audit_key_load(const char *dir, bool create, struct nono_audit_key *out)
{
        char dbuf[4096], path[4200];
        int r;

        if (!dir) {
                r = nono_audit_key_dir(dbuf, sizeof(dbuf));
                if (r < 0)
                        return r;
                dir = dbuf;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, KEY_FILE);
        r = key_read(path, out);
        if (r != -ENOENT || !create)
                return r == -ENOENT ? fail(r, "no audit key in %s", dir) : r;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return fail(r, "cannot create %s: %s", dir, strerror(-r));
        r = key_create(dir);
        if (r < 0)
                return r;
        return key_read(path, out);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c |= 0x20;
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int nono_audit_pubkey_read(const char *file, uint8_t pub[32])
{
        _cleanup_fclose_ FILE *f = fopen(file, "re");
        _cleanup_pkey_ EVP_PKEY *pk = NULL;
        char buf[256];
        size_t n, l = 32;

        if (!f)
                return fail(-errno, "cannot open public key %s: %s", file, strerror(errno));
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        if (strstr(buf, "-----BEGIN")) {
                rewind(f);
                pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
                if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
                    EVP_PKEY_get_raw_public_key(pk, pub, &l) != 1 || l != 32)
                        return fail(-EINVAL, "%s is not an Ed25519 public key", file);
                return 0;
        }
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = 0;
        if (n != 64)
                goto bad;
        for (int i = 0; i < 32; i++) {
                int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        goto bad;
                pub[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
bad:
        return fail(-EINVAL, "%s is neither a PEM Ed25519 public key nor 64 hex digits", file);
}

static void sha256(const void *buf, size_t len, uint8_t out[32])
{
        if (crypto_hash_sha256(out, buf, len))
                memset(out, 0, 32); /* libsodium missing (said on stderr): a seal that verifies nothing */
}

void nono_audit_key_fingerprint(const uint8_t pub[32], char *out, size_t len)
{
        uint8_t h[32];

        sha256(pub, 32, h);
        snprintf(out, len, "ed25519:%02x%02x%02x%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4], h[5],
                 h[6], h[7]);
}

/* ---- canonical session bytes ---------------------------------------------------------------------- */

struct buf {
        uint8_t *p;
        size_t len, cap;
        bool oom;
};

static void put(struct buf *b, const void *d, size_t n)
{
        if (b->oom)
                return;
        if (b->len + n > b->cap) {
                size_t cap = (b->cap ? b->cap * 2 : 256) + n;
                uint8_t *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, d, n);
        b->len += n;
}

static void put_u64(struct buf *b, uint64_t v)
{
        uint8_t le[8];

        for (int i = 0; i < 8; i++)
                le[i] = (uint8_t)(v >> (8 * i));
        put(b, le, 8);
}

static void put_u32(struct buf *b, uint32_t v)
{
        uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

        put(b, le, 4);
}

static void put_str(struct buf *b, const char *s)
{
        if (!s) {
                put_u32(b, UINT32_MAX);
                return;
        }
        put_u32(b, (uint32_t)strlen(s));
        put(b, s, strlen(s));
}

static void put_strv(struct buf *b, char **v)
{
        uint32_t n = 0;

        while (v && v[n])
                n++;
        put_u32(b, n);
        for (uint32_t i = 0; i < n; i++)
                put_str(b, v[i]);
}

uint8_t *nono_session_canonical(const struct nono_session *s, size_t *len)
{
        struct buf b = {0};

        put(&b, "nono-session-v1", 16);
        put_str(&b, s->id);
        put_u32(&b, s->kind);
        put_strv(&b, s->argv);
        put_str(&b, s->cwd);
        put_str(&b, s->policy_json);
        put_strv(&b, s->roots);
        put_str(&b, s->parent);
        put_u32(&b, s->rollback);
        put_u64(&b, (uint64_t)s->start_ns);
        put_u64(&b, (uint64_t)s->end_ns);
        put_u32(&b, (uint32_t)s->exit_status);
        if (b.oom) {
                free(b.p);
                return NULL;
        }
        *len = b.len;
        return b.p;
}

/* The signed message (see seal.h). */
static int seal_message(const struct nono_session *s, uint64_t count, const nono_digest *head, uint8_t *msg,
                        size_t *len)
{
        size_t clen, off = 0;
        uint8_t *canon = nono_session_canonical(s, &clen);

        if (!canon)
                return -ENOMEM;
        memcpy(msg, SEAL_MAGIC, sizeof(SEAL_MAGIC)); /* with its NUL */
        off += sizeof(SEAL_MAGIC);
        memcpy(msg + off, s->id, NONO_SESSION_ID_LEN);
        off += NONO_SESSION_ID_LEN;
        for (int i = 0; i < 8; i++)
                msg[off++] = (uint8_t)(count >> (8 * i));
        memcpy(msg + off, head->b, 32);
        off += 32;
        sha256(canon, clen, msg + off);
        off += 32;
        free(canon);
        *len = off;
        return 0;
}
#define SEAL_MSG_MAX (sizeof(SEAL_MAGIC) + NONO_SESSION_ID_LEN + 8 + 32 + 32)

/* RFC 8032 Ed25519 (libsodium: the same signatures as OpenSSL's, see store/sodium-lazy.c) */
static bool ed25519_verify(const uint8_t pub[32], const uint8_t sig[64], const uint8_t *msg, size_t len)
{
        return crypto_sign_verify_detached(sig, msg, len, pub) == 0;
}

static int ed25519_sign(const struct nono_audit_key *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
        uint8_t pk[32], sk[64]; /* libsodium's secret key is the seed followed by the public key */
        unsigned long long siglen = 0;
        int r = -EIO;

        if (crypto_sign_seed_keypair(pk, sk, k->priv) == 0 &&
            crypto_sign_detached(sig, &siglen, msg, len, sk) == 0 && siglen == 64)
                r = 0;
        explicit_bzero(sk, sizeof(sk));
        return r;
}

/* ---- the chain walk ------------------------------------------------------------------------------- */

/*
 * The store keeps a prefix of each event's chain value and the full head; nono_events_iterate() hands out the
 * chain recomputed from the content and nono_events_verify() names the first event whose stored prefix or
 * sequence does not fit. The walk here adds what only the seal knows (how many events were signed, and the
 * head at that count) and turns the findings into one precise sentence.
 */
struct walk {
        uint64_t expect;  /* next seq expected */
        uint64_t gap;     /* first missing seq, 0 none */
        uint64_t head_at; /* seq whose recomputed chain is wanted as head */
        nono_digest head;
        bool head_found;
        uint64_t last_seq;
        nono_digest last_chain;
};

static int walk_cb(const struct nono_event *ev, void *userdata)
{
        struct walk *w = userdata;

        if (ev->seq != w->expect && !w->gap)
                w->gap = w->expect;
        if (ev->seq == w->head_at) {
                w->head = ev->chain;
                w->head_found = true;
        }
        w->last_chain = ev->chain;
        w->last_seq = ev->seq;
        w->expect = ev->seq + 1;
        return 0;
}

static int walk_events(nono_store *st, const char *id, uint64_t head_at, struct walk *w)
{
        memset(w, 0, sizeof(*w));
        w->expect = 1;
        w->head_at = head_at;
        if (head_at == 0) {
                nono_event_chain_seed(id, &w->head);
                w->head_found = true;
        }
        return nono_events_iterate(st, id, 1, walk_cb, w);
}

struct finding {
        uint64_t first_bad; /* 0: no single event */
        char problem[400];
};

/* Judges the chain: the store's check, gaps, and (sealed) the signed count. Returns 0 or a read error. */
static int judge_chain(nono_store *st, const char *id, const struct walk *w, bool sealed,
                       uint64_t sealed_events, struct finding *f)
{
        uint64_t bad = 0, appended = 0, cut = 0, first = 0;
        int r = nono_events_verify(st, id, &bad, NULL);

        memset(f, 0, sizeof(*f));
        if (r < 0 && r != -EBADMSG)
                return r;
        if (r == 0)
                bad = 0;
        if (sealed && w->last_seq > sealed_events)
                appended = sealed_events + 1;
        if (sealed && w->last_seq < sealed_events)
                cut = w->last_seq + 1;
        else if (!sealed && bad == w->last_seq + 1)
                cut = bad; /* the store counted more events than there are */
        for (uint64_t c, i = 0; i < 4; i++) {
                c = i == 0 ? w->gap : i == 1 ? bad : i == 2 ? appended : cut;
                if (c && (!first || c < first))
                        first = c;
        }
        if (!first)
                return 0;
        f->first_bad = first;
        if (first == w->gap)
                snprintf(f->problem, sizeof(f->problem), "event %llu is missing (deleted)",
                         (unsigned long long)first);
        else if (first == appended)
                snprintf(f->problem, sizeof(f->problem),
                         "event %llu was added after the session was sealed (the seal covers %llu events)",
                         (unsigned long long)first, (unsigned long long)sealed_events);
        else if (first == cut && sealed)
                snprintf(
                    f->problem, sizeof(f->problem),
                    "events %llu to %llu are missing (deleted from the end; the seal covers %llu events)",
                    (unsigned long long)first, (unsigned long long)sealed_events,
                    (unsigned long long)sealed_events);
        else if (first == cut)
                snprintf(f->problem, sizeof(f->problem),
                         "event %llu and any after it are missing (deleted from the end)",
                         (unsigned long long)first);
        else
                snprintf(
                    f->problem, sizeof(f->problem),
                    "event %llu does not match its hash: it was modified, replaced or moved after it was "
                    "written",
                    (unsigned long long)first);
        return 0;
}

/* ---- seal ----------------------------------------------------------------------------------------- */

static bool is_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

/* fin: the final record's mutable fields, stored with the seal in the same update (NULL: as stored). */
static int seal_impl(nono_store *st, const char *session, const struct nono_audit_key *key,
                     const struct nono_session *fin)
{
        struct nono_session s = {0};
        struct finding f;
        struct walk w;
        uint8_t msg[SEAL_MSG_MAX];
        size_t mlen;
        int r;

        r = nono_store_sync(st);
        if (r < 0)
                return fail(r, "cannot flush the audit events: %s", nono_store_errmsg());
        r = nono_session_get(st, session, &s);
        if (r < 0)
                return fail(r, "cannot read session %s: %s", session, nono_store_errmsg());
        if (fin) {
                s.state = fin->state;
                s.end_ns = fin->end_ns;
                s.exit_status = fin->exit_status;
                s.preimage_bytes = fin->preimage_bytes;
        }
        r = walk_events(st, s.id, UINT64_MAX, &w);
        if (r == 0)
                r = judge_chain(st, s.id, &w, false, 0, &f);
        if (r < 0) {
                r = fail(r, "cannot read the events of session %s: %s", s.id, nono_store_errmsg());
                goto out;
        }
        if (f.first_bad) {
                r = fail(-EBADMSG, "session %s: refusing to seal a broken chain: %s", s.id, f.problem);
                goto out;
        }
        if (w.last_seq)
                w.head = w.last_chain;
        else
                nono_event_chain_seed(s.id, &w.head);
        r = seal_message(&s, w.last_seq, &w.head, msg, &mlen);
        if (r == 0)
                r = ed25519_sign(key, msg, mlen, s.seal);
        if (r < 0) {
                r = fail(r, "cannot sign session %s", s.id);
                goto out;
        }
        memcpy(s.seal_pub, key->pub, 32);
        s.sealed_events = w.last_seq;
        r = nono_session_update(st, &s);
        if (r < 0)
                r = fail(r, "cannot store the seal of session %s: %s", s.id, nono_store_errmsg());
out:
        nono_session_clear(&s);
        return r;
}

int nono_audit_seal_with(nono_store *st, const char *session, const struct nono_audit_key *key)
{
        return seal_impl(st, session, key, NULL);
}

struct end_ctx {
        const struct nono_session *fin;
        const struct nono_audit_key *k;
};

/* The end event from the counts the store's writer has, inside its transaction (store.h). */
static int fill_end(const struct nono_event_counts *before, struct nono_event *end, void *arg)
{
        const struct end_ctx *x = arg;

        return nono_audit_end_fill(before, x->fin->exit_status, x->fin->end_ns - x->fin->start_ns, end);
}

/* Signs the record and the end event as the store's writer has them (store.h, nono_events_end_sealed). */
static int sign_end(struct nono_session *rec, const struct nono_event *end, void *arg)
{
        const struct end_ctx *x = arg;
        uint8_t msg[SEAL_MSG_MAX];
        size_t mlen;
        int r = seal_message(rec, end->seq, &end->chain, msg, &mlen);

        if (r == 0)
                r = ed25519_sign(x->k, msg, mlen, rec->seal);
        if (r < 0)
                return r;
        memcpy(rec->seal_pub, x->k->pub, 32);
        rec->sealed_events = end->seq;
        return 0;
}

/*
 * The end event (its counts taken from the writer's state) and the sealed record in one transaction,
 * signed inside it over the chain head the writer has just computed: the events queued before it (the
 * roots' last ones, the supervisor's) need no commit of their own first, and nothing can come between the
 * end event and the seal. Before, the roots' last events had a commit of their own first, because the
 * counts and the head were read from the committed store.
 * Why it is safe to sign the writer's head without the walk seal_impl does: verification recomputes the
 * chain from the stored content and compares it with the signed head, so content altered before the seal
 * fails verification either way (the walk only refused to seal it); and the head signed here is the one the
 * writer computed from the events it was given, not one recomputed from what may have been altered since.
 */
int nono_audit_end_sealed(nono_store *st, const struct nono_session *fin, const struct nono_audit_key *key,
                          bool *ended)
{
        struct nono_audit_key k;
        struct nono_event ev;
        int r;

        *ended = false;
        if (key) {
                k = *key;
        } else if ((r = nono_audit_key_load(NULL, true, &k)) < 0) {
                /* no key: the end event alone, and the session stays unsealed */
                if (nono_audit_end_event(st, fin->id, fin->exit_status, fin->end_ns - fin->start_ns, &ev) ==
                    0)
                        *ended = nono_events_append(st, fin->id, &ev, 1, 0) == 0;
                free((char *)ev.detail);
                return r;
        }
        struct end_ctx x = {.fin = fin, .k = &k};
        struct nono_end_ops ops = {.fill = fill_end, .sign = sign_end, .arg = &x};
        if (fin->exit_status == 128 + SIGSYS)
                (void)nono_audit_sigsys_event(st, fin->id, NONO_ASYNC); /* counted in the end event */
        r = nono_events_end_sealed(st, fin, &ops);
        if (r == 0) {
                *ended = true;
                goto out;
        }
        /* nothing was written: the end event alone, then the seal the slow way (it says why it fails) */
        r = nono_audit_end_event(st, fin->id, fin->exit_status, fin->end_ns - fin->start_ns, &ev);
        if (r == 0 && (r = nono_events_append(st, fin->id, &ev, 1, 0)) == 0) {
                *ended = true;
                r = seal_impl(st, fin->id, &k, fin);
        } else {
                r = fail(r, "cannot record the end of session %s: %s", fin->id, nono_store_errmsg());
        }
        free((char *)ev.detail);
out:
        explicit_bzero(&k, sizeof(k));
        return r;
}

int nono_audit_seal(nono_store *st, const char *session)
{
        struct nono_audit_key k;
        int r = nono_audit_key_load(NULL, true, &k);

        if (r < 0)
                return r;
        r = nono_audit_seal_with(st, session, &k);
        explicit_bzero(&k, sizeof(k));
        return r;
}

/* ---- verify --------------------------------------------------------------------------------------- */

static void trusted_key(const uint8_t *given, uint8_t pub[32], bool *have, struct nono_verify_report *out)
{
        struct nono_audit_key k;
        char dir[4096];

        *have = false;
        if (given) {
                memcpy(pub, given, 32);
                *have = true;
                snprintf(out->key_source, sizeof(out->key_source), "the given public key");
                return;
        }
        if (nono_audit_key_dir(dir, sizeof(dir)) == 0 && nono_audit_key_load(dir, false, &k) == 0) {
                memcpy(pub, k.pub, 32);
                explicit_bzero(&k, sizeof(k));
                *have = true;
                snprintf(out->key_source, sizeof(out->key_source), "the local audit key (%.120s)", dir);
                return;
        }
        snprintf(out->key_source, sizeof(out->key_source),
                 "only the key recorded in the session (no local key; pass --public-key to trust one)");
}

static void verify_seal(const struct nono_session *s, const struct walk *w, const uint8_t *given,
                        struct nono_verify_report *out, struct finding *f)
{
        uint8_t tpub[32], msg[SEAL_MSG_MAX];
        char tfp[40];
        size_t mlen;
        bool have;

        nono_audit_key_fingerprint(s->seal_pub, out->fingerprint, sizeof(out->fingerprint));
        if (seal_message(s, s->sealed_events, &w->head, msg, &mlen) < 0)
                return;
        out->signature_ok = w->head_found && ed25519_verify(s->seal_pub, s->seal, msg, mlen);
        trusted_key(given, tpub, &have, out);
        out->key_trusted = have && !memcmp(tpub, s->seal_pub, 32);
        if (f->problem[0])
                return;
        if (!out->signature_ok) {
                snprintf(f->problem, sizeof(f->problem),
                         "the seal does not match: the session record or its events were rewritten after the "
                         "seal (consistently, so no single event stands out), or the seal was forged");
        } else if (have && !out->key_trusted) {
                nono_audit_key_fingerprint(tpub, tfp, sizeof(tfp));
                snprintf(
                    f->problem, sizeof(f->problem),
                    "sealed by key %s, not by the trusted key %s (%s): the trail may have been re-sealed",
                    out->fingerprint, tfp, out->key_source);
        }
}

int nono_audit_verify(nono_store *st, const char *session, const uint8_t *trusted_pub,
                      struct nono_verify_report *out)
{
        struct nono_session s = {0};
        struct finding f;
        struct walk w;
        int r;

        memset(out, 0, sizeof(*out));
        r = nono_session_get(st, session, &s);
        if (r < 0)
                return fail(r, "%s", nono_store_errmsg());
        out->sealed = !is_zero(s.seal, sizeof(s.seal));
        out->running = s.state == NONO_SESSION_RUNNING;
        r = walk_events(st, s.id, out->sealed ? s.sealed_events : UINT64_MAX, &w);
        if (r == 0)
                r = judge_chain(st, s.id, &w, out->sealed, s.sealed_events, &f);
        if (r < 0) {
                r = fail(r, "cannot read the events of session %s: %s", s.id, nono_store_errmsg());
                goto out;
        }
        if (out->sealed)
                verify_seal(&s, &w, trusted_pub, out, &f);
        out->events = w.last_seq;
        out->first_bad = f.first_bad;
        snprintf(out->problem, sizeof(out->problem), "%s", f.problem);
        if (f.problem[0])
                out->verdict = NONO_VERIFY_BAD;
        else if (!out->sealed)
                out->verdict = NONO_VERIFY_UNSEALED;
        else
                out->verdict = NONO_VERIFY_OK;
out:
        nono_session_clear(&s);
        return r;
}
