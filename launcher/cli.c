/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c - the small helpers of cli.h, in the library so that the binary, libnono and the tests share them. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "launcher/cli.h"

int nono_err(const char *fmt, ...)
{
        va_list ap;

        fputs("nono: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

bool nono_color(FILE *f)
{
        const char *nc = getenv("NO_COLOR");

        if (nc && *nc)
                return false;
        return isatty(fileno(f));
}

void nono_json_add_i64(void *o, const char *name, long long v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%lld", v);
        cJSON_AddRawToObject(o, name, buf);
}
