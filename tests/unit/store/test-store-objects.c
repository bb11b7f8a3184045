/* SPDX-License-Identifier: Apache-2.0 */
/* test-store-objects.c - chunks, objects, dedupe, verify, refcounts and garbage collection. */
#include <fcntl.h>
#include <openssl/evp.h>

#include "helpers.h"

static void put_get_sizes(void **state)
{
        struct fixture *f = *state;
        const size_t sizes[] = {0,
                                1,
                                4096,
                                NONO_CHUNK_SIZE - 1,
                                NONO_CHUNK_SIZE,
                                NONO_CHUNK_SIZE + 1,
                                3 * NONO_CHUNK_SIZE + 17,
                                5u << 20};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t n = sizes[i];
                uint8_t *buf = malloc(n + 1);
                fill_random(buf, n, (unsigned)i);
                nono_digest d, d2;
                assert_ok(nono_object_put_buf(f->st, buf, n, &d, 0));
                assert_int_equal(nono_object_has(f->st, &d), 1);
                uint64_t size;
                assert_ok(nono_object_size(f->st, &d, &size));
                assert_int_equal(size, n);
                void *out;
                size_t len;
                assert_ok(nono_object_get_buf(f->st, &d, &out, &len));
                assert_int_equal(len, n);
                if (n)
                        assert_memory_equal(out, buf, n);
                free(out);
                assert_ok(nono_object_verify(f->st, &d));
                /* same content again: same id */
                assert_ok(nono_object_put_buf(f->st, buf, n, &d2, NONO_ASYNC));
                assert_ok(nono_store_sync(f->st));
                assert_memory_equal(&d, &d2, 32);
                free(buf);
        }
}

static void object_id_definition(void **state)
{
        struct fixture *f = *state;
        size_t n = 2 * NONO_CHUNK_SIZE + 5;
        uint8_t *buf = malloc(n);
        fill_random(buf, n, 7);
        nono_digest d, c[3], want;
        assert_ok(nono_object_put_buf(f->st, buf, n, &d, 0));
        /* id = SHA-256("nono-object-v1" || le64 size || chunk digests) */
        for (int i = 0; i < 3; i++) {
                size_t off = (size_t)i * NONO_CHUNK_SIZE, l = i < 2 ? NONO_CHUNK_SIZE : 5;
                assert_ok(nono_chunk_put(f->st, buf + off, l, &c[i], 0));
        }
        uint8_t msg[14 + 8 + 96];
        memcpy(msg, "nono-object-v1", 14);
        for (int i = 0; i < 8; i++)
                msg[14 + i] = (uint8_t)((uint64_t)n >> (8 * i));
        memcpy(msg + 22, c, 96);
        unsigned int l = 32;
        EVP_Digest(msg, sizeof(msg), want.b, &l, EVP_sha256(), NULL);
        assert_memory_equal(&d, &want, 32);
        /* the same id computed without storing, from memory and from a file (and of empty content) */
        nono_digest b, fdd, e0, e1;
        uint64_t size = 0;
        assert_ok(nono_object_id_buf(buf, n, &b));
        assert_memory_equal(&b, &want, 32);
        FILE *tf = tmpfile();
        assert_non_null(tf);
        assert_int_equal(fwrite(buf, 1, n, tf), n);
        fflush(tf);
        assert_ok(nono_object_id_fd(fileno(tf), &fdd, &size));
        assert_memory_equal(&fdd, &want, 32);
        assert_int_equal(size, n);
        assert_ok(nono_object_put_buf(f->st, "", 0, &e0, 0));
        assert_ok(nono_object_id_buf("", 0, &e1));
        assert_memory_equal(&e0, &e1, 32);
        fclose(tf);
        free(buf);
}

static void chunks(void **state)
{
        struct fixture *f = *state;
        uint8_t buf[NONO_CHUNK_SIZE], out[NONO_CHUNK_SIZE];
        size_t len;
        nono_digest d, want;
        fill_random(buf, sizeof(buf), 3);
        assert_ok(nono_chunk_put(f->st, buf, sizeof(buf), &d, 0));
        unsigned int l = 32;
        EVP_Digest(buf, sizeof(buf), want.b, &l, EVP_sha256(), NULL);
        assert_memory_equal(&d, &want, 32);
        assert_ok(nono_chunk_get(f->st, &d, out, sizeof(out), &len));
        assert_int_equal(len, sizeof(buf));
        assert_memory_equal(out, buf, len);
        assert_int_equal(nono_chunk_get(f->st, &d, out, 10, &len), -ENOBUFS);
        assert_int_equal(nono_chunk_put(f->st, buf, NONO_CHUNK_SIZE + 1, &d, 0), -EINVAL);
        memset(&d, 0xab, sizeof(d));
        assert_int_equal(nono_chunk_get(f->st, &d, out, sizeof(out), &len), -ENOENT);
        assert_non_null(strstr(nono_store_errmsg(), "no chunk"));
}

