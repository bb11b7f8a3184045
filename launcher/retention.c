/* SPDX-License-Identifier: Apache-2.0 */
/* retention.c - rollback session retention and cleanup (contract and defaults in retention.h). */
#include "launcher/retention.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher/restore_fs.h"

static int read_file(const char *path, char **out)
{
        FILE *f = fopen(path, "re");
        long n;

        if (!f)
                return -errno;
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        *out = malloc(n + 1);
        if (!*out || fread(*out, 1, n, f) != (size_t)n) {
                fclose(f);
                free(*out);
                return -EIO;
        }
        (*out)[n] = 0;
        fclose(f);
        return 0;
}

int nono_retention_load(struct nono_retention *o, char *err, size_t errlen)
{
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        char path[4096], *txt = NULL;
        cJSON *j, *rb;
        int r;

        *o = (struct nono_retention){NONO_RETENTION_KEEP, -1, NONO_RETENTION_MAX_BYTES};
        if (xdg && *xdg)
                snprintf(path, sizeof path, "%s/nono/config.json", xdg);
        else if (home && *home)
                snprintf(path, sizeof path, "%s/.config/nono/config.json", home);
        else
                return 0;
        r = read_file(path, &txt);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        j = cJSON_Parse(txt);
        free(txt);
        if (!j) {
                snprintf(err, errlen, "%s is not valid JSON: fix it or remove it", path);
                return -EINVAL;
        }
        rb = cJSON_GetObjectItem(j, "rollback");
        r = 0;
        if (rb) {
                static const char *keys[] = {"keep", "max_age_days", "max_bytes"};
                int64_t *dst[] = {&o->keep, &o->max_age_days, &o->max_bytes};
                for (int i = 0; i < 3; i++) {
                        cJSON *v = cJSON_GetObjectItem(rb, keys[i]);
                        if (!v)
                                continue;
                        if (cJSON_IsNull(v))
                                *dst[i] = -1;
                        else if (cJSON_IsNumber(v) && v->valuedouble >= 0)
                                *dst[i] = (int64_t)v->valuedouble;
                        else {
                                snprintf(err, errlen, "%s: rollback.%s must be a number >= 0 or null", path,
                                         keys[i]);
                                r = -EINVAL;
                        }
                }
        }
        cJSON_Delete(j);
        return r;
}

static bool protected(nono_store *st, const struct nono_session *s)
{
        void *b = NULL;
        size_t l = 0;

        if (s->state == NONO_SESSION_RUNNING)
                return true;
        if (nono_journal_get(st, s->id, &b, &l) == 0) {
                free(b);
                return true;
        }
        return false;
}

/* fs/'s stash of a removed session ("..nono-stash.ID.ROOT" beside each root, else inside it): what is
 * left there (h<node> names that keep a multiply-linked file's inode reachable for restore, fs/cow.c) is
 * of no use without the session. Removed fd-relative without following symlinks (restore_fs.h). */
static void remove_fs_stash(const struct nono_session *s)
{
        for (size_t i = 0; s->roots && s->roots[i]; i++) {
                char name[128], *dir = strdup(s->roots[i]), *sl = dir ? strrchr(dir, '/') : NULL;
                snprintf(name, sizeof name, "..nono-stash.%s.%zu", s->id, i);
                if (sl) {
                        *(sl == dir ? sl + 1 : sl) = 0;
                        int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (d >= 0) {
                                rfs_remove_tree(d, name);
                                close(d);
                        }
                }
                free(dir);
                int r = open(s->roots[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (r >= 0) {
                        rfs_remove_tree(r, name);
                        close(r);
                }
        }
}

static int cleanup_locked(nono_store *st, const struct nono_retention *rules, bool dry_run, bool sweep,
                          FILE *out, struct nono_cleanup_result *res);

/* Not while a restore runs: it may need the pre-images a cleanup would free (nono_store_lock). */
int nono_cleanup(nono_store *st, const struct nono_retention *rules, bool dry_run, bool sweep, FILE *out,
                 struct nono_cleanup_result *res)
{
        int lk = -1, holder = 0, r;

        memset(res, 0, sizeof *res);
        if (!dry_run && (r = nono_store_lock(st, "rollback", &lk, &holder)) < 0) {
                res->busy_pid = holder;
                return r;
        }
        r = cleanup_locked(st, rules, dry_run, sweep, out, res);
        nono_store_unlock(lk);
        return r;
}

static int cleanup_locked(nono_store *st, const struct nono_retention *rules, bool dry_run, bool sweep,
                          FILE *out, struct nono_cleanup_result *res)
{
        bool running = false;
        struct nono_session *v = NULL;
        size_t n = 0; /* rollback sessions only, oldest first */
        bool *drop;
        uint64_t total = 0;
        struct timespec now;
        int r;

        memset(res, 0, sizeof *res);
        r = nono_session_list_rollback(st, &v, &n);
        if (r < 0)
                return r;
        drop = calloc(n + 1, 1);
        if (!drop) {
                nono_session_list_free(v, n);
                return -ENOMEM;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        for (size_t i = 0; i < n; i++) {
                total += v[i].preimage_bytes;
                running |= v[i].state == NONO_SESSION_RUNNING; /* its owner alive (store.h) */
        }
        /* oldest first: count, age, then bytes; the newest rollback session is always kept */
        size_t seen = 0;
        for (size_t i = 0; i < n; i++) {
                struct nono_session *s = &v[i];
                seen++;
                if (seen == n || protected(st, s))
                        continue;
                bool d = false;
                if (rules->keep >= 0 && n - seen >= (size_t)rules->keep)
                        d = true;
                if (rules->max_age_days >= 0 &&
                    now.tv_sec - s->start_ns / 1000000000LL > rules->max_age_days * 86400LL)
                        d = true;
                if (rules->max_bytes >= 0 && total > (uint64_t)rules->max_bytes)
                        d = true;
                if (!d)
                        continue;
                drop[i] = true;
                total -= s->preimage_bytes;
        }
        for (size_t i = 0; i < n; i++) {
                if (!drop[i]) {
                        res->kept++;
                        continue;
                }
                if (out)
                        fprintf(out, "%s %s (%llu bytes of pre-images)\n",
                                dry_run ? "would remove" : "removed", v[i].id,
                                (unsigned long long)v[i].preimage_bytes);
                res->removed++;
                res->bytes += v[i].preimage_bytes;
                if (!dry_run && (r = nono_session_delete(st, v[i].id)) < 0)
                        break;
                if (!dry_run)
                        remove_fs_stash(&v[i]);
        }
        if (r >= 0 && !dry_run && (res->removed || sweep))
                r = sweep && !running ? nono_store_gc_now(st, &res->gc) : nono_store_gc(st, &res->gc);
        free(drop);
        nono_session_list_free(v, n);
        return r;
}

int nono_retention_apply(nono_store *st)
{
        struct nono_retention rules;
        struct nono_cleanup_result res;
        char err[512];
        int r = nono_retention_load(&rules, err, sizeof err);

        if (r < 0) {
                fprintf(stderr, "nono: %s (automatic cleanup skipped)\n", err);
                return r;
        }
        r = nono_cleanup(st, &rules, false, false, NULL, &res);
        return r == -EBUSY ? 0 : r; /* a restore or cleanup is running: the next session applies it */
}
