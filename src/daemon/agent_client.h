/* The host side of the guest agent (docs/guest-agent.md): run a command in a
 * VM through its virtio-vsock unix-socket bridge, with the caller's stdin,
 * stdout and stderr, and return its exit status. Everything the guest sends
 * is checked (agent/protocol.c) before it is acted on. */
#ifndef VESSEL_DAEMON_AGENT_CLIENT_H
#define VESSEL_DAEMON_AGENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

/* How long agent_client_connect keeps trying while the VM is still booting
 * (its bridge not there yet, or nothing listening on the port in the
 * guest), in milliseconds. */
#define AGENT_CONNECT_TIMEOUT_MS 60000

/* Connect to guest port `port` through the bridge socket uds ("CONNECT
 * <port>\n", answered "OK <n>\n"), retrying until timeout_ms. A connected
 * stream socket, or -1 with err. */
int agent_client_connect(const char *uds, uint32_t port, int timeout_ms, vs_err *err);

/* Run argv in the guest over a connected agent socket (closed on return):
 * the REQUEST (envp NULL: the agent's default environment; tty: a pty in
 * the guest sized like the terminal on in), then in -> STDIN, STDOUT ->
 * out, STDERR -> err_fd until the EXIT frame. The caller's fds keep their
 * flags (they may be a user's terminal). Returns the exit status (0..255,
 * 128+N for a signal) or -1 with err (an ERROR frame's message, a guest
 * that broke the protocol, a connection that ended early). Ignore SIGPIPE
 * around it: a closed out makes the command see SIGPIPE instead. */
int agent_client_session(int conn, char *const argv[], char *const envp[], bool tty, int in,
                         int out, int err_fd, vs_err *err);

/* What else a command may ask for: a working directory (absolute), a user
 * (has_user: uid, gid) and an environment: envp as the whole environment,
 * or with add_env the agent's default with envp's entries on top. */
struct agent_exec_opts {
    const char *cwd;
    bool has_user, add_env;
    uint32_t uid, gid;
    char *const *envp;
};
int agent_client_session_ex(int conn, char *const argv[], const struct agent_exec_opts *x, bool tty,
                            int in, int out, int err_fd, vs_err *err);
int agent_client_run_ex(const char *uds, char *const argv[], const struct agent_exec_opts *x,
                        bool tty, int in, int out, int err_fd, vs_err *err);
/* agent_client_connect on AGENT_VSOCK_PORT, then agent_client_session. */
int agent_client_run(const char *uds, char *const argv[], bool tty, int in, int out, int err_fd,
                     vs_err *err);
/* The guest's `set-cpus N` (online CPUs 0..N-1, offline the rest), its
 * output to out_fd (-1: nowhere); its exit status, or -1 with err. */
int agent_set_cpus(const char *uds, unsigned n, int out_fd, vs_err *err);

#endif
