/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - libnono: the public API of nono.h over the libraries the `nono` command is built from (store/,
 * the run engine, the rollback engine, the audit reader). No logic of its own beyond translating structs and
 * errors: the command and the API must not drift apart.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/audit.h"
#include "launcher/diff_show.h"
#include "launcher/nono.h"
#include "launcher/restore.h"
#include "launcher/rollback_verify.h"
#include "launcher/run.h"
#include "store/store.h"

#define EXPORT __attribute__((visibility("default")))

struct nono_api {
        nono_store *st;
};

static __thread char last_error[1024];

static int fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(last_error, sizeof last_error, fmt, ap);
        va_end(ap);
        return r;
}

static int store_fail(int r, const char *what, const char *id)
{
        if (r == -ENOENT && id)
                return fail(r, "no session '%s': list them with nono_api_sessions()", id);
        if (r == -EEXIST && id)
                return fail(r, "'%s' matches several sessions: give more of the id", id);
        return fail(r, "%s: %s", what, *nono_store_errmsg() ? nono_store_errmsg() : strerror(-r));
}

EXPORT int nono_api_version(void)
{
        return NONO_API_VERSION;
}

EXPORT const char *nono_api_error(void)
{
        return last_error;
}

/* ---- run ---------------------------------------------------------------------------------------------- */

EXPORT int nono_api_run(const struct nono_api_run_opts *o, char *const argv[])
{
        static const struct nono_api_run_opts none;
        if (!o)
                o = &none;
        if ((!argv || !argv[0]) && !o->dry_run) {
                fail(-EINVAL, "no command given: pass argv with the command in argv[0]");
                return 2;
        }
        struct nono_policy_flags f = {
            .profile = o->profile,
            .workdir = o->workdir,
            .allow = (char **)o->allow,
            .read = (char **)o->read,
            .allow_domain = (char **)o->allow_domains,
            .allow_net = o->allow_net,
            .rollback = o->rollback,
            .no_audit = o->no_audit,
        };
        char *empty[] = {NULL};
        last_error[0] = 0;
        return nono_run_recorded(&f, argv ? (char **)argv : empty, o->dry_run, o->json, o->summary);
}

/* ---- store and sessions ------------------------------------------------------------------------------- */

EXPORT int nono_api_open(const char *home, bool read_only, nono_api **out)
{
        *out = NULL;
        struct nono_api *n = calloc(1, sizeof(*n));
        if (!n)
                return fail(-ENOMEM, "out of memory");
        int r = nono_store_open(home, read_only ? NONO_STORE_RDONLY : 0, &n->st);
        if (r < 0) {
                free(n);
                return store_fail(r, "cannot open the store", NULL);
        }
        last_error[0] = 0;
        *out = n;
        return 0;
}

EXPORT void nono_api_close(nono_api *n)
{
        if (!n)
                return;
        nono_store_close(n->st);
        free(n);
}

static char **strv_dup(char *const *v)
{
        size_t k = 0;
        while (v && v[k])
                k++;
        char **d = calloc(k + 1, sizeof(*d));
        for (size_t i = 0; d && i < k; i++)
                if (!(d[i] = strdup(v[i]))) {
                        while (i--)
                                free(d[i]);
                        free(d);
                        return NULL;
                }
        return d;
}

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

EXPORT void nono_api_session_clear(struct nono_api_session *s)
{
        if (!s)
                return;
        free(s->parent);
        free(s->cwd);
        strv_free(s->argv);
        strv_free(s->roots);
        memset(s, 0, sizeof(*s));
}

EXPORT void nono_api_sessions_free(struct nono_api_session *v, size_t count)
{
        for (size_t i = 0; i < count; i++)
                nono_api_session_clear(&v[i]);
        free(v);
}