static void fd_roundtrip(void **state)
{
        struct fixture *f = *state;
        char path[300];
        size_t n = 3 * NONO_CHUNK_SIZE * 16 + 999; /* several streaming items */
        uint8_t *buf = malloc(n);
        fill_random(buf, n, 11);
        snprintf(path, sizeof(path), "%s/in", f->home);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
        assert_int_equal(lseek(fd, 5, SEEK_SET), 5);
        nono_digest d, d2;
        uint64_t size;
        assert_ok(nono_object_put_fd(f->st, fd, &d, &size, 0));
        assert_int_equal(size, n);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 5); /* offset untouched */
        assert_ok(nono_object_put_buf(f->st, buf, n, &d2, 0));
        assert_memory_equal(&d, &d2, 32);
        close(fd);

        snprintf(path, sizeof(path), "%s/out", f->home);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_ok(nono_object_get_fd(f->st, &d, fd));
        assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)n);
        uint8_t *back = malloc(n);
        assert_int_equal(pread(fd, back, n, 0), (ssize_t)n);
        assert_memory_equal(back, buf, n);
        close(fd);
        free(back);
        free(buf);

        /* async from an fd, then sync */
        snprintf(path, sizeof(path), "%s/empty", f->home);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_ok(nono_object_put_fd(f->st, fd, &d, &size, NONO_ASYNC));
        assert_ok(nono_store_sync(f->st));
        assert_int_equal(size, 0);
        assert_int_equal(nono_object_has(f->st, &d), 1);
        close(fd);
}

static void missing_and_digest_text(void **state)
{
        struct fixture *f = *state;
        nono_digest d;
        char hex[65];
        memset(&d, 0x5a, sizeof(d));
        assert_int_equal(nono_object_has(f->st, &d), 0);
        assert_int_equal(nono_object_verify(f->st, &d), -ENOENT);
        void *b;
        size_t l;
        assert_int_equal(nono_object_get_buf(f->st, &d, &b, &l), -ENOENT);
        nono_digest_hex(&d, hex);
        assert_string_equal(hex, "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
        nono_digest back;
        assert_ok(nono_digest_parse(hex, &back));
        assert_memory_equal(&back, &d, 32);
        assert_int_equal(nono_digest_parse("xyz", &back), -EINVAL);
        hex[3] = 'g';
        assert_int_equal(nono_digest_parse(hex, &back), -EINVAL);
}

/* GC frees what no session references, never what one does. */
static void gc_respects_references(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        size_t n = 3 * NONO_CHUNK_SIZE;
        uint8_t *a = malloc(n), *b = malloc(n), c[1000];
        fill_random(a, n, 1);
        fill_random(b, n, 2);
        fill_random(c, sizeof(c), 3);
        nono_digest da, db, dc;
        new_session(f->st, &s);
        assert_ok(nono_object_put_buf(f->st, a, n, &da, 0));
        assert_ok(nono_object_put_buf(f->st, b, n, &db, 0));
        assert_ok(nono_chunk_put(f->st, c, sizeof(c), &dc, 0));
        struct nono_node na = {
            .id = 1, .type = NONO_FT_FILE, .mode = 0644, .size = n, .complete = true, .object = da};
        struct nono_chunkref cr = {.index = 4, .digest = dc, .len = sizeof(c)};
        struct nono_node nc = {.id = 2,
                               .type = NONO_FT_FILE,
                               .mode = 0600,
                               .size = 5 * NONO_CHUNK_SIZE,
                               .chunks = &cr,
                               .n_chunks = 1};
        assert_ok(nono_node_put(f->st, s.id, &na, 0));
        assert_ok(nono_node_put(f->st, s.id, &nc, 0));

        struct nono_gc_stats gs;
        assert_ok(nono_store_gc(f->st, &gs));
        /* b is unreferenced: its object and its 3 chunks go */
        assert_int_equal(gs.objects_freed, 1);
        assert_int_equal(gs.chunks_freed, 3);
        assert_int_equal(gs.bytes_freed, n);
        assert_int_equal(nono_object_has(f->st, &db), 0);
        assert_ok(nono_object_verify(f->st, &da));
        uint8_t out[NONO_CHUNK_SIZE];
        size_t len;
        assert_ok(nono_chunk_get(f->st, &dc, out, sizeof(out), &len));

        /* a grace period protects fresh puts */
        nono_store_set_gc_grace(f->st, 3600);
        assert_ok(nono_object_put_buf(f->st, b, n, &db, 0));
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.objects_freed + gs.chunks_freed, 0);
        assert_int_equal(nono_object_has(f->st, &db), 1);
        nono_store_set_gc_grace(f->st, 0);

        /* deleting the session drops its references */
        assert_ok(nono_session_delete(f->st, s.id));
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.objects_freed, 2);
        assert_int_equal(gs.chunks_freed, 7);
        struct nono_store_stats ss;
        assert_ok(nono_store_stats(f->st, &ss));
        assert_int_equal(ss.chunks, 0);
        assert_int_equal(ss.objects, 0);
        assert_int_equal(ss.chunk_bytes, 0);
        assert_int_equal(ss.sessions, 0);
        assert_true(ss.map_size > 0 && ss.used_bytes > 0);
        free(a);
        free(b);
}

