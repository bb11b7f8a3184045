/* SPDX-License-Identifier: Apache-2.0 */
/*
 * env.c - finding, creating and opening the store: the nono home, the permission and ownership checks, the
 * schema version, the LMDB tables, the map size, and the transaction helpers the other modules use.
 *
 * Security: the store holds pre-images of everything an agent changed and the audit trail of what it did.
 * The checks here stop another local user from reading or planting data in it (directories 0700, files
 * 0600, owned by the caller) and stop nono from trusting a file that is not a nono store. They do not stop
 * a process running as the same user: keeping the agent out is the sandbox's job (the store is masked).
 *
 * Map size: LMDB reserves address space, not disk, so the map starts large (NONO_STORE_MAP_SIZE bytes,
 * default 1 GiB) and the writer doubles it when a transaction reports MDB_MAP_FULL. Growing requires that
 * no transaction of this process be open, hence s->maplock. Other processes notice through MDB_MAP_RESIZED
 * and adopt the new size (rtxn_begin() and the writer handle it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store/internal.h"

#define DEFAULT_MAP_SIZE (1ull << 30)
#define STORE_MAGIC      "nono-store"

int nono_store_home(char *buf, size_t len)
{
        const char *e = getenv("NONO_HOME");
        int n;

        if (e && *e) {
                n = snprintf(buf, len, "%s", e);
        } else if ((e = getenv("XDG_DATA_HOME")) && *e == '/') {
                n = snprintf(buf, len, "%s/nono", e);
        } else {
                const char *home = getenv("HOME");
                if (!home || *home != '/') {
                        struct passwd *pw = getpwuid(geteuid());
                        home = pw ? pw->pw_dir : NULL;
                }
                if (!home)
                        return store_err(-ENOENT, "cannot find the nono home: set NONO_HOME or HOME");
                n = snprintf(buf, len, "%s/.local/share/nono", home);
        }
        if (n < 0 || (size_t)n >= len)
                return store_err(-ENAMETOOLONG, "the nono home path is too long: set a shorter NONO_HOME");
        return 0;
}

static int mkdir_p(const char *path, bool create)
{
        char tmp[PATH_MAX];
        struct stat st;

        if (stat(path, &st) == 0)
                return S_ISDIR(st.st_mode) ? 0
                                           : store_err(-ENOTDIR,
                                                       "%s is not a directory: remove it or set "
                                                       "NONO_HOME elsewhere",
                                                       path);
        if (!create)
                return store_err(-ENOENT, "no store at %s: run a nono session first (or check NONO_HOME)",
                                 path);
        snprintf(tmp, sizeof(tmp), "%s", path);
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                        return store_err(-errno, "cannot create %s: %s: fix its parent or set NONO_HOME", tmp,
                                         strerror(errno));
                *p = '/';
        }
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return store_err(-errno, "cannot create %s: %s: fix its parent or set NONO_HOME", tmp,
                                 strerror(errno));
        return 0;
}

/* Owned by us, no access for group or others: anything else lets another user read or plant data. */
static int check_owner_mode(const char *path, bool dir)
{
        struct stat st;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT && !dir)
                        return 0;
                return store_err(-errno, "cannot inspect %s: %s", path, strerror(errno));
        }
        if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                return store_err(-EPERM, "%s is not a %s (symlink or special file?): move it aside", path,
                                 dir ? "directory" : "regular file");
        if (st.st_uid != geteuid())
                return store_err(
                    -EPERM,
                    "%s is owned by uid %u, not by you (uid %u): another user's store must not be "
                    "used; chown it to yourself or set NONO_HOME to your own directory",
                    path, (unsigned)st.st_uid, (unsigned)geteuid());
        if (st.st_mode & 077)
                return store_err(-EPERM, "%s has mode %04o, so other users can access it: chmod %s %s", path,
                                 (unsigned)(st.st_mode & 07777), dir ? "700" : "600", path);
        return 0;
}

static int check_files(const char *dir)
{
        char p[PATH_MAX];
        struct stat st;
        int r;

        if ((r = check_owner_mode(dir, true)) < 0)
                return r;
        snprintf(p, sizeof(p), "%s/lock.mdb", dir);
        if ((r = check_owner_mode(p, false)) < 0)
                return r;
        snprintf(p, sizeof(p), "%s/data.mdb", dir);
        if ((r = check_owner_mode(p, false)) < 0)
                return r;
        if (stat(p, &st) == 0 && st.st_size > 0 && st.st_size < 2 * 4096)
                return store_err(
                    -EBADMSG,
                    "%s is not an LMDB database (%lld bytes, truncated or corrupt): move it aside "
                    "(mv %s %s.bad) and nono will create a new store",
                    p, (long long)st.st_size, p, p);
        return 0;
}