static int convert(nono_api *n, const struct nono_session *s, struct nono_api_session *o)
{
        memset(o, 0, sizeof(*o));
        snprintf(o->id, sizeof(o->id), "%s", s->id);
        o->state = (int)s->state;
        o->is_restore = s->kind == NONO_SESSION_RESTORE;
        o->rollback = s->rollback;
        o->start_ns = s->start_ns;
        o->end_ns = s->end_ns;
        o->exit_status = s->exit_status;
        o->preimage_bytes = s->preimage_bytes;
        o->argv = strv_dup(s->argv);
        o->roots = strv_dup(s->roots);
        o->cwd = s->cwd ? strdup(s->cwd) : NULL;
        o->parent = s->parent ? strdup(s->parent) : NULL;
        if (!o->argv || !o->roots || (s->cwd && !o->cwd) || (s->parent && !o->parent)) {
                nono_api_session_clear(o);
                return fail(-ENOMEM, "out of memory");
        }
        if (s->rollback) {
                struct nono_changes c = {0};
                int r = nono_changes_load(n->st, s->id, NULL, NULL, 0, &c);
                if (r < 0) {
                        nono_api_session_clear(o);
                        return store_fail(r, "cannot read the changes of the session", NULL);
                }
                o->created = c.created;
                o->modified = c.modified + c.renamed;
                o->deleted = c.deleted;
                nono_changes_free(&c);
        }
        return 0;
}

EXPORT int nono_api_session(nono_api *n, const char *id, struct nono_api_session *out)
{
        struct nono_session s = {0};
        int r = nono_session_get(n->st, id, &s);
        if (r < 0)
                return store_fail(r, "cannot read the session", id);
        r = convert(n, &s, out);
        nono_session_clear(&s);
        return r;
}

