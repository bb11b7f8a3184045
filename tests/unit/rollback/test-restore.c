/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-restore.c - the rollback engine against the real store and a real tree: every test builds a tree,
 * takes its canonical dump, changes it while recording pre-images the way fs/ does (model.c), then
 * restores and compares the dump byte for byte (content, type, mode, times, xattrs, link targets, link
 * counts and hard-link groups).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher/restore.h"
#include "model.h"

struct fx {
        char *home, *root, *outside;
        nono_store *st;
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof *f);

        f->home = scratch_dir("home");
        f->root = scratch_dir("root");
        f->outside = scratch_dir("outside");
        assert_non_null(f->home);
        assert_int_equal(nono_store_open(f->home, 0, &f->st), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        nono_store_close(f->st);
        rm_rf(f->home);
        rm_rf(f->root);
        rm_rf(f->outside);
        free(f->home);
        free(f->root);
        free(f->outside);
        free(f);
        return 0;
}

static void path_of(struct fx *f, const char *rel, char *buf)
{
        snprintf(buf, 4096, "%s/%s", f->root, rel);
}

static void write_file(struct fx *f, const char *rel, const char *data, size_t len, int flags)
{
        char p[4096];
        int fd;

        path_of(f, rel, p);
        fd = open(p, O_WRONLY | O_CREAT | flags, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        close(fd);
}

static void mkdir_rel(struct fx *f, const char *rel, mode_t mode)
{
        char p[4096];
        path_of(f, rel, p);
        assert_int_equal(mkdir(p, mode), 0);
}

static void set_mtime(struct fx *f, const char *rel, long sec)
{
        char p[4096];
        struct timespec ts[2] = {{sec, 123}, {sec, 456789}};
        path_of(f, rel, p);
        utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
}

/* A small tree with every type, fixed times (so a restore that forgets times is caught). */
static void base_tree(struct fx *f)
{
        char p[4096], q[4096];
        static char big[5 * 65536 + 100];

        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (char)(i * 7 + i / 65536);
        write_file(f, "a.txt", "alpha\nbeta\n", 11, O_TRUNC);
        write_file(f, "b.txt", "bravo\n", 6, O_TRUNC);
        mkdir_rel(f, "dir", 0755);
        write_file(f, "dir/c.txt", "charlie\n", 8, O_TRUNC);
        mkdir_rel(f, "dir/sub", 0750);
        write_file(f, "dir/sub/d.bin", "\0\1\2\3", 4, O_TRUNC);
        write_file(f, "big.bin", big, sizeof big, O_TRUNC);
        path_of(f, "link", p);
        assert_int_equal(symlink("a.txt", p), 0);
        path_of(f, "fifo", p);
        assert_int_equal(mkfifo(p, 0640), 0);
        path_of(f, "h1", p);
        write_file(f, "h1", "hard\n", 5, O_TRUNC);
        path_of(f, "h2", q);
        assert_int_equal(link(p, q), 0);
        path_of(f, "a.txt", p);
        setxattr(p, "user.tag", "v1", 2, 0); /* tmpfs/ext4 both take user xattrs; ignored if not */
        const char *all[] = {"a.txt", "b.txt", "dir/c.txt", "dir/sub/d.bin", "big.bin",
                             "link",  "fifo",  "h1",        "dir/sub",       "dir"};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
                set_mtime(f, all[i], 1600000000 + (long)i);
        set_mtime(f, ".", 1600000100);
}

static int restore(struct fx *f, const char *sid, bool force, bool dry, const char **paths, size_t n,
                   struct nono_restore_report *rep)
{
        struct nono_restore_report tmp;
        struct nono_restore_opts o = {
            .paths = paths, .n_paths = n, .force = force, .dry_run = dry, .out = stderr};
        int r = nono_restore(f->st, sid, &o, rep ? rep : &tmp);
        if (r < 0 && r != -ESTALE)
                fprintf(stderr, "restore: %s\n", nono_restore_errmsg());
        return r;
}

static void assert_dump(const char *want, const char *got)
{
        if (strcmp(want, got)) {
                dump_diff(want, got);
                fail_msg("tree differs from the expected one");
        }
}

/* the operations every test file uses, each recorded before it happens */
static void op_write(struct model *m, struct fx *f, const char *rel, const char *data, int flags)
{
        model_touch(m, rel);
        write_file(f, rel, data, strlen(data), flags);
}

static void test_basic_operations(void **state)
{
        struct fx *f = *state;
        struct model m;
        char p[4096], q[4096], *before, *after;

        base_tree(f);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        op_write(&m, f, "a.txt", "changed\n", O_TRUNC);
        op_write(&m, f, "dir/c.txt", "more\n", O_APPEND);
        op_write(&m, f, "new.txt", "new\n", O_TRUNC);
        model_touch(&m, "b.txt");
        path_of(f, "b.txt", p);
        unlink(p);
        model_touch(&m, "dir/sub/d.bin");
        path_of(f, "dir/sub/d.bin", p);
        unlink(p);
        model_touch(&m, "dir/sub");
        path_of(f, "dir/sub", p);
        rmdir(p);
        model_touch(&m, "newdir");
        mkdir_rel(f, "newdir", 0700);
        op_write(&m, f, "newdir/x", "x", O_TRUNC);
        model_touch(&m, "link");
        path_of(f, "link", p);
        unlink(p);
        symlink("/etc/passwd", p);
        model_touch(&m, "fifo");
        path_of(f, "fifo", p);
        chmod(p, 0600);
        model_touch(&m, "a.txt");
        path_of(f, "a.txt", p);
        setxattr(p, "user.tag", "v2", 2, 0);
        setxattr(p, "user.more", "m", 1, 0);
        model_touch(&m, "dir");
        path_of(f, "dir", p);
        chmod(p, 0700);
        model_touch(&m, "h1");
        write_file(f, "h1", "HARD\n", 5, O_TRUNC); /* through one name of two */
        model_touch(&m, "dir/c.txt");
        path_of(f, "dir/c.txt", q);
        truncate(q, 2);
        model_end(&m, false);

        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, NULL), 0);
        after = tree_dump(f->root, true);
        assert_dump(before, after);
        free(after);
        free(before);
        model_free(&m);
}

