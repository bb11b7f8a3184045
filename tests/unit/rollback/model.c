/* SPDX-License-Identifier: Apache-2.0 */
/* model.c - see model.h. */
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "launcher/restore_fs.h"

#define CHECK(x)                                                                                             \
        do {                                                                                                 \
                int _r = (x);                                                                                \
                if (_r < 0) {                                                                                \
                        fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #x, strerror(-_r),       \
                                nono_store_errmsg());                                                        \
                        abort();                                                                             \
                }                                                                                            \
        } while (0)

int model_begin(struct model *m, nono_store *st, const char *root)
{
        return model_begin_owner(m, st, root, getpid());
}

pid_t dead_pid(void)
{
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        waitpid(dead, NULL, 0);
        return dead;
}

int model_begin_owner(struct model *m, nono_store *st, const char *root, pid_t owner)
{
        char *roots[] = {(char *)root, NULL};
        char *argv[] = {"agent", NULL};
        struct nono_session s = {.kind = NONO_SESSION_RUN,
                                 .state = NONO_SESSION_RUNNING,
                                 .argv = argv,
                                 .cwd = (char *)root,
                                 .policy_json = "{}",
                                 .roots = roots,
                                 .rollback = true,
                                 .pid = owner};
        struct timespec ts;

        memset(m, 0, sizeof *m);
        m->st = st;
        snprintf(m->root, sizeof m->root, "%s", root);
        m->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        clock_gettime(CLOCK_REALTIME, &ts);
        s.start_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
        CHECK(nono_session_create(st, &s));
        memcpy(m->sid, s.id, sizeof m->sid);
        return 0;
}

static uint64_t node_of(struct model *m, const struct stat *st, bool *fresh, int fd)
{
        for (size_t i = 0; i < m->n_nodes; i++)
                if (m->nodes[i].dev == st->st_dev && m->nodes[i].ino == st->st_ino) {
                        *fresh = false;
                        return m->nodes[i].id;
                }
        m->nodes = realloc(m->nodes, (m->n_nodes + 1) * sizeof *m->nodes);
        m->nodes[m->n_nodes].dev = st->st_dev;
        m->nodes[m->n_nodes].ino = st->st_ino;
        m->nodes[m->n_nodes].id = m->n_nodes + 1;
        m->nodes[m->n_nodes].pin = dup(fd);
        *fresh = true;
        return ++m->n_nodes;
}

static bool path_recorded(struct model *m, const char *rel)
{
        for (size_t i = 0; i < m->n_paths; i++)
                if (!strcmp(m->paths[i], rel))
                        return true;
        return false;
}

/* Puts the node for the object at rel (if new); chunks: NULL whole content, else the captured range. */
static uint64_t put_node(struct model *m, const char *rel, const uint64_t *range)
{
        struct stat st;
        int fd = rfs_open_path(m->rootfd, rel);
        struct nono_node n = {0};
        bool fresh;

        if (fd < 0)
                return 0;
        fstat(fd, &st);
        n.id = node_of(m, &st, &fresh, fd);
        if (fresh) {
                CHECK(rfs_read_meta(fd, &st, &n));
                if (S_ISREG(st.st_mode) && !range) {
                        int rd = rfs_open_read(fd);
                        CHECK(rd);
                        CHECK(nono_object_put_fd(m->st, rd, &n.object, NULL, NONO_ASYNC));
                        close(rd);
                        n.complete = true;
                }
                CHECK(nono_node_put(m->st, m->sid, &n, NONO_ASYNC));
        } else if (S_ISREG(st.st_mode) && !range) {
                /* a losing operation on a node kept block-level: complete it with the original content (the
                 * live file with the captured chunks over it), as fs/'s background ingest does */
                struct nono_node cur = {0};
                CHECK(nono_store_sync(m->st));
                CHECK(nono_node_get(m->st, m->sid, n.id, &cur));
                if (!cur.complete) {
                        char *buf = calloc(1, cur.size + NONO_CHUNK_SIZE);
                        int rd = rfs_open_read(fd);
                        nono_digest obj;
                        if (pread(rd, buf, cur.size, 0) < 0) {
                        }
                        close(rd);
                        for (size_t k = 0; k < cur.n_chunks; k++) {
                                size_t len = 0;
                                CHECK(nono_chunk_get(m->st, &cur.chunks[k].digest,
                                                     buf + cur.chunks[k].index * NONO_CHUNK_SIZE,
                                                     NONO_CHUNK_SIZE, &len));
                        }
                        CHECK(nono_object_put_buf(m->st, buf, cur.size, &obj, NONO_ASYNC));
                        CHECK(nono_node_set_object(m->st, m->sid, n.id, &obj, NONO_ASYNC));
                        free(buf);
                }
                nono_node_clear(&cur);
        }
        if (S_ISREG(st.st_mode) && range && range[1]) {
                int rd = rfs_open_read(fd);
                uint64_t first = range[0] / NONO_CHUNK_SIZE,
                         last = (range[0] + range[1] - 1) / NONO_CHUNK_SIZE;
                char *buf = malloc(NONO_CHUNK_SIZE);
                struct nono_node cur = {0};
                CHECK(nono_store_sync(m->st));
                CHECK(nono_node_get(m->st, m->sid, n.id, &cur));
                for (uint64_t c = first; !cur.complete && c <= last; c++) {
                        bool have = false;
                        for (size_t k = 0; k < cur.n_chunks; k++)
                                have |= cur.chunks[k].index == c;
                        if (have || c * NONO_CHUNK_SIZE >= cur.size)
                                continue;
                        ssize_t got = pread(rd, buf, NONO_CHUNK_SIZE, c * NONO_CHUNK_SIZE);
                        struct nono_chunkref ref = {.index = c, .len = got > 0 ? got : 0};
                        CHECK(nono_chunk_put(m->st, buf, ref.len, &ref.digest, NONO_ASYNC));
                        CHECK(nono_node_add_chunks(m->st, m->sid, n.id, &ref, 1, NONO_ASYNC));
                }
                nono_node_clear(&cur);
                free(buf);
                close(rd);
        }
        uint64_t id = n.id;
        nono_node_clear(&n);
        close(fd);
        return id;
}