static int check_writable(const char *dir)
{
        struct statvfs vfs;

        if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
                return store_err(-EROFS,
                                 "store at %s is on a read-only filesystem: remount it read-write or set "
                                 "NONO_HOME to a writable directory",
                                 dir);
        if (access(dir, W_OK | X_OK) < 0)
                return store_err(-errno == -EROFS ? -EROFS : -EACCES,
                                 "store directory %s is not writable: chmod u+w %s (or set NONO_HOME to a "
                                 "writable directory)",
                                 dir, dir);
        return 0;
}

static int open_env_error(nono_store *s, int rc)
{
        char p[PATH_MAX];

        snprintf(p, sizeof(p), "%s/data.mdb", s->dir);
        switch (rc) {
        case MDB_INVALID:
                return store_err(
                    -EBADMSG,
                    "%s is not an LMDB database (corrupt or replaced): move it aside (mv %s %s.bad) "
                    "and nono will create a new store",
                    p, p, p);
        case MDB_VERSION_MISMATCH:
                return store_err(-EPROTO,
                                 "%s was written by an incompatible LMDB version: use the nono that "
                                 "created it, or move it aside",
                                 p);
        case EACCES:
        case EPERM:
                return store_err(-EACCES,
                                 "store at %s: permission denied: it must be yours (chown) with mode "
                                 "0700 for the directory and 0600 for its files",
                                 s->dir);
        case EROFS:
                return store_err(-EROFS, "store at %s is on a read-only filesystem: remount it read-write",
                                 s->dir);
        case ENOSPC:
                return store_err(-ENOSPC, "store at %s: the disk is full: free some space and retry", s->dir);
        default:
                return store_mdb_err(s, rc, "opening the environment");
        }
}

static const struct {
        const char *name;
        size_t off;
} tables[] = {
#define T(n)                                                                                                 \
        {                                                                                                    \
#n, offsetof(nono_store, db_##n)                                                             \
        }
    T(meta),  T(chunks), T(objects), T(refs),    T(sessions), T(nodes),   T(nodechunks),
    T(paths), T(events), T(evstate), T(pathids), T(pathstr),  T(journal),
#undef T
};

static int check_schema(nono_store *s, MDB_txn *txn, bool *fresh)
{
        MDB_val k = {6, "schema"}, v, mk = {5, "magic"}, mv;
        int rc;

        *fresh = false;
        rc = mdb_get(txn, s->db_meta, &mk, &mv);
        if (rc == MDB_NOTFOUND) {
                MDB_stat st;
                mdb_stat(txn, s->db_meta, &st);
                if (st.ms_entries == 0) {
                        *fresh = true;
                        return 0;
                }
        }
        if (rc || mv.mv_size != strlen(STORE_MAGIC) || memcmp(mv.mv_data, STORE_MAGIC, mv.mv_size))
                return store_err(-EPROTO,
                                 "%s/data.mdb is an LMDB database but not a nono store: set NONO_HOME "
                                 "elsewhere or move it aside",
                                 s->dir);
        rc = mdb_get(txn, s->db_meta, &k, &v);
        if (rc || v.mv_size != 4)
                return store_err(-EPROTO,
                                 "store at %s has no readable schema version: it was not written by "
                                 "nono; move it aside",
                                 s->dir);
        uint32_t ver = le32_get(v.mv_data);
        if (ver > NONO_STORE_SCHEMA_VERSION)
                return store_err(-EPROTO,
                                 "store at %s was written by a newer nono (schema %u, this nono reads %u): "
                                 "upgrade nono",
                                 s->dir, ver, NONO_STORE_SCHEMA_VERSION);
        if (ver != NONO_STORE_SCHEMA_VERSION)
                return store_err(-EPROTO,
                                 "store at %s has unknown schema %u (this nono reads %u): move it aside",
                                 s->dir, ver, NONO_STORE_SCHEMA_VERSION);
        return 0;
}

/* An existing store needs no write: open its tables in a read transaction, which neither waits for another
 * process's write transaction (a running session's ingest) nor takes the writer lock. Returns 1 when the
 * store needs the write path (new, or a table missing), so that the full checks and messages apply. */
