/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-store-env.c - finding, creating and opening the store, and every kind of bad input: newer or unknown
 * schema, a corrupt or foreign data file, a read-only directory, wrong permissions or owner, a full disk,
 * and a map that must grow.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "helpers.h"

struct home {
        char dir[256], store[300], data[320], lock[320];
};

static void home_new(struct home *h)
{
        make_home(h->dir, sizeof(h->dir));
        snprintf(h->store, sizeof(h->store), "%s/store", h->dir);
        snprintf(h->data, sizeof(h->data), "%s/data.mdb", h->store);
        snprintf(h->lock, sizeof(h->lock), "%s/lock.mdb", h->store);
}

static void home_init(struct home *h)
{
        nono_store *st;
        home_new(h);
        assert_ok(nono_store_open(h->dir, 0, &st));
        nono_store_close(st);
}

static void expect_open_error(const char *home, int err, const char *needle, const char *fix)
{
        nono_store *st = NULL;
        int r = nono_store_open(home, 0, &st);
        if (r != err)
                fail_msg("open gave %d (%s), want %d; message: %s", r, strerror(-r), err,
                         nono_store_errmsg());
        assert_null(st);
        if (!strstr(nono_store_errmsg(), needle) || (fix && !strstr(nono_store_errmsg(), fix)))
                fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", nono_store_errmsg(), needle, fix ? fix : "");
}

static void home_resolution(void **state)
{
        (void)state;
        char buf[512];
        char *saved[3];
        const char *names[3] = {"NONO_HOME", "XDG_DATA_HOME", "HOME"};
        for (int i = 0; i < 3; i++)
                saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
        setenv("NONO_HOME", "/x/nono", 1);
        setenv("XDG_DATA_HOME", "/data", 1);
        setenv("HOME", "/home/u", 1);
        assert_ok(nono_store_home(buf, sizeof(buf)));
        assert_string_equal(buf, "/x/nono");
        unsetenv("NONO_HOME");
        assert_ok(nono_store_home(buf, sizeof(buf)));
        assert_string_equal(buf, "/data/nono");
        unsetenv("XDG_DATA_HOME");
        assert_ok(nono_store_home(buf, sizeof(buf)));
        assert_string_equal(buf, "/home/u/.local/share/nono");
        assert_int_equal(nono_store_home(buf, 5), -ENAMETOOLONG);
        for (int i = 0; i < 3; i++) {
                if (saved[i])
                        setenv(names[i], saved[i], 1);
                else
                        unsetenv(names[i]);
                free(saved[i]);
        }
}

static void creates_private_files(void **state)
{
        (void)state;
        struct home h;
        struct stat st;
        home_new(&h);
        char nested[400];
        snprintf(nested, sizeof(nested), "%s/a/b", h.dir);
        mode_t old = umask(0);
        nono_store *s;
        assert_ok(nono_store_open(nested, 0, &s));
        umask(old);
        nono_store_close(s);
        char p[500];
        snprintf(p, sizeof(p), "%s/store", nested);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        snprintf(p, sizeof(p), "%s/store/data.mdb", nested);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        snprintf(p, sizeof(p), "%s/store/lock.mdb", nested);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* and it reopens */
        assert_ok(nono_store_open(nested, 0, &s));
        nono_store_close(s);
        rm_rf(h.dir);
}

