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
#include <stdlib.h>
#include <string.h>

#include "launcher/restore_int.h"

int rb_journal_save(nono_store *st, const struct rb_plan *p)
{
        cJSON *j = cJSON_CreateObject(), *items, *steps;
        char *txt;
        int r;

        if (!j)
                return -ENOMEM;
        cJSON_AddNumberToObject(j, "v", 1);
        cJSON_AddStringToObject(j, "session", p->session);
        cJSON_AddStringToObject(j, "restore", p->restore_id);
        cJSON_AddBoolToObject(j, "full", p->full);
        cJSON_AddNumberToObject(j, "done", (double)p->done);
        items = cJSON_AddArrayToObject(j, "items");
        for (size_t i = 0; i < p->n_items; i++) {
                const struct rb_item *it = &p->items[i];
                cJSON *a = cJSON_CreateArray();
                cJSON_AddItemToArray(a, cJSON_CreateNumber(it->root));
                cJSON_AddItemToArray(a, cJSON_CreateString(it->path));
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)it->k));
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)it->cur.st_dev));
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)it->cur.st_ino));
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)it->target));
                cJSON_AddItemToArray(items, a);
        }
        steps = cJSON_AddArrayToObject(j, "steps");
        for (size_t i = 0; i < p->n_steps; i++) {
                const struct rb_step *s = &p->steps[i];
                cJSON *a = cJSON_CreateArray();
                cJSON_AddItemToArray(a, cJSON_CreateNumber(s->op));
                cJSON_AddItemToArray(a, cJSON_CreateNumber(s->how));
                cJSON_AddItemToArray(a, cJSON_CreateNumber(s->root));
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)s->node));
                cJSON_AddItemToArray(a, cJSON_CreateString(s->path));
                cJSON_AddItemToArray(a, s->path2 ? cJSON_CreateString(s->path2) : cJSON_CreateNull());
                cJSON_AddItemToArray(steps, a);
        }
        txt = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!txt)
                return -ENOMEM;
        r = nono_journal_put(st, p->session, txt, strlen(txt));
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