static void test_renames_and_exchange(void **state)
{
        struct fx *f = *state;
        struct model m;
        char p[4096], q[4096], *before, *after;
        struct stat st0, st1;

        base_tree(f);
        path_of(f, "dir/c.txt", p);
        stat(p, &st0);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        /* a directory renamed with an untouched child: the child must come back as the same inode */
        model_touch(&m, "dir");
        model_touch(&m, "moved");
        path_of(f, "dir", p);
        path_of(f, "moved", q);
        assert_int_equal(rename(p, q), 0);
        /* rename over an existing file */
        model_touch(&m, "a.txt");
        model_touch(&m, "b.txt");
        path_of(f, "a.txt", p);
        path_of(f, "b.txt", q);
        assert_int_equal(rename(p, q), 0);
        /* exchange a file and a symlink */
        model_touch(&m, "h1");
        model_touch(&m, "link");
        path_of(f, "h1", p);
        path_of(f, "link", q);
        assert_int_equal(renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_EXCHANGE), 0);
        /* a new hard link and a new directory */
        model_touch(&m, "h3");
        path_of(f, "h2", p);
        path_of(f, "h3", q);
        assert_int_equal(link(p, q), 0);
        model_end(&m, false);

        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, NULL), 0);
        after = tree_dump(f->root, true);
        assert_dump(before, after);
        path_of(f, "dir/c.txt", p);
        stat(p, &st1);
        assert_true(st0.st_ino == st1.st_ino);
        free(after);
        free(before);
        model_free(&m);
}

static void test_block_level(void **state)
{
        struct fx *f = *state;
        struct model m;
        char p[4096], *before, *after;
        int fd;

        base_tree(f);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        path_of(f, "big.bin", p);
        model_touch(&m, "");
        model_touch_blocks(&m, "big.bin", 2 * 65536 + 10, 5);
        fd = open(p, O_WRONLY);
        assert_int_equal(pwrite(fd, "XXXXX", 5, 2 * 65536 + 10), 5);
        model_touch_blocks(&m, "big.bin", 4 * 65536, 65536 + 100); /* truncation loses the tail */
        assert_int_equal(ftruncate(fd, 4 * 65536 + 3), 0);
        assert_int_equal(pwrite(fd, "append", 6, 6 * 65536), 6);
        close(fd);
        model_end(&m, false);
        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, NULL), 0);
        after = tree_dump(f->root, true);
        assert_dump(before, after);
        free(after);
        free(before);
        model_free(&m);
}

