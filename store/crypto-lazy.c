/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto-lazy.c - libcrypto (OpenSSL 3), loaded on first use.
 *
 * Mapping and relocating libcrypto before main() cost about 1 ms of CPU in every nono process (measured: an
 * empty program linked with -lcrypto starts in 1.6 ms, without it in 0.5 ms), on the serial path of `nono
 * run` before the sandbox can start. So no nono binary links it: this file defines the OpenSSL functions that
 * nono calls (the prototypes are OpenSSL's own headers', so a signature mismatch does not compile), and each
 * one dlopen()s the library once and calls the real function. `nono run` makes its first OpenSSL call from
 * the store's writer thread (its first event), so the loading overlaps with init building the sandbox.
 * If libcrypto cannot be loaded, the functions fail the way OpenSSL reports failure (NULL or 0) after one
 * message naming the library; libcrypto is a dependency of the package, so that is a broken installation.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co., which the store uses for its chunk hashes */
#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef NONO_LIBCRYPTO_SONAME
#define NONO_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

#define CRYPTO_FUNCS(X)                                                                                      \
        X(EVP_Digest)                                                                                        \
        X(EVP_DigestFinal_ex)                                                                                \
        X(EVP_DigestInit_ex)                                                                                 \
        X(EVP_DigestSign)                                                                                    \
        X(EVP_DigestSignInit)                                                                                \
        X(EVP_DigestUpdate)                                                                                  \
        X(EVP_DigestVerify)                                                                                  \
        X(EVP_DigestVerifyInit)                                                                              \
        X(EVP_MD_CTX_free)                                                                                   \
        X(EVP_MD_CTX_new)                                                                                    \
        X(EVP_MD_fetch)                                                                                      \
        X(EVP_MD_free)                                                                                       \
        X(EVP_PKEY_Q_keygen)                                                                                 \
        X(EVP_PKEY_free)                                                                                     \
        X(EVP_PKEY_get_base_id)                                                                              \
        X(EVP_PKEY_get_raw_private_key)                                                                      \
        X(EVP_PKEY_get_raw_public_key)                                                                       \
        X(EVP_PKEY_new_raw_private_key)                                                                      \
        X(EVP_PKEY_new_raw_public_key)                                                                       \
        X(EVP_sha256)                                                                                        \
        X(EVP_DecodeBlock)                                                                                   \
        X(OPENSSL_init_crypto)                                                                               \
        X(SHA256_Init)                                                                                       \
        X(SHA256_Update)                                                                                     \
        X(SHA256_Final)                                                                                      \
        X(PEM_read_PrivateKey)                                                                               \
        X(PEM_write_PrivateKey)                                                                              \
        X(PEM_read_PUBKEY)                                                                                   \
        X(PEM_write_PUBKEY)

static struct {
#define X(f) __typeof__(f) *f;
        CRYPTO_FUNCS(X)
#undef X
} real;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load(void)
{
        void *h =
            dlopen(NONO_LIBCRYPTO_SONAME, RTLD_LAZY | RTLD_LOCAL); /* as when linked: bind on first call */

        if (!h) {
                fprintf(stderr, "nono: cannot load %s (install libssl3): %s\n", NONO_LIBCRYPTO_SONAME,
                        dlerror());
                return;
        }
#define X(f)                                                                                                 \
        if (!(real.f = (__typeof__(f) *)dlsym(h, #f))) {                                                     \
                fprintf(stderr, "nono: %s has no %s: install the libcrypto nono was built with\n",           \
                        NONO_LIBCRYPTO_SONAME, #f);                                                          \
                return;                                                                                      \
        }
        CRYPTO_FUNCS(X)
#undef X
        /* The first OpenSSL call of the process, so the flags take: OpenSSL would otherwise free its tables
         * in an atexit handler, milliseconds spent after everything is durable on memory the exit frees; and
         * what nono asks of it (SHA-256 of file contents, Ed25519 keys in PEM files) needs nothing from the
         * system's openssl.cnf, whose reading was half of the first digest fetch (0.9 of 2 ms). */
        real.OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        loaded = true;
}

static bool ready(void)
{
        pthread_once(&once, load);
        return loaded;
}

int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type,
               ENGINE *impl)
{
        return ready() ? real.EVP_Digest(data, count, md, size, type, impl) : 0;
}

int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s)
{
        return ready() ? real.EVP_DigestFinal_ex(ctx, md, s) : 0;
}

int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl)
{
        return ready() ? real.EVP_DigestInit_ex(ctx, type, impl) : 0;
}

int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen, const unsigned char *tbs,
                   size_t tbslen)
{
        return ready() ? real.EVP_DigestSign(ctx, sigret, siglen, tbs, tbslen) : 0;
}

int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey)
{
        return ready() ? real.EVP_DigestSignInit(ctx, pctx, type, e, pkey) : 0;
}