static void touch_name(struct model *m, const char *rel, const uint64_t *range)
{
        uint64_t id = put_node(m, rel, range);

        if (!path_recorded(m, rel)) {
                CHECK(nono_path_put_pre(m->st, m->sid, 0, rel, id, NONO_ASYNC));
                m->paths = realloc(m->paths, (m->n_paths + 1) * sizeof *m->paths);
                m->paths[m->n_paths++] = strdup(rel);
        }
}

void model_touch(struct model *m, const char *rel)
{
        if (getenv("NONO_TEST_VERBOSE"))
                fprintf(stderr, "touch %s\n", rel);
        char parent[4096];
        char *s;

        snprintf(parent, sizeof parent, "%s", rel);
        s = strrchr(parent, '/');
        if (s)
                *s = 0;
        else
                parent[0] = 0;
        if (*rel)
                touch_name(m, parent, NULL);
        touch_name(m, rel, NULL);
}

void model_touch_blocks(struct model *m, const char *rel, uint64_t off, uint64_t len)
{
        uint64_t range[2] = {off, len};
        touch_name(m, rel, range);
}

void model_end(struct model *m, bool crashed)
{
        struct nono_session s = {0};

        for (size_t i = 0; i < m->n_paths && !crashed; i++) {
                struct nono_path_rec r = {.root = 0, .path = m->paths[i], .has_post = true};
                struct stat st;
                char link[4096];
                int fd = rfs_open_path(m->rootfd, m->paths[i]);
                if (fd >= 0 && fstat(fd, &st) == 0) {
                        r.post_type = S_ISREG(st.st_mode)   ? NONO_FT_FILE
                                      : S_ISDIR(st.st_mode) ? NONO_FT_DIR
                                      : S_ISLNK(st.st_mode) ? NONO_FT_SYMLINK
                                                            : NONO_FT_FIFO;
                        r.post_mode = st.st_mode & 07777;
                        r.post_size = st.st_size;
                        r.post_mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
                        for (size_t k = 0; k < m->n_nodes; k++)
                                if (m->nodes[k].dev == st.st_dev && m->nodes[k].ino == st.st_ino)
                                        r.post_node = m->nodes[k].id;
                        if (S_ISREG(st.st_mode)) {
                                int rd = rfs_open_read(fd);
                                r.post_has_digest = nono_object_id_fd(rd, &r.post_digest, NULL) == 0;
                                close(rd);
                        } else if (S_ISLNK(st.st_mode)) {
                                ssize_t l = readlinkat(fd, "", link, sizeof link - 1);
                                link[l > 0 ? l : 0] = 0;
                                r.post_link_target = link;
                        }
                }
                if (fd >= 0)
                        close(fd);
                CHECK(nono_path_put_post(m->st, m->sid, &r, NONO_ASYNC));
        }
        CHECK(nono_store_sync(m->st));
        CHECK(nono_session_get(m->st, m->sid, &s));
        if (crashed) {
                s.state = NONO_SESSION_RUNNING; /* its owner (model_begin_owner) is gone: CRASHED */
        } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                s.state = NONO_SESSION_FINISHED;
                s.end_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
        CHECK(nono_session_update(m->st, &s));
        nono_session_clear(&s);
}

void model_free(struct model *m)
{
        for (size_t i = 0; i < m->n_paths; i++)
                free(m->paths[i]);
        free(m->paths);
        for (size_t i = 0; i < m->n_nodes; i++)
                close(m->nodes[i].pin);
        free(m->nodes);
        if (m->rootfd >= 0)
                close(m->rootfd);
}

/* ---- tree dumps ---- */

struct dump {
        char *buf;
        size_t len, cap;
        struct {
                ino_t ino;
                char *path;
        } * links;
        size_t n_links;
        bool dir_times;
};

static void put(struct dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct dump *d, const char *fmt, ...)
{
        va_list ap;
        char tmp[8192];
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (d->len + n + 1 > d->cap) {
                d->cap = (d->len + n + 1) * 2;
                d->buf = realloc(d->buf, d->cap);
        }
        memcpy(d->buf + d->len, tmp, n + 1);
        d->len += n;
}

