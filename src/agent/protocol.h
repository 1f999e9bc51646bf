/* The guest agent's wire protocol (docs/guest-agent.md): one command per
 * vsock connection, as length-prefixed frames in both directions.
 *
 * Both ends treat what the other sends as hostile: the guest agent must not
 * trust the host's frames, and the host (the daemon) must trust the guest's
 * even less. Every frame is checked here, before anyone acts on it: its type
 * must be one the sender may send, its length within that type's limit, its
 * reserved bytes zero. This file uses nothing beyond libc, so the static
 * agent and the daemon build the same code. */
#ifndef VESSEL_AGENT_PROTOCOL_H
#define VESSEL_AGENT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_VSOCK_PORT 1024u
#define AGENT_VERSION 1u

/* header: type (u8), three zero bytes, payload length (u32 little endian) */
#define AGENT_HDR_LEN 8u
#define AGENT_DATA_MAX 65536u           /* STDIN, STDOUT, STDERR payloads */
#define AGENT_REQUEST_MAX (256u * 1024) /* the REQUEST payload */
#define AGENT_ERROR_MAX 1024u           /* an ERROR's message */
#define AGENT_MAX_ARGS 4096u
#define AGENT_MAX_ENV 4096u

enum agent_frame_type {
    /* host -> guest */
    AGENT_REQUEST = 0x01,   /* first frame, once: the command */
    AGENT_STDIN = 0x02,     /* bytes for the command's stdin */
    AGENT_STDIN_EOF = 0x03, /* no more stdin */
    AGENT_RESIZE = 0x04,    /* u16 rows, u16 cols: the terminal's new size */
    AGENT_SIGNAL = 0x05,    /* u32 signal number for the command's process group */
    /* guest -> host */
    AGENT_STDOUT = 0x81,
    AGENT_STDERR = 0x82,
    AGENT_EXIT = 0x83,  /* u32: exit code 0..255 (128 + N for signal N); last frame */
    AGENT_ERROR = 0x84, /* text: the command could not be run at all; last frame */
};

/* Who sent the bytes being parsed. */
enum agent_sender { AGENT_FROM_HOST, AGENT_FROM_GUEST };

/* REQUEST flags */
#define AGENT_FLAG_TTY 1u
#define AGENT_FLAG_CWD 2u  /* one more string after the environment: the working directory */
#define AGENT_FLAG_USER 4u /* u32 uid, u32 gid between the fixed fields and the strings */
#define AGENT_FLAGS_KNOWN (AGENT_FLAG_TTY | AGENT_FLAG_CWD | AGENT_FLAG_USER)

struct agent_frame {
    uint8_t type;
    uint32_t len;
    const uint8_t *payload; /* len bytes, inside the buffer that was parsed */
};

/* A decoded REQUEST; owns its memory (agent_request_free). */
struct agent_request {
    uint32_t flags;
    uint16_t rows, cols; /* the terminal's size with AGENT_FLAG_TTY; 0 = unknown */
    uint32_t argc, envc;
    char **argv; /* argc strings, NULL-terminated */
    char **envp; /* envc strings, NULL-terminated; NULL when envc is 0 (the agent's default) */
    char *cwd;   /* with AGENT_FLAG_CWD: an absolute path; else NULL ("/") */
    uint32_t uid, gid; /* with AGENT_FLAG_USER */
    char *mem;
};

/* Write a frame header for type and len into out[AGENT_HDR_LEN]. */
void agent_frame_header(uint8_t *out, uint8_t type, uint32_t len);

/* Look for one whole frame at the start of buf[0..n) sent by `from`.
 * Returns the frame's total size (header + payload) and fills f; 0 when more
 * bytes are needed (a header that is there is checked already, so a bad
 * length is refused before its payload arrives); -1 with *why for a frame
 * that breaks the protocol. */
long agent_frame_parse(const uint8_t *buf, size_t n, enum agent_sender from, struct agent_frame *f,
                       const char **why);

/* A whole REQUEST frame (header included) in malloc'd memory, *len its
 * size; NULL with *why when argv is empty or the request is over a limit. */
uint8_t *agent_request_build(uint32_t flags, uint16_t rows, uint16_t cols, char *const argv[],
                             char *const envp[], size_t *len, const char **why);
/* The same with a working directory (cwd non-NULL sets AGENT_FLAG_CWD) and a
 * user (AGENT_FLAG_USER in flags: uid and gid). */
uint8_t *agent_request_build_ex(uint32_t flags, uint16_t rows, uint16_t cols, char *const argv[],
                                char *const envp[], const char *cwd, uint32_t uid, uint32_t gid,
                                size_t *len, const char **why);
/* Decode a REQUEST payload: 0, or -1 with *why (nothing to free then). */
int agent_request_decode(const uint8_t *p, uint32_t len, struct agent_request *r, const char **why);
void agent_request_free(struct agent_request *r);

/* Payloads of the small frames: 0, or -1 with *why. */
int agent_exit_decode(const struct agent_frame *f, int *status, const char **why);
int agent_signal_decode(const struct agent_frame *f, int *sig, const char **why);
int agent_resize_decode(const struct agent_frame *f, uint16_t *rows, uint16_t *cols,
                        const char **why);
void agent_put_u32(uint8_t *p, uint32_t v);
uint32_t agent_get_u32(const uint8_t *p);

/* A byte stream cut into frames: read into agent_reader_space(), commit
 * what arrived, take frames with agent_reader_next(). The buffer holds one
 * largest frame, so a sender cannot make the reader grow. */
struct agent_reader {
    uint8_t *buf;
    size_t cap, start, end;
};

int agent_reader_init(struct agent_reader *r, size_t max_payload);
void agent_reader_free(struct agent_reader *r);
/* Room to read into (compacting first); *room is 0 while a whole frame
 * waits to be taken. */
uint8_t *agent_reader_space(struct agent_reader *r, size_t *room);
void agent_reader_commit(struct agent_reader *r, size_t n);
/* 1 and f (valid until the next call that changes r), 0 when more bytes are
 * needed, -1 with *why. */
int agent_reader_next(struct agent_reader *r, enum agent_sender from, struct agent_frame *f,
                      const char **why);

#endif
