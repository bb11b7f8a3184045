/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore_journal.c - the restore plan and its progress as one JSON record in the store's journal, keyed by
 * the restored session. JSON because a human debugging a stuck restore can read it (`nono rollback show`
 * does not need it). It is written once, before the first change; progress (the number of steps done) is
 * a separate 8-byte store record (nono_journal_progress_put), so marking progress costs one small commit,
 * not a rewrite of a plan that is megabytes for a 10,000-file restore.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/restore_int.h"

/* JSON string as cJSON prints it: quote, backslash and control bytes escaped, other bytes as they are. */
static void put_str(FILE *f, const char *v)
{
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
                if (*c == '"' || *c == '\\')
                        fprintf(f, "\\%c", *c);
                else if (*c < 0x20)
                        fprintf(f, "\\u%04x", *c);
                else
                        fputc(*c, f);
        }
        fputc('"', f);
}

/* Written directly, not through a cJSON tree: a 10,000-file plan is 40,000 arrays, and building and
 * printing the tree cost more than the rest of the journal write. rb_journal_load() parses it with cJSON. */
int rb_journal_save(nono_store *st, const struct rb_plan *p)
{
        char *txt = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&txt, &len);
        int r;

        if (!f)
                return -ENOMEM;
        fprintf(f, "{\"v\":1,\"session\":");
        put_str(f, p->session);
        fprintf(f, ",\"restore\":");
        put_str(f, p->restore_id);
        fprintf(f, ",\"full\":%s,\"done\":%zu,\"items\":[", p->full ? "true" : "false", p->done);
        for (size_t i = 0; i < p->n_items; i++) {
                const struct rb_item *it = &p->items[i];
                fprintf(f, "%s[%u,", i ? "," : "", it->root);
                put_str(f, it->path);
                fprintf(f, ",%llu,%llu,%llu,%llu]", (unsigned long long)it->k,
                        (unsigned long long)it->cur.st_dev, (unsigned long long)it->cur.st_ino,
                        (unsigned long long)it->target);
        }
        fprintf(f, "],\"steps\":[");
        for (size_t i = 0; i < p->n_steps; i++) {
                const struct rb_step *s = &p->steps[i];
                fprintf(f, "%s[%u,%u,%u,%llu,", i ? "," : "", s->op, s->how, s->root,
                        (unsigned long long)s->node);
                put_str(f, s->path);
                fputc(',', f);
                if (s->path2)
                        put_str(f, s->path2);
                else
                        fputs("null", f);
                fputc(']', f);
        }
        fputs("]}", f);
        if (fclose(f) != 0 || !txt) {
                free(txt);
                return -ENOMEM;
        }
        r = nono_journal_put(st, p->session, txt, len);
        free(txt);
        if (r < 0)
                rb_set_err("cannot write the restore journal: %s", nono_store_errmsg());
        return r;
}

static double num(const cJSON *a, int i)
{
        const cJSON *x = cJSON_GetArrayItem(a, i);
        return cJSON_IsNumber(x) ? x->valuedouble : 0;
}

static char *str(const cJSON *a, int i)
{
        const cJSON *x = cJSON_GetArrayItem(a, i);
        return cJSON_IsString(x) ? strdup(x->valuestring) : NULL;
}

int rb_journal_load(nono_store *st, const char *session, struct rb_plan *p)
{
        void *buf = NULL;
        size_t len = 0;
        cJSON *j, *items, *steps, *x;
        int r = nono_journal_get(st, session, &buf, &len);

        if (r < 0)
                return r;
        j = cJSON_ParseWithLength(buf, len);
        free(buf);
        if (!j || !(items = cJSON_GetObjectItem(j, "items")) || !(steps = cJSON_GetObjectItem(j, "steps"))) {
                cJSON_Delete(j);
                rb_set_err("the restore journal of session %s is damaged: delete it with `nono rollback "
                           "cleanup` after checking the tree by hand",
                           session);
                return -EBADMSG;
        }
        x = cJSON_GetObjectItem(j, "restore");
        snprintf(p->restore_id, sizeof p->restore_id, "%s", cJSON_IsString(x) ? x->valuestring : "");
        p->full = cJSON_IsTrue(cJSON_GetObjectItem(j, "full"));
        x = cJSON_GetObjectItem(j, "done");
        p->done = cJSON_IsNumber(x) ? (size_t)x->valuedouble : 0;
        uint64_t done;
        if (nono_journal_progress_get(st, session, &done) == 0 && done > p->done)
                p->done = done;
        p->n_items = cJSON_GetArraySize(items);
        p->items = calloc(p->n_items + 1, sizeof *p->items);
        p->n_steps = cJSON_GetArraySize(steps);
        p->steps = calloc(p->n_steps + 1, sizeof *p->steps);
        if (!p->items || !p->steps) {
                cJSON_Delete(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < p->n_items; i++) {
                const cJSON *a = cJSON_GetArrayItem(items, i);
                struct rb_item *it = &p->items[i];
                it->root = num(a, 0);
                it->path = str(a, 1);
                it->k = num(a, 2);
                it->cur_exists = it->k != 0;
                it->cur.st_dev = num(a, 3);
                it->cur.st_ino = num(a, 4);
                it->target = num(a, 5);
                if (!it->path)
                        it->path = strdup("");
        }
        p->n_recorded = p->n_items;
        for (size_t i = 0; i < p->n_steps; i++) {
                const cJSON *a = cJSON_GetArrayItem(steps, i);
                struct rb_step *s = &p->steps[i];
                s->op = num(a, 0);
                s->how = num(a, 1);
                s->root = num(a, 2);
                s->node = num(a, 3);
                s->path = str(a, 4);
                s->path2 = str(a, 5);
                if (!s->path)
                        s->path = strdup("");
        }
        cJSON_Delete(j);
        return 0;
}
