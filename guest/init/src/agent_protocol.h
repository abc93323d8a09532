/*
 * The guest agent's wire protocol, versions 1 and 2 (docs/agent-protocol.md is the
 * specification; src/agent/protocol.ts mirrors these constants and a host test
 * checks that it does).
 */
#ifndef VMRUN_AGENT_PROTOCOL_H
#define VMRUN_AGENT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/** The guest's AF_VSOCK port the agent listens on. */
#define AGENT_VSOCK_PORT 1024u

#define AGENT_MAGIC 0x564d4147u /* "VMAG" */
/** The newest version this agent speaks, and the oldest it still serves. */
#define AGENT_PROTOCOL_VERSION 3u
#define AGENT_PROTOCOL_MIN_VERSION 1u

#define AGENT_HEADER_BYTES 12u
#define AGENT_MAX_PAYLOAD 262144u
#define AGENT_MAX_CONNECTIONS 16u
#define AGENT_MAX_SESSIONS 32u
#define AGENT_MAX_ARGS 4096u
#define AGENT_MAX_ENV 4096u
#define AGENT_MAX_PATH 4095u
#define AGENT_MAX_USER 256u
#define AGENT_INITIAL_WINDOW 1048576u
#define AGENT_MAX_ERROR_MESSAGE 1024u
/** RUN's supplementary groups (docker --group-add), each at most AGENT_MAX_USER bytes. */
#define AGENT_MAX_GROUPS 64u
/** IDENTITY: entropy bytes mixed into the guest's pool, and the hostname's length. */
#define AGENT_MAX_ENTROPY 512u
#define AGENT_MAX_HOSTNAME 64u
/** After the workload's EXIT, how long the agent waits for the client to close before powering off. */
#define AGENT_WORKLOAD_CLOSE_WAIT_MS 5000
/** Output the agent buffers per connection before it stops reading programs' output. */
#define AGENT_OUTPUT_HIGH_WATER (1u << 20)

enum agent_message_type {
  AGENT_HELLO = 1,
  AGENT_EXEC = 2,
  AGENT_COPY_IN = 3,
  AGENT_COPY_OUT = 4,
  AGENT_STARTED = 5,
  AGENT_STDIN = 6,
  AGENT_STDOUT = 7,
  AGENT_STDERR = 8,
  AGENT_WINDOW = 9,
  AGENT_RESIZE = 10,
  AGENT_SIGNAL = 11,
  AGENT_EXIT = 12,
  AGENT_ERROR = 13,
  AGENT_RUN = 14,      /* version 2 */
  AGENT_IDENTITY = 15, /* version 2 */
  AGENT_VOLUMES = 16,  /* version 3 */
};

/** VOLUMES' operation: unmount every volume before a save, mount them again after it. */
enum agent_volumes_op { AGENT_VOLUMES_DETACH = 1, AGENT_VOLUMES_ATTACH = 2 };

enum agent_exec_flags {
  AGENT_EXEC_TTY = 1u << 0,
  AGENT_EXEC_STDIN = 1u << 1,
  AGENT_EXEC_REPLACE_ENV = 1u << 2,
};
#define AGENT_EXEC_KNOWN_FLAGS (AGENT_EXEC_TTY | AGENT_EXEC_STDIN | AGENT_EXEC_REPLACE_ENV)

enum agent_copy_flags {
  AGENT_COPY_INTO_DIR = 1u << 0,
};

enum agent_channel { AGENT_CHANNEL_STDIN = 0, AGENT_CHANNEL_STDOUT = 1, AGENT_CHANNEL_STDERR = 2 };

enum agent_error_code {
  AGENT_ERROR_PROTOCOL = 1,
  AGENT_ERROR_LIMIT = 2,
  AGENT_ERROR_UNSUPPORTED = 3,
  AGENT_ERROR_FAILED = 4,
};

/** A frame's header, decoded. */
struct agent_frame_header {
  uint32_t length;
  uint32_t stream;
  uint8_t type;
  uint8_t flags;
  uint16_t reserved;
};

/** A bounded reader over one payload: every read checks the remaining length. */
struct agent_cursor {
  const unsigned char *p;
  size_t left;
  int bad; /* set by the first read past the end or a malformed string */
};

void agent_put_u16(unsigned char *p, uint16_t v);
void agent_put_u32(unsigned char *p, uint32_t v);
uint32_t agent_get_u32(const unsigned char *p);
void agent_decode_header(const unsigned char *p, struct agent_frame_header *out);
void agent_encode_header(unsigned char *p, uint32_t length, uint32_t stream, uint8_t type);

uint16_t agent_cursor_u16(struct agent_cursor *c);
uint32_t agent_cursor_u32(struct agent_cursor *c);
/**
 * Reads a string of at most `max` bytes into a new NUL-terminated heap copy; NULL
 * (and `bad`) when it is too long, runs past the payload or contains a NUL byte.
 */
char *agent_cursor_string(struct agent_cursor *c, size_t max);
/** Reads a u32 length and that many raw bytes (at most `max`); returns a pointer into the payload. */
const unsigned char *agent_cursor_bytes(struct agent_cursor *c, size_t max, size_t *len);

#endif
