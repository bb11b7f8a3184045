/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sodium.c - the audit trail's SHA-256 and Ed25519 come from libsodium (store/sodium-lazy.c), the keys
 * and every store written before from OpenSSL: both must give the same bytes, or old sessions stop
 * verifying. Published test vectors, then both libraries on the same random inputs.
 */
#include <openssl/evp.h>
#include <sodium.h>

#include "helpers.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
        for (size_t i = 0; i < n; i++)
                assert_int_equal(sscanf(h + 2 * i, "%2hhx", &out[i]), 1);
}

static void sha256_vectors(void **state)
{
        (void)state;
        uint8_t got[32], want[32];

        /* FIPS 180-2 appendix B.1 */
        assert_int_equal(crypto_hash_sha256(got, (const uint8_t *)"abc", 3), 0);
        unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
        assert_memory_equal(got, want, 32);
        /* the incremental form, split inside a block and across one */
        const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        crypto_hash_sha256_state st;
        assert_int_equal(crypto_hash_sha256_init(&st), 0);
        assert_int_equal(crypto_hash_sha256_update(&st, (const uint8_t *)m, 7), 0);
        assert_int_equal(crypto_hash_sha256_update(&st, (const uint8_t *)m + 7, strlen(m) - 7), 0);
        assert_int_equal(crypto_hash_sha256_final(&st, got), 0);
        unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", want, 32);
        assert_memory_equal(got, want, 32);
}

static void sha256_same_as_openssl(void **state)
{
        (void)state;
        uint8_t buf[4096], a[32], b[32];
        unsigned int n = 32;

        for (unsigned len = 0; len <= sizeof(buf); len += 61) {
                fill_random(buf, len, len);
                assert_int_equal(crypto_hash_sha256(a, buf, len), 0);
                assert_int_equal(EVP_Digest(buf, len, b, &n, EVP_sha256(), NULL), 1);
                assert_memory_equal(a, b, 32);
        }
}

static void ed25519_rfc8032(void **state)
{
        (void)state;
        uint8_t seed[32], pub[32], want_pub[32], sk[64], sig[64], want_sig[64];
        unsigned long long l = 0;

        /* RFC 8032 section 7.1, TEST 1 (the empty message) */
        unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
        unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", want_pub, 32);
        unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
              "6bd25bf5f0595bbe24655141438e7a100b",
              want_sig, 64);
        assert_int_equal(crypto_sign_seed_keypair(pub, sk, seed), 0);
        assert_memory_equal(pub, want_pub, 32);
        assert_int_equal(crypto_sign_detached(sig, &l, (const uint8_t *)"", 0, sk), 0);
        assert_int_equal(l, 64);
        assert_memory_equal(sig, want_sig, 64);
        assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"", 0, pub), 0);
        sig[10] ^= 1;
        assert_int_not_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"", 0, pub), 0);
}

static void ed25519_same_as_openssl(void **state)
{
        (void)state;
        for (unsigned k = 0; k < 20; k++) {
                uint8_t seed[32], msg[300], pub[32], opub[32], sk[64], sig[64], osig[64];
                size_t mlen = k * 15, ol = 32, osl = 64;
                unsigned long long l = 0;

                fill_random(seed, sizeof(seed), 1000 + k);
                fill_random(msg, mlen, 2000 + k);
                assert_int_equal(crypto_sign_seed_keypair(pub, sk, seed), 0);
                assert_int_equal(crypto_sign_detached(sig, &l, msg, mlen, sk), 0);

                EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
                EVP_MD_CTX *ctx = EVP_MD_CTX_new();
                assert_non_null(pk);
                assert_non_null(ctx);
                assert_int_equal(EVP_PKEY_get_raw_public_key(pk, opub, &ol), 1);
                assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk), 1);
                assert_int_equal(EVP_DigestSign(ctx, osig, &osl, msg, mlen), 1);
                EVP_MD_CTX_free(ctx);
                EVP_PKEY_free(pk);

                assert_memory_equal(pub, opub, 32);
                assert_memory_equal(sig, osig, 64); /* Ed25519 is deterministic: the very same signature */
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(sha256_vectors),
            cmocka_unit_test(sha256_same_as_openssl),
            cmocka_unit_test(ed25519_rfc8032),
            cmocka_unit_test(ed25519_same_as_openssl),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