static void test_conflict_dry_run_force(void **state)
{
        struct fx *f = *state;
        struct model m;
        struct nono_restore_report rep;
        char *before, *post, *now;

        base_tree(f);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        op_write(&m, f, "a.txt", "agent\n", O_TRUNC);
        op_write(&m, f, "b.txt", "agent\n", O_TRUNC);
        model_end(&m, false);
        write_file(f, "a.txt", "user kept working\n", 18, O_TRUNC);
        post = tree_dump(f->root, true);

        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, &rep), -ESTALE);
        assert_int_equal(rep.conflicts, 1);
        now = tree_dump(f->root, true);
        assert_dump(post, now);
        free(now);
        assert_int_equal(restore(f, m.sid, true, true, NULL, 0, NULL), 0); /* dry run changes nothing */
        now = tree_dump(f->root, true);
        assert_dump(post, now);
        free(now);
        /* a subset without the conflict goes through */
        char bp[4096];
        path_of(f, "b.txt", bp);
        const char *paths[] = {bp};
        assert_int_equal(restore(f, m.sid, false, false, paths, 1, NULL), 0);
        assert_int_equal(restore(f, m.sid, true, false, NULL, 0, NULL), 0);
        now = tree_dump(f->root, true);
        assert_dump(before, now);
        free(now);
        free(post);
        free(before);
        model_free(&m);
}

static void test_restore_of_restore(void **state)
{
        struct fx *f = *state;
        struct model m;
        struct nono_restore_report rep;
        char p[4096], q[4096], *before, *post, *now;
        struct nono_session s = {0};

        base_tree(f);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        op_write(&m, f, "a.txt", "agent\n", O_TRUNC);
        model_touch(&m, "dir");
        model_touch(&m, "moved");
        path_of(f, "dir", p);
        path_of(f, "moved", q);
        rename(p, q);
        model_touch(&m, "nd");
        mkdir_rel(f, "nd", 0755);
        op_write(&m, f, "nd/file", "in new dir\n", O_TRUNC);
        model_end(&m, false);
        post = tree_dump(f->root, true);

        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, &rep), 0);
        now = tree_dump(f->root, true);
        assert_dump(before, now);
        free(now);
        assert_int_equal(nono_session_get(f->st, m.sid, &s), 0);
        assert_int_equal(s.state, NONO_SESSION_RESTORED);
        nono_session_clear(&s);
        assert_int_equal(nono_session_get(f->st, rep.restore_id, &s), 0);
        assert_int_equal(s.kind, NONO_SESSION_RESTORE);
        assert_string_equal(s.parent, m.sid);
        nono_session_clear(&s);

        char rid[NONO_SESSION_ID_LEN + 1];
        memcpy(rid, rep.restore_id, sizeof rid);
        assert_int_equal(restore(f, rid, false, false, NULL, 0, NULL), 0);
        now = tree_dump(f->root, true);
        assert_dump(post, now);
        free(now);
        assert_int_equal(nono_session_get(f->st, m.sid, &s), 0);
        assert_int_equal(s.state, NONO_SESSION_FINISHED);
        nono_session_clear(&s);
        free(post);
        free(before);
        model_free(&m);
}

static void test_running_refused(void **state)
{
        struct fx *f = *state;
        struct model m;

        base_tree(f);
        model_begin(&m, f->st, f->root);
        op_write(&m, f, "a.txt", "agent\n", O_TRUNC);
        assert_int_equal(restore(f, m.sid, true, false, NULL, 0, NULL), -EBUSY);
        assert_non_null(strstr(nono_restore_errmsg(), "still running"));
        model_free(&m);
}

/* The agent swapped a recorded directory for a symlink to a directory outside the root: the restore must
 * not write through it. */