static void set_schema(const struct home *h, uint32_t ver, bool drop_magic)
{
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        uint8_t b[4] = {(uint8_t)ver, (uint8_t)(ver >> 8), (uint8_t)(ver >> 16), (uint8_t)(ver >> 24)};
        MDB_val k = {6, "schema"}, v = {4, b}, mk = {5, "magic"};
        assert_int_equal(mdb_env_create(&env), 0);
        mdb_env_set_maxdbs(env, 32);
        assert_int_equal(mdb_env_open(env, h->store, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        if (drop_magic)
                assert_int_equal(mdb_del(txn, dbi, &mk, NULL), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
}

static void newer_schema(void **state)
{
        (void)state;
        struct home h;
        home_init(&h);
        set_schema(&h, NONO_STORE_SCHEMA_VERSION + 1, false);
        expect_open_error(h.dir, -EPROTO, "written by a newer nono", "upgrade nono");
        set_schema(&h, 0, false);
        expect_open_error(h.dir, -EPROTO, "unknown schema 0", "move it aside");
        set_schema(&h, NONO_STORE_SCHEMA_VERSION, true);
        expect_open_error(h.dir, -EPROTO, "not a nono store", "NONO_HOME");
        rm_rf(h.dir);
}

static void foreign_lmdb(void **state)
{
        (void)state;
        struct home h;
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_val k = {3, "key"}, v = {5, "value"};
        home_new(&h);
        assert_int_equal(mkdir(h.store, 0700), 0);
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_open(env, h.store, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);
        expect_open_error(h.dir, -EPROTO, "not a nono store", "move it aside");
        rm_rf(h.dir);
}

static void write_file(const char *path, const void *buf, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, len), (ssize_t)len);
        close(fd);
}

static void corrupt_data_file(void **state)
{
        (void)state;
        struct home h;
        static uint8_t junk[64 * 1024];
        home_init(&h);
        fill_random(junk, sizeof(junk), 42);
        unlink(h.lock);
        write_file(h.data, junk, sizeof(junk));
        expect_open_error(h.dir, -EBADMSG, "is not an LMDB database", "mv ");
        write_file(h.data, "hello", 5); /* truncated */
        expect_open_error(h.dir, -EBADMSG, "is not an LMDB database", "mv ");
        rm_rf(h.dir);
}

static void wrong_permissions(void **state)
{
        (void)state;
        struct home h;
        home_init(&h);
        assert_int_equal(chmod(h.store, 0755), 0);
        expect_open_error(h.dir, -EPERM, "has mode 0755", "chmod 700");
        assert_int_equal(chmod(h.store, 0700), 0);
        assert_int_equal(chmod(h.data, 0644), 0);
        expect_open_error(h.dir, -EPERM, "has mode 0644", "chmod 600");
        assert_int_equal(chmod(h.data, 0600), 0);
        assert_int_equal(chmod(h.lock, 0660), 0);
        expect_open_error(h.dir, -EPERM, "lock.mdb has mode 0660", "chmod 600");
        assert_int_equal(chmod(h.lock, 0600), 0);
        nono_store *s;
        assert_ok(nono_store_open(h.dir, 0, &s));
        nono_store_close(s);
        /* a symlink in place of the store directory is refused */
        char moved[400];
        snprintf(moved, sizeof(moved), "%s/real", h.dir);
        assert_int_equal(rename(h.store, moved), 0);
        assert_int_equal(symlink(moved, h.store), 0);
        expect_open_error(h.dir, -EPERM, "not a directory", "move it aside");
        rm_rf(h.dir);
}

/* Runs fn in a child with its own mount namespace (and a user namespace when not root); returns its
 * exit status, or 77 when namespaces are unavailable. root_inside: map the caller to uid 0 in the user
 * namespace (so files of the real root show as the overflow uid 65534). */
static int in_mount_ns_as(void (*fn)(const struct home *), const struct home *h, bool root_inside)
{
        pid_t pid = fork();
        if (pid == 0) {
                uid_t uid = geteuid();
                gid_t gid = getegid();
                if (uid != 0) {
                        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                                _exit(77);
                        char m[64];
                        int fd;
                        snprintf(m, sizeof(m), "%u %u 1", root_inside ? 0 : uid, uid);
                        if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0 || write(fd, m, strlen(m)) < 0)
                                _exit(77);
                        close(fd);
                        if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
                                if (write(fd, "deny", 4) < 0) {
                                }
                                close(fd);
                        }
                        snprintf(m, sizeof(m), "%u %u 1", root_inside ? 0 : gid, gid);
                        if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0 || write(fd, m, strlen(m)) < 0)
                                _exit(77);
                        close(fd);
                } else if (unshare(CLONE_NEWNS) < 0) {
                        _exit(77);
                }
                if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(77);
                fn(h);
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int in_mount_ns(void (*fn)(const struct home *), const struct home *h)
{
        return in_mount_ns_as(fn, h, false);
}

#define CHILD_CHECK(c)                                                                                       \
        do {                                                                                                 \
                if (!(c)) {                                                                                  \
                        fprintf(stderr, "%s:%d: %s failed; store says: %s\n", __FILE__, __LINE__, #c,        \
                                nono_store_errmsg());                                                        \
                        _exit(1);                                                                            \
                }                                                                                            \
        } while (0)

/* Unprivileged: in a user namespace where we are uid 0, a directory of the real root (shown as the
 * overflow uid 65534) is bind-mounted as the store. */