static int open_tables_existing(nono_store *s)
{
        MDB_txn *txn;
        bool fresh;
        int rc;

        if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)))
                return open_env_error(s, rc);
        for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
                if (mdb_dbi_open(txn, tables[i].name, 0, (MDB_dbi *)((char *)s + tables[i].off))) {
                        mdb_txn_abort(txn);
                        return 1;
                }
        if (check_schema(s, txn, &fresh) < 0 || fresh) {
                mdb_txn_abort(txn);
                store_err_clear();
                return 1;
        }
        if (mdb_dbi_open(txn, "rbsess", 0, &s->db_rbsess)) { /* made before the index: build it */
                mdb_txn_abort(txn);
                return 1;
        }
        s->has_rbsess = true;
        /* Commit, not abort: handles opened in a read transaction survive only its commit. */
        rc = mdb_txn_commit(txn);
        return rc ? open_env_error(s, rc) : 0;
}

static int open_tables(nono_store *s)
{
        bool rdonly = s->flags & NONO_STORE_RDONLY;
        MDB_txn *txn;
        MDB_dbi main;
        MDB_stat st;
        bool fresh;
        int rc, r;

        rc = mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, &txn);
        if (rc)
                return open_env_error(s, rc);
        /* A store that is not new must already have the meta table; never add tables to a foreign file. */
        rc = mdb_dbi_open(txn, "meta", 0, &s->db_meta);
        if (rc == MDB_NOTFOUND) {
                mdb_dbi_open(txn, NULL, 0, &main);
                mdb_stat(txn, main, &st);
                if (st.ms_entries != 0 || rdonly) {
                        mdb_txn_abort(txn);
                        if (rdonly && st.ms_entries == 0)
                                return store_err(-ENOENT, "store at %s is empty: run a nono session first",
                                                 s->dir);
                        return store_err(-EPROTO,
                                         "%s/data.mdb is an LMDB database but not a nono store: set "
                                         "NONO_HOME elsewhere or move it aside",
                                         s->dir);
                }
        } else if (rc) {
                mdb_txn_abort(txn);
                return open_env_error(s, rc);
        }
        for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
                rc = mdb_dbi_open(txn, tables[i].name, rdonly ? 0 : MDB_CREATE,
                                  (MDB_dbi *)((char *)s + tables[i].off));
                if (rc) {
                        mdb_txn_abort(txn);
                        if (rc == MDB_NOTFOUND)
                                return store_err(-EBADMSG,
                                                 "store at %s lacks table %s: it is damaged; move it "
                                                 "aside",
                                                 s->dir, tables[i].name);
                        return open_env_error(s, rc);
                }
        }
        if ((r = check_schema(s, txn, &fresh)) < 0) {
                mdb_txn_abort(txn);
                return r;
        }
        /* The index of rollback sessions, made (and filled from the sessions there are) in the transaction
         * that creates it; a read-only open of a store without it lists sessions the slow way. */
        rc = mdb_dbi_open(txn, "rbsess", 0, &s->db_rbsess);
        if (rc == MDB_NOTFOUND && !rdonly) {
                if ((rc = mdb_dbi_open(txn, "rbsess", MDB_CREATE, &s->db_rbsess)) == 0 &&
                    (r = session_rbsess_build(s, txn)) < 0) {
                        mdb_txn_abort(txn);
                        return r;
                }
        }
        if (rc && rc != MDB_NOTFOUND) {
                mdb_txn_abort(txn);
                return open_env_error(s, rc);
        }
        s->has_rbsess = rc == 0;
        if (fresh) {
                uint8_t ver[4];
                le32_put(ver, NONO_STORE_SCHEMA_VERSION);
                MDB_val mk = {5, "magic"}, mv = {strlen(STORE_MAGIC), STORE_MAGIC};
                MDB_val k = {6, "schema"}, v = {4, ver};
                if ((rc = mdb_put(txn, s->db_meta, &mk, &mv, 0)) ||
                    (rc = mdb_put(txn, s->db_meta, &k, &v, 0))) {
                        mdb_txn_abort(txn);
                        return open_env_error(s, rc);
                }
        }
        rc = mdb_txn_commit(txn);
        return rc ? open_env_error(s, rc) : 0;
}

static size_t initial_map_size(void)
{
        const char *e = getenv("NONO_STORE_MAP_SIZE");
        if (e && *e) {
                unsigned long long v = strtoull(e, NULL, 0);
                if (v >= (1u << 16))
                        return (size_t)v;
        }
        return DEFAULT_MAP_SIZE;
}

