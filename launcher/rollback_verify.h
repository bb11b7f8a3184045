/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rollback_verify.h - `nono rollback verify` as a library call: is every pre-image a session needs to be
 * restored present in the store, and does it match its SHA-256?
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "store/store.h"

struct nono_verify_counts {
        size_t objects; /* whole-file pre-images checked */
        size_t chunks;  /* captured blocks of big files checked */
        size_t bad;     /* missing or corrupt (each listed on out) */
};

/* Checks every pre-image record of session (a full id) and everything it references. Each problem is printed
 * on out (NULL: not printed) as "MISSING|CORRUPT  PATH: what". Returns 0 (read everything; counts->bad says
 * whether it is restorable) or a negative errno when the store cannot be read. */
int nono_rollback_verify(nono_store *st, const char *session, FILE *out, struct nono_verify_counts *counts);
