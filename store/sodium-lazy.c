/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sodium-lazy.c - libsodium, loaded on first use, for the audit trail's SHA-256 chain and Ed25519 seal.
 *
 * Why not OpenSSL for these: every `nono run` hashes its events into the chain and signs the seal, and
 * getting libcrypto ready for that cost about 5 ms of CPU per run on the CI machine (dlopen and relocation
 * 3 ms, the configuration and providers at the first digest fetch 2 ms) against 0.45 ms for libsodium, on
 * a 2-CPU machine where the sandbox's start is CPU-bound. The digests and signatures are the same bytes
 * (SHA-256, and RFC 8032 Ed25519 which is deterministic), so stores and keys written before are read and
 * verified unchanged; tests/unit/store/test-sodium.c checks both libraries against each other. OpenSSL keeps
 * the bulk hashing of file contents (its SHA-256 uses the CPU's SHA instructions), keys in PEM files and key
 * generation.
 *
 * As in crypto-lazy.c, no nono binary links the library: this file defines the libsodium functions nono calls
 * (the prototypes are libsodium's own headers', so a mismatch does not compile), and each one dlopen()s the
 * library once. If it cannot be loaded, the functions fail as libsodium reports failure (-1) after one
 * message naming the package.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>

#ifndef NONO_LIBSODIUM_SONAME
#define NONO_LIBSODIUM_SONAME "libsodium.so.23"
#endif

#define SODIUM_FUNCS(X)                                                                                      \
        X(sodium_init)                                                                                       \
        X(sodium_base642bin)                                                                                 \
        X(crypto_hash_sha256)                                                                                \
        X(crypto_hash_sha256_init)                                                                           \
        X(crypto_hash_sha256_update)                                                                         \
        X(crypto_hash_sha256_final)                                                                          \
        X(crypto_sign_seed_keypair)                                                                          \
        X(crypto_sign_detached)                                                                              \
        X(crypto_sign_verify_detached)

static struct {
#define X(f) __typeof__(f) *f;
        SODIUM_FUNCS(X)
#undef X
} real;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load(void)
{
        void *h = dlopen(NONO_LIBSODIUM_SONAME, RTLD_LAZY | RTLD_LOCAL);

        if (!h) {
                fprintf(stderr, "nono: cannot load %s (install libsodium23): %s\n", NONO_LIBSODIUM_SONAME,
                        dlerror());
                return;
        }
#define X(f)                                                                                                 \
        if (!(real.f = (__typeof__(f) *)dlsym(h, #f))) {                                                     \
                fprintf(stderr, "nono: %s has no %s: install the libsodium nono was built with\n",           \
                        NONO_LIBSODIUM_SONAME, #f);                                                          \
                return;                                                                                      \
        }
        SODIUM_FUNCS(X)
#undef X
        /* picks the implementations for this CPU; 1 means it already ran (another user of the library) */
        if (real.sodium_init() < 0) {
                fprintf(stderr, "nono: %s could not initialise\n", NONO_LIBSODIUM_SONAME);
                return;
        }
        loaded = true;
}

static bool ready(void)
{
        pthread_once(&once, load);
        return loaded;
}

int sodium_init(void)
{
        return ready() ? 0 : -1;
}

int sodium_base642bin(unsigned char *const bin, const size_t bin_maxlen, const char *const b64,
                      const size_t b64_len, const char *const ignore, size_t *const bin_len,
                      const char **const b64_end, const int variant)
{
        return ready()
                   ? real.sodium_base642bin(bin, bin_maxlen, b64, b64_len, ignore, bin_len, b64_end, variant)
                   : -1;
}

int crypto_hash_sha256(unsigned char *out, const unsigned char *in, unsigned long long inlen)
{
        return ready() ? real.crypto_hash_sha256(out, in, inlen) : -1;
}

int crypto_hash_sha256_init(crypto_hash_sha256_state *state)
{
        return ready() ? real.crypto_hash_sha256_init(state) : -1;
}

int crypto_hash_sha256_update(crypto_hash_sha256_state *state, const unsigned char *in,
                              unsigned long long inlen)
{
        return ready() ? real.crypto_hash_sha256_update(state, in, inlen) : -1;
}

int crypto_hash_sha256_final(crypto_hash_sha256_state *state, unsigned char *out)
{
        return ready() ? real.crypto_hash_sha256_final(state, out) : -1;
}

int crypto_sign_seed_keypair(unsigned char *pk, unsigned char *sk, const unsigned char *seed)
{
        return ready() ? real.crypto_sign_seed_keypair(pk, sk, seed) : -1;
}

int crypto_sign_detached(unsigned char *sig, unsigned long long *siglen_p, const unsigned char *m,
                         unsigned long long mlen, const unsigned char *sk)
{
        return ready() ? real.crypto_sign_detached(sig, siglen_p, m, mlen, sk) : -1;
}

int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m, unsigned long long mlen,
                                const unsigned char *pk)
{
        return ready() ? real.crypto_sign_verify_detached(sig, m, mlen, pk) : -1;
}