int nono_store_open(const char *home, unsigned flags, nono_store **out)
{
        char hbuf[PATH_MAX], dir[PATH_MAX];
        bool rdonly = flags & NONO_STORE_RDONLY;
        nono_store *s;
        int r, rc;

        store_err_clear();
        *out = NULL;
        if (!home) {
                if ((r = nono_store_home(hbuf, sizeof(hbuf))) < 0)
                        return r;
                home = hbuf;
        }
        if ((size_t)snprintf(dir, sizeof(dir), "%s/store", home) >= sizeof(dir) - 16)
                return store_err(-ENAMETOOLONG, "the nono home path is too long: set a shorter NONO_HOME");
        if ((r = mkdir_p(dir, !rdonly)) < 0)
                return r;
        if ((r = check_files(dir)) < 0)
                return r;
        if (!rdonly && (r = check_writable(dir)) < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s || !(s->dir = strdup(dir))) {
                free(s);
                return store_err(-ENOMEM, "out of memory");
        }
        s->flags = flags;
        s->gc_grace_s = 3600;
        s->all_synced = true;
        pthread_rwlock_init(&s->maplock, NULL);
        pthread_mutex_init(&s->mu, NULL);
        pthread_mutex_init(&s->pool_mu, NULL);
        pthread_cond_init(&s->cond_work, NULL);
        pthread_cond_init(&s->cond_done, NULL);

        if ((rc = mdb_env_create(&s->env))) {
                r = store_mdb_err(s, rc, "creating the environment");
                goto fail;
        }
        mdb_env_set_maxdbs(s->env, 32);
        mdb_env_set_mapsize(s->env, initial_map_size());
        rc = mdb_env_open(s->env, dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : 0), 0600);
        if (rc) {
                r = open_env_error(s, rc);
                goto fail;
        }
        /* LMDB created the files with 0600 & ~umask; check what is there now. */
        if ((r = check_files(dir)) < 0)
                goto fail;
        if ((r = rdonly ? 1 : open_tables_existing(s)) == 1)
                r = open_tables(s);
        if (r < 0)
                goto fail;
        if (!rdonly && (r = writer_start(s)) < 0)
                goto fail;
        *out = s;
        return 0;
fail:
        nono_store_close(s);
        return r;
}

void nono_store_close(nono_store *s)
{
        if (!s)
                return;
        writer_stop(s);
        if (s->env)
                mdb_env_close(s->env);
        intern_cache_free(s->cache);
        pool_free(s);
        free(s->scratch);
        pthread_mutex_destroy(&s->pool_mu);
        EVP_MD_free(s->sha256);
        pthread_rwlock_destroy(&s->maplock);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cond_work);
        pthread_cond_destroy(&s->cond_done);
        free(s->dir);
        free(s);
}

/* Why a lock file and flock: two restores of one session at once interleave their renames and leave files of
 * neither state (seen: a file kept the agent's content after both reported success), and a cleanup can free
 * a pre-image a running restore is about to read. LMDB's own locks cover single transactions, not these
 * multi-transaction jobs. flock is released by the kernel with the process, so a killed restore never
 * blocks the one that completes it. It is advisory: it stops nono processes, not someone editing the store
 * files by hand. */
