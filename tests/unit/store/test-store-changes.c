/* SPDX-License-Identifier: Apache-2.0 */
/* test-store-changes.c - node pre-images and path records. */
#include "helpers.h"

static void node_roundtrip(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        uint8_t data[100];
        fill_random(data, sizeof(data), 1);
        nono_digest obj;
        assert_ok(nono_object_put_buf(f->st, data, sizeof(data), &obj, 0));
        struct nono_xattr xa[2] = {{"user.a", "1", 1}, {"security.b", "\0\1\2", 3}};
        char *ents[] = {"x", "y z", NULL};
        struct nono_node n = {.id = 42,
                              .type = NONO_FT_FILE,
                              .mode = 04755,
                              .uid = 1000,
                              .gid = 100,
                              .atime_ns = -5,
                              .mtime_ns = 1700000000123456789,
                              .nlink = 2,
                              .size = 100,
                              .xattrs = xa,
                              .n_xattrs = 2,
                              .complete = true,
                              .object = obj};
        assert_ok(nono_node_put(f->st, s.id, &n, 0));
        assert_int_equal(nono_node_put(f->st, s.id, &n, 0), -EEXIST);
        struct nono_node g;
        assert_ok(nono_node_get(f->st, s.id, 42, &g));
        assert_int_equal(g.id, 42);
        assert_int_equal(g.type, NONO_FT_FILE);
        assert_int_equal(g.mode, 04755);
        assert_int_equal(g.uid, 1000);
        assert_int_equal(g.gid, 100);
        assert_int_equal(g.atime_ns, -5);
        assert_int_equal(g.mtime_ns, 1700000000123456789);
        assert_int_equal(g.nlink, 2);
        assert_int_equal(g.size, 100);
        assert_true(g.complete);
        assert_memory_equal(&g.object, &obj, 32);
        assert_int_equal(g.n_xattrs, 2);
        assert_string_equal(g.xattrs[1].name, "security.b");
        assert_int_equal(g.xattrs[1].len, 3);
        assert_memory_equal(g.xattrs[1].value, "\0\1\2", 3);
        assert_null(g.link_target);
        assert_null(g.entries);
        nono_node_clear(&g);

        struct nono_node d = {.id = 1, .type = NONO_FT_DIR, .mode = 0700, .entries = ents};
        struct nono_node l = {.id = 2, .type = NONO_FT_SYMLINK, .mode = 0777, .link_target = "../t"};
        assert_ok(nono_node_put(f->st, s.id, &d, NONO_ASYNC));
        assert_ok(nono_node_put(f->st, s.id, &l, NONO_ASYNC));
        assert_ok(nono_store_sync(f->st));
        assert_ok(nono_node_get(f->st, s.id, 1, &g));
        assert_string_equal(g.entries[1], "y z");
        assert_null(g.entries[2]);
        nono_node_clear(&g);
        assert_ok(nono_node_get(f->st, s.id, 2, &g));
        assert_string_equal(g.link_target, "../t");
        nono_node_clear(&g);
        assert_int_equal(nono_node_get(f->st, s.id, 3, &g), -ENOENT);
        assert_int_equal(nono_node_put(f->st, "0000000000000", &l, 0), -ENOENT);
}

/* Block-level pre-images: chunks captured over time, first capture wins, then the whole object. */
static void node_chunks(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        size_t size = 10 * NONO_CHUNK_SIZE + 7;
        uint8_t *file = malloc(size);
        fill_random(file, size, 5);
        struct nono_chunkref c[3];
        const uint64_t idx[3] = {9, 2, 10};
        for (int i = 0; i < 3; i++) {
                size_t off = idx[i] * NONO_CHUNK_SIZE,
                       l = size - off < NONO_CHUNK_SIZE ? size - off : NONO_CHUNK_SIZE;
                c[i].index = idx[i];
                c[i].len = (uint32_t)l;
                assert_ok(nono_chunk_put(f->st, file + off, l, &c[i].digest, 0));
        }
        struct nono_node n = {.id = 5, .type = NONO_FT_FILE, .size = size, .chunks = &c[0], .n_chunks = 1};
        assert_ok(nono_node_put(f->st, s.id, &n, 0));
        assert_ok(nono_node_add_chunks(f->st, s.id, 5, &c[1], 2, 0));
        /* a later capture of chunk 2 (different content) does not replace the first */
        struct nono_chunkref later = c[1];
        assert_ok(nono_chunk_put(f->st, "changed", 7, &later.digest, 0));
        later.len = 7;
        assert_ok(nono_node_add_chunks(f->st, s.id, 5, &later, 1, 0));
        struct nono_node g;
        assert_ok(nono_node_get(f->st, s.id, 5, &g));
        assert_false(g.complete);
        assert_int_equal(g.size, size);
        assert_int_equal(g.n_chunks, 3);
        assert_int_equal(g.chunks[0].index, 2);
        assert_int_equal(g.chunks[1].index, 9);
        assert_int_equal(g.chunks[2].index, 10);
        assert_int_equal(g.chunks[2].len, 7);
        assert_memory_equal(&g.chunks[0].digest, &c[1].digest, 32);
        nono_node_clear(&g);
        /* add_chunks to a node that does not exist */
        assert_int_equal(nono_node_add_chunks(f->st, s.id, 6, c, 1, 0), -ENOENT);

        /* whole object: shares the captured chunks (aligned chunking) */
        nono_digest obj;
        assert_ok(nono_object_put_buf(f->st, file, size, &obj, 0));
        struct nono_store_stats before, after;
        assert_ok(nono_store_stats(f->st, &before));
        assert_int_equal(before.chunks, 11 + 1); /* 11 chunks of the file + "changed" */
        assert_ok(nono_node_set_object(f->st, s.id, 5, &obj, 0));
        assert_ok(nono_node_get(f->st, s.id, 5, &g));
        assert_true(g.complete);
        assert_memory_equal(&g.object, &obj, 32);
        assert_int_equal(g.n_chunks, 0);
        nono_node_clear(&g);
        struct nono_gc_stats gs;
        assert_ok(nono_store_gc(f->st, &gs));
        assert_int_equal(gs.chunks_freed, 1); /* only "changed" */
        assert_ok(nono_store_stats(f->st, &after));
        assert_int_equal(after.chunks, 11);
        assert_ok(nono_object_verify(f->st, &obj));
        free(file);
}

