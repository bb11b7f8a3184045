/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile_doc.h - one profile file as read from disk or from the binary: its text, its parsed JSON and the
 * position index for error messages. Shared by the profile modules only (profile.h is the public contract).
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "launcher/jsonpos.h"
#include "launcher/profile.h"

struct nono_profile_doc {
        char *name;   /* the profile's name: the file name without .json */
        char *origin; /* "built-in", "user", "file" */
        char *file;   /* display name */
        char *id;     /* identity for cycle detection: "builtin:NAME" or the real path */
        char *dir;    /* directory of the file (relative extends), NULL for built-ins */
        char *text;
        size_t len;
        cJSON *json; /* NULL when the text is not valid JSON */
        struct jsonpos pos;
};

/* Finds ref: a file path (contains '/' or ends in ".json"; relative to from's directory, or the cwd), or a
 * name (a user profile, else a built-in; from a user profile that overrides built-in NAME, "NAME" means
 * the built-in). Reads and parses it; a syntax error is reported in d and leaves doc->json NULL.
 * Returns 0, -ENOENT (not found: nothing reported), other negative errno (reported in d). */
int nono_profile_doc_open(const char *ref, const struct nono_profile_doc *from, struct nono_profile_doc **out,
                          struct nono_diags *d);
void nono_profile_doc_free(struct nono_profile_doc *doc);

/* A diagnostic at pointer (its member name when key is true) in doc. */
void nono_doc_diag(const struct nono_profile_doc *doc, struct nono_diags *d, int severity,
                   const char *pointer, bool key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Checks one document against the schema, plus what only this document decides: its name, override,
 * variables, removed deny groups, duplicate keys. Returns the number of errors added. */
size_t nono_profile_doc_check(const struct nono_profile_doc *doc, struct nono_diags *d);
