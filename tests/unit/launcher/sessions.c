/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sessions.c - nono-sessions, a probe for the e2e tests: prints every session of the store under $NONO_HOME,
 * one per line: "ID STATE EXIT ROLLBACK ARGV..." (STATE: running, finished, crashed, restored).
 */
#include <stdio.h>

#include "store/store.h"

int main(void)
{
        static const char *const states[] = {"running", "finished", "crashed", "restored"};
        nono_store *st;
        struct nono_session *v;
        size_t n;

        if (nono_store_open(NULL, NONO_STORE_RDONLY, &st) < 0 || nono_session_list(st, &v, &n) < 0) {
                fprintf(stderr, "nono-sessions: %s\n", nono_store_errmsg());
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                printf("%s %s %d %d", v[i].id, v[i].state < 4 ? states[v[i].state] : "?", v[i].exit_status,
                       v[i].rollback);
                for (size_t k = 0; v[i].argv && v[i].argv[k]; k++)
                        printf(" %s", v[i].argv[k]);
                putchar('\n');
        }
        nono_session_list_free(v, n);
        nono_store_close(st);
        return 0;
}