static void paths(void **state)
{
        struct fixture *f = *state;
        struct nono_session s;
        new_session(f->st, &s);
        char longp[4000];
        memset(longp, 'a', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = 0;
        char longq[4000];
        memcpy(longq, longp, sizeof(longq));
        longq[3000] = 'b';
        assert_ok(nono_path_put_pre(f->st, s.id, 1, "src/main.c", 3, 0));
        assert_ok(nono_path_put_pre(f->st, s.id, 1, "src/main.c", 9, 0)); /* first change wins */
        assert_ok(nono_path_put_pre(f->st, s.id, 0, "", 1, NONO_ASYNC));
        assert_ok(nono_path_put_pre(f->st, s.id, 0, longp, 4, NONO_ASYNC));
        assert_ok(nono_path_put_pre(f->st, s.id, 0, longq, 5, NONO_ASYNC));
        assert_ok(nono_path_put_pre(f->st, s.id, 0, "new", 0, NONO_ASYNC));
        assert_ok(nono_store_sync(f->st));
        assert_int_equal(nono_path_put_pre(f->st, s.id, 0, "/abs", 0, 0), -EINVAL);

        struct nono_path_rec post = {.root = 1,
                                     .path = "src/main.c",
                                     .post_type = NONO_FT_FILE,
                                     .post_mode = 0644,
                                     .post_size = 10,
                                     .post_node = 3,
                                     .post_has_digest = true,
                                     .post_mtime_ns = 77};
        memset(&post.post_digest, 9, 32);
        assert_ok(nono_path_put_post(f->st, s.id, &post, 0));
        struct nono_path_rec r;
        assert_ok(nono_path_get(f->st, s.id, 1, "src/main.c", &r));
        assert_int_equal(r.pre_node, 3);
        assert_true(r.has_post);
        assert_int_equal(r.post_type, NONO_FT_FILE);
        assert_int_equal(r.post_mode, 0644);
        assert_int_equal(r.post_size, 10);
        assert_true(r.post_has_digest);
        assert_memory_equal(&r.post_digest, &post.post_digest, 32);
        assert_int_equal(r.post_mtime_ns, 77);
        assert_null(r.post_link_target);
        nono_path_rec_clear(&r);
        assert_ok(nono_path_get(f->st, s.id, 0, longq, &r));
        assert_int_equal(r.pre_node, 5);
        assert_string_equal(r.path, longq);
        nono_path_rec_clear(&r);
        assert_int_equal(nono_path_get(f->st, s.id, 2, "x", &r), -ENOENT);

        struct nono_path_rec *v;
        size_t n;
        assert_ok(nono_path_list(f->st, s.id, &v, &n));
        assert_int_equal(n, 5);
        assert_string_equal(v[0].path, "");
        assert_string_equal(v[1].path, longp);
        assert_string_equal(v[2].path, longq);
        assert_string_equal(v[3].path, "new");
        assert_int_equal(v[3].pre_node, 0);
        assert_int_equal(v[4].root, 1);
        assert_false(v[0].has_post);
        nono_path_list_free(v, n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(node_roundtrip, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(node_chunks, fx_setup, fx_teardown),
            cmocka_unit_test_setup_teardown(paths, fx_setup, fx_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