static void foreign_owner_child(const struct home *h)
{
        nono_store *s = NULL;
        if (mount("/usr", h->store, NULL, MS_BIND, NULL) < 0)
                _exit(77);
        int r = nono_store_open(h->dir, 0, &s);
        CHILD_CHECK(r == -EPERM && strstr(nono_store_errmsg(), "owned by uid 65534, not by you (uid 0)") &&
                    strstr(nono_store_errmsg(), "NONO_HOME"));
}

static void wrong_owner(void **state)
{
        (void)state;
        struct home h;
        home_init(&h);
        if (geteuid() != 0) {
                int rc = in_mount_ns_as(foreign_owner_child, &h, true);
                rm_rf(h.dir);
                if (rc == 77) {
                        fprintf(stderr, "skip: no user namespaces to show a file of another owner\n");
                        skip();
                }
                assert_int_equal(rc, 0);
                return;
        }
        assert_int_equal(chown(h.data, 65534, 65534), 0);
        expect_open_error(h.dir, -EPERM, "owned by uid 65534", "chown");
        assert_int_equal(chown(h.data, 0, 0), 0);
        assert_int_equal(chown(h.store, 65534, 65534), 0);
        expect_open_error(h.dir, -EPERM, "owned by uid 65534", "NONO_HOME");
        rm_rf(h.dir);
}

