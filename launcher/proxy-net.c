/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy-net.c - the ends of the proxy in `nono run`: the listening socket made inside the agent's network
 * namespace, and the environment that points the agent's tools at it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/proxy.h"
#include "store/store.h"

int nono_proxy_listen(const char *addr, uint16_t port, uint16_t *bound_port)
{
        struct sockaddr_storage ss = {0};
        socklen_t sl;
        int fd, one = 1;

        if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
                ss.ss_family = AF_INET;
                ((struct sockaddr_in *)&ss)->sin_port = htons(port);
                sl = sizeof(struct sockaddr_in);
        } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
                ss.ss_family = AF_INET6;
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
                sl = sizeof(struct sockaddr_in6);
        } else {
                return -EINVAL;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        if (bound_port)
                *bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
        return fd;
}

int nono_proxy_listener_create(uint16_t *port)
{
        return nono_proxy_listen("127.0.0.1", *port, port);
}

void nono_proxy_event_to_store(const struct nono_proxy_event *ev, struct nono_event *out)
{
        memset(out, 0, sizeof(*out));
        out->time_ns = ev->time_ns;
        out->type = NONO_EV_NET;
        out->op = NONO_OP_PROXY;
        out->result = ev->result;
        out->flags = ev->allowed ? 0 : NONO_EVF_VIOLATION;
        out->oflags = (uint32_t)ev->family;
        out->bytes_read = ev->bytes_down;
        out->bytes_written = ev->bytes_up;
        out->detail = ev->detail;
}

static const char *const proxy_vars[] = {"HTTP_PROXY",  "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                         "https_proxy", "all_proxy",   NULL};
static const char *const no_proxy_vars[] = {"NO_PROXY", "no_proxy", NULL};
#define NO_PROXY_VALUE "localhost,127.0.0.1,::1"

/* Replaces or appends NAME=VALUE in *envp (size *n, NULL-terminated). */
static int env_put(char ***envp, size_t *n, const char *name, const char *value)
{
        size_t nl = strlen(name);
        char *entry;

        if (asprintf(&entry, "%s=%s", name, value) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++) {
                if (!strncmp((*envp)[i], name, nl) && (*envp)[i][nl] == '=') {
                        free((*envp)[i]);
                        (*envp)[i] = entry;
                        return 0;
                }
        }
        char **v = realloc(*envp, (*n + 2) * sizeof(char *));
        if (!v) {
                free(entry);
                return -ENOMEM;
        }
        v[(*n)++] = entry;
        v[*n] = NULL;
        *envp = v;
        return 0;
}

int nono_proxy_env(uint16_t port, char ***envp)
{
        char url[64];
        size_t n = 0;
        int ret = 0;

        snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
        while (*envp && (*envp)[n])
                n++;
        if (!*envp) {
                *envp = calloc(1, sizeof(char *));
                if (!*envp)
                        return -ENOMEM;
        }
        for (size_t i = 0; ret == 0 && proxy_vars[i]; i++)
                ret = env_put(envp, &n, proxy_vars[i], url);
        for (size_t i = 0; ret == 0 && no_proxy_vars[i]; i++)
                ret = env_put(envp, &n, no_proxy_vars[i], NO_PROXY_VALUE);
        return ret;
}

int nono_proxy_setenv(uint16_t port)
{
        char url[64];

        snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
        for (size_t i = 0; proxy_vars[i]; i++)
                if (setenv(proxy_vars[i], url, 1) < 0)
                        return -errno;
        for (size_t i = 0; no_proxy_vars[i]; i++)
                if (setenv(no_proxy_vars[i], NO_PROXY_VALUE, 1) < 0)
                        return -errno;
        return 0;
}
