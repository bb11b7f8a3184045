/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-audit.h - writes the proxy's attempts into a session's audit trail in the store.
 *
 * Use: struct nono_proxy_audit a = {.store = st}; copy the session id into a.session; then give the proxy
 * .on_event = nono_proxy_audit_event, .userdata = &a. Events are appended with NONO_ASYNC (the store's writer
 * batches them with everything else); call nono_store_sync() before sealing the session, after
 * nono_proxy_stop() has reported the last connections.
 */
#pragma once

#include "launcher/proxy.h"
#include "store/store.h"

struct nono_proxy_audit {
        nono_store *store;
        char session[NONO_SESSION_ID_LEN + 1];
        int error;         /* first append error (negative errno), 0 if none */
        uint64_t appended; /* events appended */
};

/* A nono_proxy_event_fn: userdata is a struct nono_proxy_audit. */
void nono_proxy_audit_event(const struct nono_proxy_event *ev, void *userdata);
