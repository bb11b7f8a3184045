/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-audit.c - the proxy's events into the store (see proxy-audit.h). The proxy serialises its callbacks,
 * so the counters need no lock; a failed append is kept, not fatal: the connection already happened, and the
 * session's summary reports the loss.
 */
#include "launcher/proxy-audit.h"

void nono_proxy_audit_event(const struct nono_proxy_event *ev, void *userdata)
{
        struct nono_proxy_audit *a = userdata;
        struct nono_event e;
        int r;

        nono_proxy_event_to_store(ev, &e);
        r = nono_events_append(a->store, a->session, &e, 1, NONO_ASYNC);
        if (r < 0 && !a->error)
                a->error = r;
        else if (r >= 0)
                a->appended++;
}
