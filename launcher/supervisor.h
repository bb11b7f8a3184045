/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervisor.h - the exec and network audit of the agent, through seccomp user notification.
 *
 * The sandboxed child, last thing before its final execve (after no_new_privs and after the deny filter),
 * calls nono_supervisor_install_filter(): a second seccomp filter that turns execve, execveat, connect,
 * sendto with a destination (and sendmsg/sendmmsg, see below) into notifications. The child hands the
 * returned fd to the parent and closes its copy. The parent runs nono_supervisor_start() on it: a thread
 * reads each call's arguments from the target's memory, answers CONTINUE, and appends an audit event.
 *
 * THIS IS LOGGING, NOT A SECURITY DECISION. The supervisor reads the path, argv or sockaddr from the
 * target's memory; another thread of the target can change that memory after we read it and before the
 * kernel, which re-reads the arguments itself once we answer CONTINUE, acts on them (TOCTOU). An event
 * therefore records what the agent *asked for* at the instant we looked, and the result is unknown
 * (Landlock, the deny filter, the network namespace and the proxy decide, after us). Every decision
 * belongs to those kernel mechanisms; the supervisor always answers CONTINUE to an audited call, so a bug
 * or a crash here can never grant anything (the one exception, the optional deny list below, only refuses).
 * The kernel gives the deny filter's ERRNO/KILL precedence over NOTIFY, so a syscall the deny filter refuses
 * never reaches us and stays refused.
 *
 * What it stops: nothing (it records). What an agent can do against it: race its own memory to make
 * an event lie about a target (the lie is bounded to what the kernel policy allows anyway); flood events;
 * run 32-bit x86 or x32 code, whose calls are recorded only for the native and i386 ABIs.
 */
#pragma once

#include <stdint.h>

#include "store/store.h"

/* Which calls the filter notifies. */
#define NONO_SUP_EXEC    0x1u /* execve, execveat */
#define NONO_SUP_NET     0x2u /* connect, sendto with a destination address */
#define NONO_SUP_SENDMSG 0x4u /* sendmsg, sendmmsg (every call pays a round trip: off by default) */
#define NONO_SUP_DEFAULT (NONO_SUP_EXEC | NONO_SUP_NET)

/*
 * In the child: installs the notify filter and returns its listener fd (>= 0) or a negative errno
 * (-EBUSY: an outer nono or another supervisor already listens on this process tree; the caller should go
 * on without exec audit and say so). Requires no_new_privs (or CAP_SYS_ADMIN).
 *
 * handoff_fd: the socket the child uses to send the listener to the parent with sendmsg(SCM_RIGHTS). With
 * NONO_SUP_SENDMSG, sendmsg on that fd number is exempt, or the handoff would wait for a supervisor that
 * does not have the fd yet. Pass -1 when not using NONO_SUP_SENDMSG. The child must close the listener fd
 * (and handoff_fd) before execve: an agent holding its own listener could answer its own notifications.
 */
int nono_supervisor_install_filter(unsigned what, int handoff_fd);

/*
 * The same, plus deny-and-record: the native syscalls in deny[] (numbers) are refused with EPERM by the
 * supervisor and recorded as violations (op NONO_OP_SYSCALL, path = the syscall's name). A syscall the deny
 * filter refuses with ERRNO never reaches this filter (ERRNO has precedence over NOTIFY), so nono cannot see
 * those; the sandbox moves into deny[] the ones it wants visible. This is safe as a decision because it
 * depends on the syscall number only, never on memory, and it fails closed: the supervisor answers every
 * call other than the audited ones with EPERM, and if it dies the kernel answers ENOSYS.
 */
int nono_supervisor_install_filter_deny(unsigned what, int handoff_fd, const int *deny, size_t n_deny);

/* The same in two steps, so that the program is built before it is needed (the sandbox builds it while it
 * waits for the session record): compile into prog (free prog->filter), then load it into the calling
 * thread (sets no_new_privs; returns the listener fd or a negative errno, EBUSY as above). */
struct sock_fprog;
int nono_supervisor_compile_filter_deny(unsigned what, int handoff_fd, const int *deny, size_t n_deny,
                                        struct sock_fprog *prog);
int nono_supervisor_load_filter(const struct sock_fprog *prog);
/* The program a libseccomp context (scmp_filter_ctx) builds, as BPF (free prog->filter). */
int nono_supervisor_export_bpf(void *scmp_ctx, struct sock_fprog *prog);

typedef struct nono_supervisor nono_supervisor;

/* libseccomp probes the kernel on first use (a dozen seccomp() calls) and caches the answers; the
 * supervisor's thread would do that while the agent's first execve waits for it. Call once, earlier, from
 * a thread that finishes before nono_supervisor_start (libseccomp's cache is not locked). */
void nono_supervisor_warm(void);

/* Receives each recorded event (strings valid during the call). Return value ignored. */
typedef void (*nono_supervisor_sink)(const struct nono_event *ev, void *userdata);

/*
 * In the parent: starts the supervisor thread on notify_fd (taken over: closed by _stop). Events go to
 * nono_events_append(st, session, ..., NONO_ASYNC); they are durable after nono_supervisor_stop().
 */
int nono_supervisor_start(int notify_fd, nono_store *st, const char *session, nono_supervisor **out);
/* The same with events handed to sink instead of the store (tools and tests). */
int nono_supervisor_start_sink(int notify_fd, nono_supervisor_sink sink, void *userdata,
                               nono_supervisor **out);
/* The same as nono_supervisor_start, but without a thread of its own: the caller's thread then runs it with
 * nono_supervisor_run(), which returns after nono_supervisor_stop_request() (from another thread) once
 * what was ready is answered, or when no process uses the filter any more; after_first (if not NULL) is
 * called once, after the first notification was answered (work that should not delay it). The caller
 * joins that thread before nono_supervisor_stop*(). `nono run` runs it on its session thread, which has
 * nothing else to do by then: one thread less to start while the agent's first execve waits. */
int nono_supervisor_prepare(int notify_fd, nono_store *st, const char *session, nono_supervisor **out);
/* With nono_supervisor_prepare(-1, ...) made ahead: the listener, before nono_supervisor_run. */
void nono_supervisor_set_fd(nono_supervisor *sup, int notify_fd);
void nono_supervisor_run(nono_supervisor *sup, void (*after_first)(void *), void *arg);
void nono_supervisor_stop_request(nono_supervisor *sup);

/*
 * Stops the thread after it has answered every pending notification, closes the fd, and (store mode) waits
 * until the events are durable. Call it after the agent and its descendants are gone: a process still using
 * the filter when the listener closes gets ENOSYS from the audited calls. Returns 0 or the first store error.
 * NULL is a no-op.
 */
int nono_supervisor_stop(nono_supervisor *sup);
/* The same, but the events are only queued (NONO_ASYNC): the caller's next nono_store_sync() makes them
 * durable, in the same commit as whatever else it queued (`nono run` stops the roots right after). */
int nono_supervisor_stop_queued(nono_supervisor *sup);

struct nono_supervisor_stats {
        uint64_t notifications; /* notifications received */
        uint64_t events;        /* events recorded */
        uint64_t lost;          /* notifications whose target vanished or whose memory could not be read */
        uint64_t errors;        /* store append failures */
};
void nono_supervisor_get_stats(nono_supervisor *sup, struct nono_supervisor_stats *out);