static void test_symlink_escape(void **state)
{
        struct fx *f = *state;
        struct model m;
        char p[4096], q[4096], *before, *now;
        char *outside_before;

        base_tree(f);
        snprintf(p, sizeof p, "%s/victim", f->outside);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        assert_int_equal(write(fd, "safe\n", 5), 5);
        close(fd);
        outside_before = tree_dump(f->outside, true);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        model_touch(&m, "dir/sub/d.bin");
        model_touch(&m, "dir/sub");
        path_of(f, "dir/sub/d.bin", p);
        unlink(p);
        path_of(f, "dir/sub", p);
        rmdir(p);
        model_touch(&m, "dir");
        model_touch(&m, "dir/c.txt");
        path_of(f, "dir/c.txt", p);
        unlink(p);
        path_of(f, "dir", p);
        rmdir(p);
        symlink(f->outside, p); /* "dir" -> outside: dir/c.txt would land in outside/c.txt */
        model_end(&m, false);
        /* make the outside look like the inside so a followed path would be accepted */
        snprintf(q, sizeof q, "%s/sub", f->outside);
        mkdir(q, 0750);
        rmdir(q);
        free(outside_before);
        outside_before = tree_dump(f->outside, true);

        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, NULL), 0);
        now = tree_dump(f->outside, true);
        assert_dump(outside_before, now);
        free(now);
        now = tree_dump(f->root, true);
        assert_dump(before, now);
        free(now);
        free(before);
        free(outside_before);
        model_free(&m);
}

/* SIGKILL the restore after every possible step, then run it again: always exact. */
static void test_killed_restore_completes(void **state)
{
        struct fx *f = *state;
        char *before = NULL;

        for (long k = 0;; k++) {
                struct model m;
                char p[4096], q[4096], *now;
                rm_rf(f->root);
                mkdir(f->root, 0700);
                base_tree(f);
                free(before);
                before = tree_dump(f->root, true);
                model_begin(&m, f->st, f->root);
                op_write(&m, f, "a.txt", "agent\n", O_TRUNC);
                model_touch(&m, "dir");
                model_touch(&m, "moved");
                path_of(f, "dir", p);
                path_of(f, "moved", q);
                rename(p, q);
                model_touch(&m, "b.txt");
                path_of(f, "b.txt", p);
                unlink(p);
                op_write(&m, f, "n.txt", "n\n", O_TRUNC);
                model_touch(&m, "h1");
                write_file(f, "h1", "HARD\n", 5, O_TRUNC);
                model_end(&m, false);

                nono_store_close(f->st);
                pid_t pid = fork();
                if (pid == 0) {
                        char v[32];
                        nono_store *st;
                        snprintf(v, sizeof v, "%ld", k);
                        setenv("NONO_TEST_RESTORE_KILL_AFTER", v, 1);
                        if (nono_store_open(f->home, 0, &st) < 0)
                                _exit(3);
                        struct nono_restore_opts o = {.out = stderr};
                        struct nono_restore_report rep;
                        _exit(nono_restore(st, m.sid, &o, &rep) < 0 ? 2 : 0);
                }
                int status;
                waitpid(pid, &status, 0);
                assert_int_equal(nono_store_open(f->home, 0, &f->st), 0);
                bool finished = WIFEXITED(status);
                if (finished)
                        assert_int_equal(WEXITSTATUS(status), 0);
                else
                        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, NULL), 0);
                now = tree_dump(f->root, true);
                if (strcmp(before, now)) {
                        dump_diff(before, now);
                        fail_msg("restore killed after %ld steps did not complete exactly", k);
                }
                free(now);
                model_free(&m);
                if (finished)
                        break;
        }
        free(before);
}

/* A restore reuses the inode each file replaces as the next file's temporary (restore_apply.c "spare"),
 * but never one another process still has open: writes through such a descriptor after the restore must
 * land in the old, nameless file, not in a restored one. Each agent version is also read back after a
 * restore of the restore (undo), which puts them back exactly. */