static void hash_file(int dirfd, const char *name, char out[65])
{
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        unsigned char md[32], buf[65536];
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        ssize_t k;

        EVP_DigestInit_ex(c, EVP_sha256(), NULL);
        while (fd >= 0 && (k = read(fd, buf, sizeof buf)) > 0)
                EVP_DigestUpdate(c, buf, k);
        EVP_DigestFinal_ex(c, md, NULL);
        EVP_MD_CTX_free(c);
        for (int i = 0; i < 32; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
        if (fd < 0)
                strcpy(out, "unreadable");
        else
                close(fd);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_dir(struct dump *d, int dirfd, const char *rel)
{
        DIR *dir = fdopendir(dup(dirfd));
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;

        while (dir && (de = readdir(dir)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                        names = realloc(names, (n + 1) * sizeof *names);
                        names[n++] = strdup(de->d_name);
                }
        if (dir)
                closedir(dir);
        if (n)
                qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
                char path[4096], x[65536];
                struct stat st;
                snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", names[i]);
                fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW);
                put(d, "%s type=%o mode=%04o uid=%u gid=%u", path, st.st_mode & S_IFMT, st.st_mode & 07777,
                    st.st_uid, st.st_gid);
                if (!S_ISDIR(st.st_mode) || d->dir_times)
                        put(d, " mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
                if (S_ISREG(st.st_mode)) {
                        char h[65];
                        hash_file(dirfd, names[i], h);
                        put(d, " size=%lld sha=%s nlink=%lu", (long long)st.st_size, h,
                            (unsigned long)st.st_nlink);
                        if (st.st_nlink > 1) {
                                const char *first = NULL;
                                for (size_t k = 0; k < d->n_links; k++)
                                        if (d->links[k].ino == st.st_ino)
                                                first = d->links[k].path;
                                if (!first) {
                                        d->links = realloc(d->links, (d->n_links + 1) * sizeof *d->links);
                                        d->links[d->n_links].ino = st.st_ino;
                                        d->links[d->n_links++].path = strdup(path);
                                        first = path;
                                }
                                put(d, " linkgroup=%s", first);
                        }
                } else if (S_ISLNK(st.st_mode)) {
                        ssize_t l = readlinkat(dirfd, names[i], x, sizeof x - 1);
                        x[l > 0 ? l : 0] = 0;
                        put(d, " target=%s", x);
                }
                if (!S_ISLNK(st.st_mode)) {
                        int fd = openat(dirfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        char p[64], list[4096];
                        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
                        ssize_t ll = listxattr(p, list, sizeof list);
                        char *sorted[64];
                        size_t ns = 0;
                        for (ssize_t off = 0; ll > 0 && off < ll && ns < 64; off += strlen(list + off) + 1)
                                sorted[ns++] = list + off;
                        if (ns)
                                qsort(sorted, ns, sizeof *sorted, cmp_str);
                        for (size_t k = 0; k < ns; k++) {
                                ssize_t vl = getxattr(p, sorted[k], x, sizeof x - 1);
                                x[vl > 0 ? vl : 0] = 0;
                                put(d, " xattr:%s=%s", sorted[k], x);
                        }
                        close(fd);
                }
                put(d, "\n");
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0) {
                                dump_dir(d, sub, path);
                                close(sub);
                        } else
                                put(d, "%s/ unreadable\n", path);
                }
                free(names[i]);
        }
        free(names);
}

char *tree_dump(const char *root, bool with_dir_times)
{
        struct dump d = {.dir_times = with_dir_times};
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;

        fstat(fd, &st);
        put(&d, ". mode=%04o", st.st_mode & 07777);
        if (with_dir_times)
                put(&d, " mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        put(&d, "\n");
        dump_dir(&d, fd, "");
        close(fd);
        for (size_t k = 0; k < d.n_links; k++)
                free(d.links[k].path);
        free(d.links);
        return d.buf;
}

void dump_diff(const char *a, const char *b)
{
        size_t line = 1;
        while (*a && *b) {
                size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
                if (la != lb || memcmp(a, b, la)) {
                        fprintf(stderr, "first difference at line %zu:\n  want: %.*s\n  got:  %.*s\n", line,
                                (int)la, a, (int)lb, b);
                        return;
                }
                a += la + (a[la] == '\n');
                b += lb + (b[lb] == '\n');
                line++;
        }
        if (*a || *b)
                fprintf(stderr, "first difference at line %zu:\n  want: %.200s\n  got:  %.200s\n", line, a,
                        b);
}

char *scratch_dir(const char *tag)
{
        const char *t = getenv("TMPDIR");
        char *p = NULL;

        asprintf(&p, "%s/nono-rb-%s-XXXXXX", t && *t ? t : "/tmp", tag);
        return mkdtemp(p) ? p : NULL;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        if (flag == FTW_DP)
                return rmdir(p), 0;
        return unlink(p), 0;
}

void rm_rf(const char *path)
{
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null", path);
        if (system(cmd)) {
        }
        nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}
