/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox-chan.c - see sandbox-chan.h. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher/sandbox-chan.h"

int nono_chan_send(int sock, const struct nono_chan_msg *m, int fd)
{
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        size_t len = offsetof(struct nono_chan_msg, data) +
                     (m->len > NONO_CHAN_DATA_MAX ? NONO_CHAN_DATA_MAX : m->len);
        struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (fd >= 0) {
                memset(&u, 0, sizeof(u));
                mh.msg_control = u.buf;
                mh.msg_controllen = sizeof(u.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        for (;;) {
                ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
                if (n >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

int nono_chan_recv(int sock, struct nono_chan_msg *m, int *fd)
{
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
        ssize_t n;

        *fd = -1;
        memset(m, 0, sizeof(*m));
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(fd, CMSG_DATA(c), sizeof(int));
        if ((size_t)n < offsetof(struct nono_chan_msg, data))
                return -EBADMSG;
        if (m->len > NONO_CHAN_DATA_MAX)
                m->len = NONO_CHAN_DATA_MAX;
        if (m->len)
                m->data[m->len - 1] = '\0';
        return 1;
}

int nono_chan_call(int sock, const struct nono_chan_msg *m, int fd, struct nono_chan_msg *reply)
{
        int rfd, r = nono_chan_send(sock, m, fd);

        if (r < 0)
                return r;
        r = nono_chan_recv(sock, reply, &rfd);
        if (rfd >= 0)
                close(rfd);
        if (r == 0)
                return -EPIPE;
        return r < 0 ? r : reply->status;
}