EXPORT int nono_api_sessions(nono_api *n, struct nono_api_session **out, size_t *count)
{
        struct nono_session *v = NULL;
        size_t k = 0;
        *out = NULL;
        *count = 0;
        int r = nono_session_list(n->st, &v, &k);
        if (r < 0)
                return store_fail(r, "cannot list sessions", NULL);
        struct nono_api_session *o = calloc(k ? k : 1, sizeof(*o));
        if (!o) {
                nono_session_list_free(v, k);
                return fail(-ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < k; i++)
                if ((r = convert(n, &v[i], &o[i])) < 0) {
                        nono_api_sessions_free(o, i);
                        nono_session_list_free(v, k);
                        return r;
                }
        nono_session_list_free(v, k);
        *out = o;
        *count = k;
        return 0;
}

/* ---- events ------------------------------------------------------------------------------------------- */

struct ev_ctx {
        nono_api_event_cb cb;
        void *userdata;
};

static int on_event(const struct nono_event *ev, void *u)
{
        struct ev_ctx *c = u;
        struct nono_api_event e = {
            .seq = ev->seq,
            .time_ns = ev->time_ns,
            .pid = ev->pid,
            .uid = ev->uid,
            .type = nono_event_type_name(ev->type),
            .op = nono_op_name(ev->op),
            .result = ev->result,
            .violation = ev->flags & NONO_EVF_VIOLATION,
            .root = ev->root,
            .path = ev->path,
            .path2 = ev->path2,
            .detail = ev->detail,
            .open_flags = ev->oflags,
            .bytes_read = ev->bytes_read,
            .bytes_written = ev->bytes_written,
            .bytes_counted = !(ev->flags & NONO_EVF_UNCOUNTED),
            .data_changed = ev->bytes_written > 0 || (ev->flags & NONO_EVF_DATA_CHANGED),
        };
        return c->cb(&e, c->userdata);
}

EXPORT int nono_api_events(nono_api *n, const char *id, uint64_t from, nono_api_event_cb cb, void *userdata)
{
        struct nono_session s = {0};
        int r = nono_session_get(n->st, id, &s);
        if (r < 0)
                return store_fail(r, "cannot read the session", id);
        struct ev_ctx c = {cb, userdata};
        r = nono_events_iterate(n->st, s.id, from ? from : 1, on_event, &c);
        nono_session_clear(&s);
        if (r < 0)
                return fail(r, "reading the events stopped: %s",
                            *nono_store_errmsg() ? nono_store_errmsg() : strerror(-r));
        return r;
}

/* ---- rollback ----------------------------------------------------------------------------------------- */

EXPORT int nono_api_show(nono_api *n, const char *id, const char *const *paths, int mode, bool color,
                         FILE *out)
{
        struct nono_session s = {0};
        struct nono_changes c = {0};
        size_t np = 0, ns = 0;
        int r;

        if (mode < NONO_API_SHOW_NAMES || mode > NONO_API_SHOW_JSON)
                return fail(-EINVAL, "unknown show mode %d: use one of NONO_API_SHOW_*", mode);
        if ((r = nono_session_get(n->st, id, &s)) < 0)
                return store_fail(r, "cannot read the session", id);
        while (paths && paths[np])
                np++;
        uint32_t *sr = calloc(np + 1, sizeof(*sr));
        char **sp = calloc(np + 1, sizeof(*sp));
        if (!sr || !sp) {
                r = fail(-ENOMEM, "out of memory");
                goto out;
        }
        for (; ns < np; ns++)
                if (nono_rollback_user_path(s.roots, paths[ns], &sr[ns], &sp[ns]) < 0) {
                        r = fail(-ENOENT, "%s is not inside any root of session %s (%s)", paths[ns], s.id,
                                 s.roots && s.roots[0] ? s.roots[0] : "no roots");
                        goto out;
                }
        if ((r = nono_changes_load(n->st, s.id, sr, sp, ns, &c)) < 0) {
                r = store_fail(r, "cannot read the changes of the session", NULL);
                goto out;
        }
        static const enum nono_show_mode modes[] = {NONO_SHOW_NAMES, NONO_SHOW_STAT, NONO_SHOW_DIFF,
                                                    NONO_SHOW_JSON};
        if ((r = nono_show(n->st, &s, &c, modes[mode], color, out ? out : stdout)) < 0)
                r = fail(r, "cannot show session %s: %s", s.id, strerror(-r));
out:
        for (size_t i = 0; sp && i < ns; i++)
                free(sp[i]);
        free(sp);
        free(sr);
        nono_changes_free(&c);
        nono_session_clear(&s);
        return r < 0 ? r : 0;
}

EXPORT int nono_api_verify(nono_api *n, const char *id, FILE *out)
{
        struct nono_session s = {0};
        struct nono_verify_counts vc;
        int r = nono_session_get(n->st, id, &s);
        if (r < 0)
                return store_fail(r, "cannot read the session", id);
        r = nono_rollback_verify(n->st, s.id, out, &vc);
        if (r < 0)
                r = store_fail(r, "cannot read the pre-images", NULL);
        else if (vc.bad)
                r = fail(-EBADMSG,
                         "session %s: %zu pre-image(s) missing or corrupt: those paths cannot be restored "
                         "exactly",
                         s.id, vc.bad);
        nono_session_clear(&s);
        return r;
}

EXPORT int nono_api_restore(nono_api *n, const char *id, const char *const *paths, unsigned flags, FILE *out,
                            struct nono_api_restore_result *res)
{
        size_t np = 0;
        while (paths && paths[np])
                np++;
        char *argv[] = {"nono_api_restore", (char *)id, NULL};
        struct nono_restore_opts ro = {
            .paths = paths,
            .n_paths = np,
            .dry_run = flags & NONO_API_RESTORE_DRY_RUN,
            .force = flags & NONO_API_RESTORE_FORCE,
            .progress = flags & NONO_API_RESTORE_PROGRESS,
            .argv = argv,
            .out = out,
        };
        struct nono_restore_report rep = {0};
        int r = nono_restore(n->st, id, &ro, &rep);
        if (res) {
                memset(res, 0, sizeof(*res));
                snprintf(res->restore_id, sizeof(res->restore_id), "%s", rep.restore_id);
                res->restored = rep.restored;
                res->removed = rep.removed;
                res->created = rep.created;
                res->conflicts = rep.conflicts;
                res->resumed = rep.resumed;
        }
        if (r < 0)
                return fail(r, "%s", *nono_restore_errmsg() ? nono_restore_errmsg() : strerror(-r));
        last_error[0] = 0;
        return 0;
}