int nono_store_lock(nono_store *s, const char *name, int *fd, int *holder)
{
        char path[PATH_MAX], buf[32];
        int n;

        *fd = -1;
        if (holder)
                *holder = 0;
        n = snprintf(path, sizeof(path), "%s/%s.lock", s->dir, name);
        if (n < 0 || (size_t)n >= sizeof(path))
                return store_err(-ENAMETOOLONG, "the lock path under %s is too long", s->dir);
        int l = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (l < 0)
                return store_err(-errno, "cannot open the lock %s: %s", path, strerror(errno));
        if (flock(l, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                if (holder) {
                        ssize_t k = pread(l, buf, sizeof(buf) - 1, 0);
                        buf[k > 0 ? k : 0] = 0;
                        *holder = atoi(buf);
                }
                close(l);
                return e == EWOULDBLOCK ? -EBUSY : store_err(-e, "cannot lock %s: %s", path, strerror(e));
        }
        n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
        if (ftruncate(l, 0) < 0 || pwrite(l, buf, (size_t)n, 0) != n) {
                /* the pid is only for the message of the process that waits; the lock holds regardless */
        }
        *fd = l;
        return 0;
}

const char *nono_pid_note(int pid)
{
        static __thread char buf[32];

        if (pid <= 0)
                return "";
        snprintf(buf, sizeof(buf), " (pid %d)", pid);
        return buf;
}

void nono_store_unlock(int fd)
{
        if (fd >= 0)
                close(fd);
}

void nono_store_set_gc_grace(nono_store *s, int64_t seconds)
{
        s->gc_grace_s = seconds < 0 ? 0 : seconds;
}

int store_writable(nono_store *s)
{
        if (s->flags & NONO_STORE_RDONLY)
                return store_err(-EROFS,
                                 "store at %s was opened read-only: open it without NONO_STORE_RDONLY "
                                 "to change it",
                                 s->dir);
        return 0;
}

int store_session_check(const char *id)
{
        if (!id || strlen(id) != SID_LEN)
                return store_err(-EINVAL,
                                 "not a session id: \"%s\" (want %d characters; see `nono audit list`)",
                                 id ? id : "(null)", SID_LEN);
        return 0;
}

/* Adopts a map size grown by another process. Caller holds no transaction. */
static int adopt_map_size(nono_store *s)
{
        pthread_rwlock_wrlock(&s->maplock);
        int rc = mdb_env_set_mapsize(s->env, 0);
        pthread_rwlock_unlock(&s->maplock);
        return rc;
}

int rtxn_begin(nono_store *s, MDB_txn **txn)
{
        for (int tries = 0;; tries++) {
                pthread_rwlock_rdlock(&s->maplock);
                int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
                if (rc == 0)
                        return 0;
                pthread_rwlock_unlock(&s->maplock);
                if (rc != MDB_MAP_RESIZED || tries > 8)
                        return store_mdb_err(s, rc, "starting a read transaction");
                if ((rc = adopt_map_size(s)))
                        return store_mdb_err(s, rc, "adopting the new map size");
        }
}

void rtxn_end(nono_store *s, MDB_txn *txn)
{
        mdb_txn_abort(txn);
        pthread_rwlock_unlock(&s->maplock);
}

int store_grow_map(nono_store *s, size_t min_size)
{
        MDB_envinfo info;
        size_t size;
        int rc;

        pthread_rwlock_wrlock(&s->maplock);
        mdb_env_info(s->env, &info);
        size = info.me_mapsize * 2;
        if (size < min_size)
                size = min_size;
        rc = mdb_env_set_mapsize(s->env, size);
        pthread_rwlock_unlock(&s->maplock);
        return rc;
}

int db_put(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl)
{
        MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
        int rc = mdb_put(txn, dbi, &key, &val, 0);
        if (rc) {
                if (!s->txn_err)
                        s->txn_err = rc;
                return -EIO;
        }
        return 0;
}

int db_del(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
        MDB_val key = {kl, (void *)k};
        int rc = mdb_del(txn, dbi, &key, NULL);
        if (rc == MDB_NOTFOUND)
                return -ENOENT;
        if (rc) {
                if (!s->txn_err)
                        s->txn_err = rc;
                return -EIO;
        }
        return 0;
}

int db_get(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *v)
{
        MDB_val key = {kl, (void *)k};
        int rc = mdb_get(txn, dbi, &key, v);
        if (rc == MDB_NOTFOUND)
                return -ENOENT;
        return rc ? store_mdb_err(s, rc, "reading") : 0;
}

int db_del_prefix(nono_store *s, MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t pl,
                  int (*each)(nono_store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v))
{
        MDB_cursor *c;
        MDB_val k = {pl, (void *)prefix}, v;
        int rc, r = 0;

        if ((rc = mdb_cursor_open(txn, dbi, &c)))
                goto fail;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (rc == 0 && k.mv_size >= pl && memcmp(k.mv_data, prefix, pl) == 0) {
                if (each && (r = each(s, txn, &k, &v)) < 0)
                        break;
                if ((rc = mdb_cursor_del(c, 0)))
                        break;
                /* After a delete the cursor already sits on the next item; MDB_NEXT returns it. */
                rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        if (r < 0)
                return r;
        if (rc == MDB_NOTFOUND)
                return 0;
fail:
        if (rc && !s->txn_err)
                s->txn_err = rc;
        return rc ? -EIO : 0;
}

int nono_store_stats(nono_store *s, struct nono_store_stats *out)
{
        MDB_txn *txn;
        MDB_stat st;
        MDB_envinfo info;
        MDB_val v;
        int r;

        *out = (struct nono_store_stats){0};
        if ((r = rtxn_begin(s, &txn)) < 0)
                return r;
        mdb_stat(txn, s->db_chunks, &st);
        out->chunks = st.ms_entries;
        mdb_stat(txn, s->db_objects, &st);
        out->objects = st.ms_entries;
        mdb_stat(txn, s->db_sessions, &st);
        out->sessions = st.ms_entries;
        if (db_get(s, txn, s->db_meta, "chunk_bytes", 11, &v) == 0 && v.mv_size == 8)
                out->chunk_bytes = le64_get(v.mv_data);
        mdb_env_info(s->env, &info);
        mdb_env_stat(s->env, &st);
        out->map_size = info.me_mapsize;
        out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
        rtxn_end(s, txn);
        return 0;
}