static void readonly_child(const struct home *h)
{
        nono_store *s = NULL;
        if (mount(h->store, h->store, NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, h->store, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
                _exit(77);
        int r = nono_store_open(h->dir, 0, &s);
        CHILD_CHECK(r == -EROFS && strstr(nono_store_errmsg(), "read-only filesystem") &&
                    strstr(nono_store_errmsg(), "remount"));
}

static void readonly_directory(void **state)
{
        (void)state;
        struct home h;
        home_init(&h);
        /* a directory without write permission (root ignores modes: that case is the mount below) */
        if (geteuid() != 0) {
                assert_int_equal(chmod(h.store, 0500), 0);
                expect_open_error(h.dir, -EACCES, "is not writable", "chmod u+w");
                assert_int_equal(chmod(h.store, 0700), 0);
        }
        /* a read-only filesystem */
        int rc = in_mount_ns(readonly_child, &h);
        if (rc == 77 && geteuid() != 0) {
                rm_rf(h.dir);
                fprintf(stderr, "skip: no user namespaces for a read-only mount (the chmod case ran)\n");
                skip();
        }
        assert_int_equal(rc, 0);
        rm_rf(h.dir);
}

static void enospc_child(const struct home *h)
{
        nono_store *s = NULL;
        static uint8_t buf[256 * 1024];
        nono_digest d, first;
        if (mount("tmpfs", h->dir, "tmpfs", 0, "size=2m,mode=0700") < 0)
                _exit(77);
        CHILD_CHECK(nono_store_open(h->dir, 0, &s) == 0);
        fill_random(buf, sizeof(buf), 0);
        CHILD_CHECK(nono_object_put_buf(s, buf, sizeof(buf), &first, 0) == 0);
        int r = 0;
        for (unsigned i = 1; i < 64 && r == 0; i++) {
                fill_random(buf, sizeof(buf), i);
                r = nono_object_put_buf(s, buf, sizeof(buf), &d, 0);
        }
        CHILD_CHECK(r == -ENOSPC);
        CHILD_CHECK(strstr(nono_store_errmsg(), "disk is full") &&
                    strstr(nono_store_errmsg(), "free some space"));
        /* what was durable is still there, and the store still works for reads */
        CHILD_CHECK(nono_object_verify(s, &first) == 0);
        nono_store_close(s);
        CHILD_CHECK(nono_store_open(h->dir, 0, &s) == 0);
        CHILD_CHECK(nono_object_verify(s, &first) == 0);
        nono_store_close(s);
}

static void disk_full(void **state)
{
        (void)state;
        struct home h;
        home_new(&h);
        int rc = in_mount_ns(enospc_child, &h);
        rm_rf(h.dir);
        if (rc == 77) {
                fprintf(stderr, "skip: cannot mount a small tmpfs here (no user namespaces)\n");
                skip();
        }
        assert_int_equal(rc, 0);
}

static void map_grows(void **state)
{
        (void)state;
        struct home h;
        nono_store *s;
        struct nono_store_stats st;
        home_new(&h);
        setenv("NONO_STORE_MAP_SIZE", "262144", 1);
        assert_ok(nono_store_open(h.dir, 0, &s));
        unsetenv("NONO_STORE_MAP_SIZE");
        assert_ok(nono_store_stats(s, &st));
        assert_int_equal(st.map_size, 262144);
        size_t n = 3 << 20;
        uint8_t *buf = malloc(n);
        nono_digest d[4];
        for (int i = 0; i < 4; i++) {
                fill_random(buf, n, (unsigned)i + 100);
                assert_ok(nono_object_put_buf(s, buf, n, &d[i], i % 2 ? NONO_ASYNC : 0));
        }
        assert_ok(nono_store_sync(s));
        assert_ok(nono_store_stats(s, &st));
        assert_true(st.map_size >= 12u << 20);
        for (int i = 0; i < 4; i++)
                assert_ok(nono_object_verify(s, &d[i]));
        nono_store_close(s);
        free(buf);
        rm_rf(h.dir);
}

static void read_only_open(void **state)
{
        (void)state;
        struct home h;
        nono_store *s;
        nono_digest d;
        home_new(&h);
        assert_int_equal(nono_store_open(h.dir, NONO_STORE_RDONLY, &s), -ENOENT);
        assert_non_null(strstr(nono_store_errmsg(), "no store at"));
        assert_ok(nono_store_open(h.dir, 0, &s));
        assert_ok(nono_object_put_buf(s, "abc", 3, &d, 0));
        nono_store_close(s);
        assert_ok(nono_store_open(h.dir, NONO_STORE_RDONLY, &s));
        assert_int_equal(nono_object_has(s, &d), 1);
        assert_int_equal(nono_object_put_buf(s, "abd", 3, &d, 0), -EROFS);
        assert_non_null(strstr(nono_store_errmsg(), "opened read-only"));
        struct nono_session ses = {0};
        assert_int_equal(nono_session_create(s, &ses), -EROFS);
        assert_ok(nono_store_sync(s));
        nono_store_close(s);
        rm_rf(h.dir);
}

/* nono_store_defer_sync: sync calls still return once committed (readable at once), a sync with nothing
 * queued returns at once, and what was written is there after the deferral ends and the store reopens. */
static void deferred_sync(void **state)
{
        (void)state;
        struct home h;
        nono_store *s;
        struct nono_session ses;
        struct nono_event_counts c;
        nono_digest d;
        home_new(&h);
        assert_ok(nono_store_open(h.dir, 0, &s));
        new_session(s, &ses);
        nono_store_defer_sync(s, true);
        for (int i = 0; i < 3; i++) {
                struct nono_event ev = {.type = NONO_EV_FILE, .op = NONO_OP_OPEN, .path = "f"};
                assert_ok(nono_events_append(s, ses.id, &ev, 1, 0));
                assert_ok(nono_events_count(s, ses.id, &c));
                assert_int_equal(c.by_type[NONO_EV_FILE], (uint64_t)i + 1);
        }
        assert_ok(nono_object_put_buf(s, "deferred", 8, &d, NONO_ASYNC));
        assert_ok(nono_store_sync(s));
        assert_int_equal(nono_object_has(s, &d), 1);
        assert_ok(nono_store_sync(s)); /* nothing queued */
        nono_store_defer_sync(s, false);
        assert_ok(nono_store_sync(s));
        nono_store_close(s);
        assert_ok(nono_store_open(h.dir, NONO_STORE_RDONLY, &s));
        assert_int_equal(nono_object_has(s, &d), 1);
        assert_ok(nono_events_count(s, ses.id, &c));
        assert_int_equal(c.by_type[NONO_EV_FILE], 3);
        assert_ok(nono_events_verify(s, ses.id, NULL, NULL));
        nono_store_close(s);
        rm_rf(h.dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(home_resolution),   cmocka_unit_test(creates_private_files),
            cmocka_unit_test(newer_schema),      cmocka_unit_test(foreign_lmdb),
            cmocka_unit_test(corrupt_data_file), cmocka_unit_test(wrong_permissions),
            cmocka_unit_test(wrong_owner),       cmocka_unit_test(readonly_directory),
            cmocka_unit_test(disk_full),         cmocka_unit_test(map_grows),
            cmocka_unit_test(read_only_open),    cmocka_unit_test(deferred_sync),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