int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt)
{
        return ready() ? real.EVP_DigestUpdate(ctx, d, cnt) : 0;
}

int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sigret, size_t siglen, const unsigned char *tbs,
                     size_t tbslen)
{
        return ready() ? real.EVP_DigestVerify(ctx, sigret, siglen, tbs, tbslen) : 0;
}

int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey)
{
        return ready() ? real.EVP_DigestVerifyInit(ctx, pctx, type, e, pkey) : 0;
}

void EVP_MD_CTX_free(EVP_MD_CTX *ctx)
{
        if (ctx && ready())
                real.EVP_MD_CTX_free(ctx);
}

EVP_MD_CTX *EVP_MD_CTX_new(void)
{
        return ready() ? real.EVP_MD_CTX_new() : NULL;
}

EVP_MD *EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties)
{
        return ready() ? real.EVP_MD_fetch(ctx, algorithm, properties) : NULL;
}

void EVP_MD_free(EVP_MD *md)
{
        if (md && ready())
                real.EVP_MD_free(md);
}

/* OpenSSL's own reading of the variable part: a size_t of bits for "RSA", a curve name for "EC", nothing
 * for the others (nono asks for "ED25519"). */
EVP_PKEY *EVP_PKEY_Q_keygen(OSSL_LIB_CTX *libctx, const char *propq, const char *type, ...)
{
        EVP_PKEY *k = NULL;
        va_list ap;

        if (!ready() || !type)
                return NULL;
        va_start(ap, type);
        if (!strcasecmp(type, "RSA"))
                k = real.EVP_PKEY_Q_keygen(libctx, propq, type, va_arg(ap, size_t));
        else if (!strcasecmp(type, "EC"))
                k = real.EVP_PKEY_Q_keygen(libctx, propq, type, va_arg(ap, char *));
        else
                k = real.EVP_PKEY_Q_keygen(libctx, propq, type);
        va_end(ap);
        return k;
}

void EVP_PKEY_free(EVP_PKEY *pkey)
{
        if (pkey && ready())
                real.EVP_PKEY_free(pkey);
}

int EVP_PKEY_get_base_id(const EVP_PKEY *pkey)
{
        return ready() ? real.EVP_PKEY_get_base_id(pkey) : 0;
}

int EVP_PKEY_get_raw_private_key(const EVP_PKEY *pkey, unsigned char *priv, size_t *len)
{
        return ready() ? real.EVP_PKEY_get_raw_private_key(pkey, priv, len) : 0;
}

int EVP_PKEY_get_raw_public_key(const EVP_PKEY *pkey, unsigned char *pub, size_t *len)
{
        return ready() ? real.EVP_PKEY_get_raw_public_key(pkey, pub, len) : 0;
}

EVP_PKEY *EVP_PKEY_new_raw_private_key(int type, ENGINE *e, const unsigned char *priv, size_t len)
{
        return ready() ? real.EVP_PKEY_new_raw_private_key(type, e, priv, len) : NULL;
}

EVP_PKEY *EVP_PKEY_new_raw_public_key(int type, ENGINE *e, const unsigned char *pub, size_t len)
{
        return ready() ? real.EVP_PKEY_new_raw_public_key(type, e, pub, len) : NULL;
}

const EVP_MD *EVP_sha256(void)
{
        return ready() ? real.EVP_sha256() : NULL;
}

int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
        return ready() ? real.EVP_DecodeBlock(t, f, n) : -1;
}

int OPENSSL_init_crypto(uint64_t opts, const OPENSSL_INIT_SETTINGS *settings)
{
        return ready() ? real.OPENSSL_init_crypto(opts, settings) : 0;
}

int SHA256_Init(SHA256_CTX *c)
{
        return ready() ? real.SHA256_Init(c) : 0;
}

int SHA256_Update(SHA256_CTX *c, const void *data, size_t len)
{
        return ready() ? real.SHA256_Update(c, data, len) : 0;
}

int SHA256_Final(unsigned char *md, SHA256_CTX *c)
{
        return ready() ? real.SHA256_Final(md, c) : 0;
}

EVP_PKEY *PEM_read_PrivateKey(FILE *fp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
        return ready() ? real.PEM_read_PrivateKey(fp, x, cb, u) : NULL;
}

int PEM_write_PrivateKey(FILE *fp, const EVP_PKEY *x, const EVP_CIPHER *enc, const unsigned char *kstr,
                         int klen, pem_password_cb *cb, void *u)
{
        return ready() ? real.PEM_write_PrivateKey(fp, x, enc, kstr, klen, cb, u) : 0;
}

EVP_PKEY *PEM_read_PUBKEY(FILE *fp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
        return ready() ? real.PEM_read_PUBKEY(fp, x, cb, u) : NULL;
}

int PEM_write_PUBKEY(FILE *fp, const EVP_PKEY *x)
{
        return ready() ? real.PEM_write_PUBKEY(fp, x) : 0;
}