static void test_replaced_file_open_elsewhere(void **state)
{
        struct fx *f = *state;
        struct model m;
        char p[4096], *before, *post, *now;
        const char *names[] = {"a.txt", "b.txt", "dir/c.txt"};
        int fds[3];

        base_tree(f);
        before = tree_dump(f->root, true);
        model_begin(&m, f->st, f->root);
        for (int i = 0; i < 3; i++)
                op_write(&m, f, names[i], "agent version\n", O_TRUNC);
        model_end(&m, false);
        post = tree_dump(f->root, true);
        /* a.txt and dir/c.txt stay open (one for writing, one read-only); b.txt is free to reuse */
        path_of(f, "a.txt", p);
        fds[0] = open(p, O_RDWR);
        path_of(f, "dir/c.txt", p);
        fds[2] = open(p, O_RDONLY);
        assert_true(fds[0] >= 0 && fds[2] >= 0);

        struct nono_restore_report rep;
        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, &rep), 0);
        assert_int_equal(pwrite(fds[0], "LATE WRITE", 10, 0), 10);
        char buf[64] = {0};
        assert_int_equal(pread(fds[2], buf, sizeof buf - 1, 0), 14);
        assert_string_equal(buf, "agent version\n");
        now = tree_dump(f->root, true);
        assert_dump(before, now);
        free(now);
        close(fds[0]);
        close(fds[2]);

        /* the restore is undoable: its pre-images are the agent's versions */
        assert_int_equal(restore(f, rep.restore_id, false, false, NULL, 0, NULL), 0);
        now = tree_dump(f->root, true);
        assert_dump(post, now);
        free(now);
        free(post);
        free(before);
        model_free(&m);
}

/* The restore's progress is its own small record beside the plan: a new plan starts without it, and
 * deleting the journal deletes it. */
static void test_journal_progress(void **state)
{
        struct fx *f = *state;
        struct model m;
        uint64_t d = 0;

        assert_int_equal(model_begin(&m, f->st, f->root), 0);
        model_end(&m, false);
        assert_int_equal(nono_journal_progress_get(f->st, m.sid, &d), -ENOENT);
        assert_int_equal(nono_journal_put(f->st, m.sid, "{}", 2), 0);
        assert_int_equal(nono_journal_progress_put(f->st, m.sid, 4096), 0);
        assert_int_equal(nono_journal_progress_get(f->st, m.sid, &d), 0);
        assert_int_equal(d, 4096);
        assert_int_equal(nono_journal_put(f->st, m.sid, "{}", 2), 0);
        assert_int_equal(nono_journal_progress_get(f->st, m.sid, &d), -ENOENT);
        assert_int_equal(nono_journal_progress_put(f->st, m.sid, 7), 0);
        assert_int_equal(nono_journal_delete(f->st, m.sid), 0);
        assert_int_equal(nono_journal_progress_get(f->st, m.sid, &d), -ENOENT);
        void *b = NULL;
        size_t l = 0;
        assert_int_equal(nono_journal_get(f->st, m.sid, &b, &l), -ENOENT);
        model_free(&m);
}

static void test_crashed_session(void **state)
{
        struct fx *f = *state;
        struct model m;
        char *before, *now;
        struct nono_session s = {0};

        base_tree(f);
        before = tree_dump(f->root, true);
        model_begin_owner(&m, f->st, f->root, dead_pid());
        op_write(&m, f, "a.txt", "agent\n", O_TRUNC);
        op_write(&m, f, "new", "agent\n", O_TRUNC);
        model_end(&m, true);
        assert_int_equal(nono_session_get(f->st, m.sid, &s), 0);
        assert_int_equal(s.state, NONO_SESSION_CRASHED);
        nono_session_clear(&s);
        assert_int_equal(restore(f, m.sid, false, false, NULL, 0, NULL), 0);
        now = tree_dump(f->root, true);
        assert_dump(before, now);
        free(now);
        free(before);
        model_free(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_basic_operations, setup, teardown),
            cmocka_unit_test_setup_teardown(test_renames_and_exchange, setup, teardown),
            cmocka_unit_test_setup_teardown(test_block_level, setup, teardown),
            cmocka_unit_test_setup_teardown(test_conflict_dry_run_force, setup, teardown),
            cmocka_unit_test_setup_teardown(test_restore_of_restore, setup, teardown),
            cmocka_unit_test_setup_teardown(test_running_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_symlink_escape, setup, teardown),
            cmocka_unit_test_setup_teardown(test_killed_restore_completes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crashed_session, setup, teardown),
            cmocka_unit_test_setup_teardown(test_journal_progress, setup, teardown),
            cmocka_unit_test_setup_teardown(test_replaced_file_open_elsewhere, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