/* An object shared by two sessions survives the deletion of one. */
static void gc_shared(void **state)
{
        struct fixture *f = *state;
        struct nono_session s1, s2;
        uint8_t buf[5000];
        fill_random(buf, sizeof(buf), 9);
        nono_digest d;
        new_session(f->st, &s1);
        new_session(f->st, &s2);
        assert_ok(nono_object_put_buf(f->st, buf, sizeof(buf), &d, 0));
        struct nono_node n = {
            .id = 7, .type = NONO_FT_FILE, .size = sizeof(buf), .complete = true, .object = d};
        assert_ok(nono_node_put(f->st, s1.id, &n, 0));
        assert_ok(nono_node_put(f->st, s2.id, &n, 0));
        assert_ok(nono_session_delete(f->st, s1.id));
        struct nono_gc_stats gs;
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.objects_freed, 0);
        assert_ok(nono_object_verify(f->st, &d));
        assert_ok(nono_session_delete(f->st, s2.id));
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.objects_freed, 1);
        assert_int_equal(gs.chunks_freed, 1);
}

/* A node cannot reference content that is not there. */
static void node_needs_content(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        struct nono_node n = {.id = 1, .type = NONO_FT_FILE, .complete = true};
        memset(&n.object, 1, 32);
        assert_int_equal(nono_node_put(f->st, s.id, &n, 0), -ENOENT);
        assert_non_null(strstr(nono_store_errmsg(), "not in the store"));
}

static int chunk_there(nono_store *st, const nono_digest *d)
{
        uint8_t buf[NONO_CHUNK_SIZE];
        size_t len;
        return nono_chunk_get(st, d, buf, sizeof(buf), &len) == 0;
}

/* gc keeps unreferenced content for the grace period (a put may be waiting for its reference); gc_now, for
 * `nono rollback cleanup` with no session running, frees it at once, and the grace applies again after. */
static void gc_now_skips_grace(void **state)
{
        struct fixture *f = *state;
        uint8_t a[4096], b[4096];
        nono_digest da, db;
        struct nono_gc_stats gs;

        nono_store_set_gc_grace(f->st, 3600);
        fill_random(a, sizeof(a), 41);
        fill_random(b, sizeof(b), 42);
        assert_ok(nono_chunk_put(f->st, a, sizeof(a), &da, 0));
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.chunks_freed, 0);
        assert_int_equal(chunk_there(f->st, &da), 1);
        assert_ok(nono_store_gc_now(f->st, &gs));
        assert_int_equal(gs.chunks_freed, 1);
        assert_int_equal(chunk_there(f->st, &da), 0);
        assert_ok(nono_chunk_put(f->st, b, sizeof(b), &db, 0));
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.chunks_freed, 0);
        assert_int_equal(chunk_there(f->st, &db), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(put_get_sizes, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(object_id_definition, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(chunks, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(fd_roundtrip, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(missing_and_digest_text, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(gc_respects_references, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(gc_shared, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(node_needs_content, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(gc_now_skips_grace, fx_setup, fx_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
