/* The guest side of one agent connection: read the REQUEST, run the command
 * (on pipes, or on a pty with AGENT_FLAG_TTY), relay its stdin, stdout and
 * stderr as frames, and end with its exit status. libc only. */
#ifndef VESSEL_AGENT_SESSION_H
#define VESSEL_AGENT_SESSION_H

/* Serve one command on the connected stream socket conn (closed on return).
 * Returns 0 when the host got an EXIT or ERROR frame, -1 when the session
 * ended early (host gone, protocol violation; the command is killed). The
 * caller ignores SIGPIPE; SIGCHLD must not be SIG_IGN (this waits for the
 * command). */
int agent_serve(int conn);

#endif
