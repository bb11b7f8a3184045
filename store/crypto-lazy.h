/* SPDX-License-Identifier: Apache-2.0 */
/* crypto-lazy.h - libcrypto is loaded at first use (see crypto-lazy.c); this loads it now. */
#pragma once

#include <stdbool.h>

/* Loads libcrypto (once per process; other callers wait for it). False if it cannot be loaded. */
bool nono_crypto_preload(void);
