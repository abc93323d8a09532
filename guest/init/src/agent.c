/*
 * The agent's poll loop: connections (frames in, frames out), their streams (child
 * processes' pipes or ptys), and SIGCHLD through a signalfd. Every buffer has a
 * bound: a connection's input holds one frame, its output stops growing from child
 * output at AGENT_OUTPUT_HIGH_WATER, and a stream's stdin holds at most the window
 * it granted.
 */
#include "agent.h"
#include "agent_protocol.h"
#include "guest_identity.h"
#include "volumes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* <linux/vm_sockets.h> is not in musl's headers; this is its sockaddr_vm. */
struct agent_sockaddr_vm {
  sa_family_t svm_family;
  unsigned short svm_reserved1;
  unsigned int svm_port;
  unsigned int svm_cid;
  unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) - sizeof(unsigned short) - 2 * sizeof(unsigned int)];
};
#define AGENT_VMADDR_CID_ANY 0xffffffffu

/** Bytes of child output read per frame. */
#define READ_CHUNK AGENT_MAX_PAYLOAD

struct session {
  int used;
  uint32_t id;
  pid_t pid;
  int tty;
  int in_fd, out_fd, err_fd;
  uint32_t in_credit; /* what the client may still send; in_credit + in_len == the window */
  unsigned char *in_buf;
  size_t in_off, in_len;
  int in_eof;
  uint32_t out_credit, err_credit;
  int out_done, err_done; /* end-of-data frame sent */
  int exited;
  int wait_status;
  int workload; /* started by RUN: the VM ends with it */
};

struct connection {
  int fd; /* -1: slot free */
  int handshaken;
  uint16_t version; /* negotiated in HELLO */
  int closing; /* a fatal error was sent: flush, then close */
  unsigned char *in;
  size_t in_len;
  unsigned char *out;
  size_t out_off, out_len, out_cap;
  struct session sessions[AGENT_MAX_SESSIONS];
};

static struct connection conns[AGENT_MAX_CONNECTIONS];
static const struct agent_defaults *defaults;

/*
 * The workload a RUN started (at most one per agent). Once its status is known and
 * sent, the VM ends when the client closes its connection (so it has every byte of
 * output), or AGENT_WORKLOAD_CLOSE_WAIT_MS later at the latest.
 */
static struct {
  int started;
  int ended;            /* status known */
  int status;
  struct connection *conn;
  int conn_closed;
  long long deadline_ms;
} workload;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void workload_status_known(struct connection *c, int status) {
  workload.ended = 1;
  workload.status = status;
  workload.conn = c;
  workload.deadline_ms = now_ms() + AGENT_WORKLOAD_CLOSE_WAIT_MS;
}

static void log_line(const char *msg) { dprintf(2, "vmrun-agent: %s\n", msg); }

/* ---- output framing ---- */

/* Reserves room for `n` more bytes of output; 0, or -1 when memory ran out. */
static int out_reserve(struct connection *c, size_t n) {
  if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
  if (c->out_len + n <= c->out_cap) return 0;
  if (c->out_off) {
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
    if (c->out_len + n <= c->out_cap) return 0;
  }
  size_t cap = c->out_cap ? c->out_cap : 64 * 1024;
  while (cap < c->out_len + n) cap *= 2;
  unsigned char *grown = realloc(c->out, cap);
  if (!grown) return -1;
  c->out = grown;
  c->out_cap = cap;
  return 0;
}

static size_t out_pending(const struct connection *c) { return c->out_len - c->out_off; }

static void send_frame(struct connection *c, uint32_t stream, uint8_t type, const void *payload, size_t len) {
  if (c->closing || out_reserve(c, AGENT_HEADER_BYTES + len)) return;
  agent_encode_header(c->out + c->out_len, (uint32_t)len, stream, type);
  if (len) memcpy(c->out + c->out_len + AGENT_HEADER_BYTES, payload, len);
  c->out_len += AGENT_HEADER_BYTES + len;
}

static void send_u32s(struct connection *c, uint32_t stream, uint8_t type, uint32_t a, uint32_t b, int count) {
  unsigned char p[8];
  agent_put_u32(p, a);
  agent_put_u32(p + 4, b);
  send_frame(c, stream, type, p, (size_t)count * 4);
}

static void send_error(struct connection *c, uint32_t stream, uint32_t code, const char *message) {
  unsigned char p[8 + AGENT_MAX_ERROR_MESSAGE];
  size_t len = strlen(message);
  if (len > AGENT_MAX_ERROR_MESSAGE) len = AGENT_MAX_ERROR_MESSAGE;
  agent_put_u32(p, code);
  agent_put_u32(p + 4, (uint32_t)len);
  memcpy(p + 8, message, len);
  send_frame(c, stream, AGENT_ERROR, p, 8 + len);
}

/* A malformed frame: say why on stream 0, then the connection closes (and only it). */
static void protocol_violation(struct connection *c, uint32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void protocol_violation(struct connection *c, uint32_t code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  send_error(c, 0, code, msg);
  c->closing = 1;
}

/* ---- sessions ---- */

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void session_free(struct session *s) {
  close_fd(&s->in_fd);
  close_fd(&s->out_fd);
  close_fd(&s->err_fd);
  free(s->in_buf);
  memset(s, 0, sizeof *s);
  s->in_fd = s->out_fd = s->err_fd = -1;
}

static struct session *session_find(struct connection *c, uint32_t id) {
  for (unsigned i = 0; i < AGENT_MAX_SESSIONS; i++)
    if (c->sessions[i].used && c->sessions[i].id == id) return &c->sessions[i];
  return NULL;
}

static void connection_close(struct connection *c) {
  for (unsigned i = 0; i < AGENT_MAX_SESSIONS; i++) {
    struct session *s = &c->sessions[i];
    if (!s->used) continue;
    if (!s->exited) kill(s->pid, SIGKILL);
    /* The host left while the workload ran: it is killed, and the VM ends like docker's would. */
    if (s->workload && !workload.ended) workload_status_known(c, 128 + SIGKILL);
    session_free(s);
  }
  if (workload.ended && workload.conn == c) workload.conn_closed = 1;
  close(c->fd);
  free(c->in);
  free(c->out);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* docker's status for a wait status; and the killing signal, if any. */
static uint32_t docker_status(int ws, uint32_t *signal) {
  *signal = 0;
  if (WIFEXITED(ws)) return (uint32_t)WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) {
    *signal = (uint32_t)WTERMSIG(ws);
    return 128 + *signal;
  }
  return 125;
}

/* A stream ends once its program exited and both output channels sent their end. */
static void session_maybe_finish(struct connection *c, struct session *s) {
  if (!s->used || !s->exited || !s->out_done || !s->err_done) return;
  uint32_t sig, code = docker_status(s->wait_status, &sig);
  send_u32s(c, s->id, AGENT_EXIT, code, sig, 2);
  if (s->workload) workload_status_known(c, (int)code);
  session_free(s);
}

static void channel_end(struct connection *c, struct session *s, int which) {
  if (which == AGENT_CHANNEL_STDOUT) {
    close_fd(&s->out_fd);
    s->out_done = 1;
    send_frame(c, s->id, AGENT_STDOUT, NULL, 0);
  } else {
    close_fd(&s->err_fd);
    s->err_done = 1;
    send_frame(c, s->id, AGENT_STDERR, NULL, 0);
  }
}

/* Reads one chunk of a program's output into a frame (within the window and the buffer bound). */
static void pump_output(struct connection *c, struct session *s, int which) {
  int *fd = which == AGENT_CHANNEL_STDOUT ? &s->out_fd : &s->err_fd;
  uint32_t *credit = which == AGENT_CHANNEL_STDOUT ? &s->out_credit : &s->err_credit;
  if (*fd < 0 || *credit == 0 || c->closing || out_pending(c) >= AGENT_OUTPUT_HIGH_WATER) return;
  size_t want = *credit < READ_CHUNK ? *credit : READ_CHUNK;
  if (out_reserve(c, AGENT_HEADER_BYTES + want)) return;
  ssize_t n = read(*fd, c->out + c->out_len + AGENT_HEADER_BYTES, want);
  if (n > 0) {
    agent_encode_header(c->out + c->out_len, (uint32_t)n, s->id, which == AGENT_CHANNEL_STDOUT ? AGENT_STDOUT : AGENT_STDERR);
    c->out_len += AGENT_HEADER_BYTES + (size_t)n;
    *credit -= (uint32_t)n;
    return;
  }
  if (n < 0 && errno == EINTR) return;
  /* EAGAIN while the program still runs: wait. A pty whose program exited has nothing more. */
  if (n < 0 && errno == EAGAIN && !(s->tty && s->exited)) return;
  channel_end(c, s, which); /* 0 (EOF), EIO (pty closed), or a pty drained after exit */
}

/* Writes buffered input to the program and gives the client the window back. */
static void pump_input(struct connection *c, struct session *s) {
  while (s->in_len && s->in_fd >= 0) {
    ssize_t n = write(s->in_fd, s->in_buf + s->in_off, s->in_len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      /* The program closed its input (EPIPE): what is left is dropped, and credited back. */
      close_fd(&s->in_fd);
      n = (ssize_t)s->in_len;
    }
    s->in_off += (size_t)n;
    s->in_len -= (size_t)n;
    s->in_credit += (uint32_t)n;
    send_u32s(c, s->id, AGENT_WINDOW, AGENT_CHANNEL_STDIN, (uint32_t)n, 2);
  }
  if (s->in_len == 0) s->in_off = 0;
  /* End of input: a pipe is closed; a pty keeps its master (the program's output flows through it). */
  if (s->in_eof && s->in_len == 0 && s->in_fd >= 0) close_fd(&s->in_fd);
}

/* ---- requests ---- */

static void free_strings(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

/* Reads `count` strings (bounded by `max_count`) into a NULL-terminated array. */
static char **read_strings(struct agent_cursor *cur, uint32_t max_count, size_t max_len) {
  uint32_t n = agent_cursor_u32(cur);
  if (cur->bad || n > max_count || n > cur->left / 4) {
    cur->bad = 1;
    return NULL;
  }
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) {
    cur->bad = 1;
    return NULL;
  }
  for (uint32_t i = 0; i < n && !cur->bad; i++) v[i] = agent_cursor_string(cur, max_len);
  return v;
}

static int env_entry_valid(const char *e) { return e[0] != '=' && e[0] != '\0' && strchr(e, '=') != NULL; }

static void open_stream(struct connection *c, const struct agent_frame_header *h, const unsigned char *payload) {
  if (h->stream == 0) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream id 0 cannot carry a request");
  if (session_find(c, h->stream)) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream %u is already open", h->stream);
  struct agent_cursor cur = {payload, h->length, 0};
  struct agent_spawn_request req;
  memset(&req, 0, sizeof req);
  req.flags = agent_cursor_u32(&cur);
  const char *problem = NULL;
  if (h->type == AGENT_EXEC || h->type == AGENT_RUN) {
    req.kind = AGENT_SPAWN_EXEC;
    req.workload = h->type == AGENT_RUN;
    req.rows = agent_cursor_u16(&cur);
    req.cols = agent_cursor_u16(&cur);
    req.user = agent_cursor_string(&cur, AGENT_MAX_USER);
    req.cwd = agent_cursor_string(&cur, AGENT_MAX_PATH);
    req.argv = read_strings(&cur, AGENT_MAX_ARGS, AGENT_MAX_PAYLOAD);
    req.env = read_strings(&cur, AGENT_MAX_ENV, AGENT_MAX_PAYLOAD);
    if (req.workload) req.group_add = read_strings(&cur, AGENT_MAX_GROUPS, AGENT_MAX_USER);
    if (cur.bad || cur.left) problem = "EXEC payload does not decode (or a count or length is over its limit)";
    else if (req.flags & ~(uint32_t)AGENT_EXEC_KNOWN_FLAGS) problem = "EXEC has unknown flags";
    else if (!req.argv[0] || !req.argv[0][0]) problem = "EXEC needs a nonempty argv[0]";
    else if (req.cwd[0] && req.cwd[0] != '/') problem = "EXEC cwd is not an absolute path";
    for (size_t i = 0; !problem && req.env[i]; i++)
      if (!env_entry_valid(req.env[i])) problem = "EXEC env entry is not KEY=VALUE";
  } else {
    req.kind = h->type == AGENT_COPY_IN ? AGENT_SPAWN_COPY_IN : AGENT_SPAWN_COPY_OUT;
    req.path = agent_cursor_string(&cur, AGENT_MAX_PATH);
    uint32_t known = h->type == AGENT_COPY_IN ? AGENT_COPY_INTO_DIR : 0;
    if (cur.bad || cur.left) problem = "COPY payload does not decode";
    else if (req.flags & ~known) problem = "COPY has unknown flags";
    else if (req.path[0] != '/') problem = "COPY path is not absolute";
  }
  if (problem) {
    protocol_violation(c, AGENT_ERROR_PROTOCOL, "%s", problem);
  } else {
    struct session *s = NULL;
    for (unsigned i = 0; i < AGENT_MAX_SESSIONS && !s; i++)
      if (!c->sessions[i].used) s = &c->sessions[i];
    struct agent_spawned sp;
    char err[256];
    if (!s) {
      send_error(c, h->stream, AGENT_ERROR_LIMIT, "too many open streams on this connection");
    } else if (req.workload && !defaults->workload_ended) {
      send_error(c, h->stream, AGENT_ERROR_FAILED, "this agent does not run a VM's workload (RUN)");
    } else if (req.workload && workload.started) {
      send_error(c, h->stream, AGENT_ERROR_FAILED, "this VM's workload has already been started");
    } else if (agent_spawn(&req, defaults, &sp, err, sizeof err) != 0) {
      send_error(c, h->stream, AGENT_ERROR_FAILED, err);
    } else {
      if (req.workload) workload.started = 1;
      memset(s, 0, sizeof *s);
      *s = (struct session){.used = 1, .id = h->stream, .pid = sp.pid, .tty = sp.tty, .workload = req.workload, .in_fd = sp.in_fd,
                            .out_fd = sp.out_fd, .err_fd = sp.err_fd, .in_credit = AGENT_INITIAL_WINDOW,
                            .out_credit = AGENT_INITIAL_WINDOW, .err_credit = AGENT_INITIAL_WINDOW};
      send_u32s(c, s->id, AGENT_STARTED, (uint32_t)sp.pid, 0, 1);
      if (sp.err_fd < 0) {
        s->err_done = 1;
        send_frame(c, s->id, AGENT_STDERR, NULL, 0);
      }
    }
  }
  free(req.user);
  free(req.cwd);
  free(req.path);
  free_strings(req.argv);
  free_strings(req.env);
  free_strings(req.group_add);
}

/* IDENTITY: applied at once in the agent itself (a few syscalls), answered EXIT 0 or ERROR. */
static void set_identity(struct connection *c, const struct agent_frame_header *h, const unsigned char *payload) {
  if (h->stream == 0) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream id 0 cannot carry a request");
  if (session_find(c, h->stream)) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream %u is already open", h->stream);
  struct agent_cursor cur = {payload, h->length, 0};
  struct guest_identity id = {.hosts_gateway = defaults->hosts_gateway};
  uint32_t flags = agent_cursor_u32(&cur);
  uint32_t hi = agent_cursor_u32(&cur), lo = agent_cursor_u32(&cur);
  id.realtime_ns = (uint64_t)hi << 32 | lo;
  id.entropy = agent_cursor_bytes(&cur, AGENT_MAX_ENTROPY, &id.entropy_len);
  char *hostname = agent_cursor_string(&cur, AGENT_MAX_HOSTNAME);
  char *mac = agent_cursor_string(&cur, 17);
  id.hostname = hostname;
  id.mac = mac;
  char err[256];
  if (cur.bad || cur.left || flags) {
    protocol_violation(c, AGENT_ERROR_PROTOCOL, "IDENTITY payload does not decode (or a length is over its limit)");
  } else if (!defaults->applies_identity) {
    send_error(c, h->stream, AGENT_ERROR_FAILED, "the identity is only refreshed in a guest");
  } else if (guest_identity_apply(&id, err, sizeof err) != 0) {
    send_error(c, h->stream, AGENT_ERROR_FAILED, err);
  } else {
    send_u32s(c, h->stream, AGENT_EXIT, 0, 0, 2);
  }
  free(hostname);
  free(mac);
}

/* VOLUMES: unmounts or mounts the guest's volumes around a snapshot; answered EXIT 0 or ERROR. */
static void set_volumes(struct connection *c, const struct agent_frame_header *h, const unsigned char *payload) {
  if (h->stream == 0) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream id 0 cannot carry a request");
  if (session_find(c, h->stream)) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream %u is already open", h->stream);
  struct agent_cursor cur = {payload, h->length, 0};
  uint32_t op = agent_cursor_u32(&cur);
  if (cur.bad || cur.left || (op != AGENT_VOLUMES_DETACH && op != AGENT_VOLUMES_ATTACH))
    return protocol_violation(c, AGENT_ERROR_PROTOCOL, "VOLUMES payload is not one known operation");
  char err[256];
  int rc = op == AGENT_VOLUMES_DETACH ? volumes_detach(defaults->volumes, defaults->volumec, err, sizeof err)
                                      : volumes_attach(defaults->volumes, defaults->volumec, err, sizeof err);
  if (rc != 0) send_error(c, h->stream, AGENT_ERROR_FAILED, err);
  else send_u32s(c, h->stream, AGENT_EXIT, 0, 0, 2);
}

static void on_stdin(struct connection *c, struct session *s, const unsigned char *data, uint32_t len) {
  if (len == 0) {
    s->in_eof = 1;
    pump_input(c, s);
    return;
  }
  if (s->in_eof) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "stream %u: input after its end", s->id);
  if (len > s->in_credit) return protocol_violation(c, AGENT_ERROR_LIMIT, "stream %u: input beyond the granted window", s->id);
  s->in_credit -= len;
  if (s->in_fd < 0) {
    /* Nobody reads it (no -i, or the program closed its input): drop and credit back. */
    s->in_credit += len;
    send_u32s(c, s->id, AGENT_WINDOW, AGENT_CHANNEL_STDIN, len, 2);
    return;
  }
  if (!s->in_buf && !(s->in_buf = malloc(AGENT_INITIAL_WINDOW))) {
    kill(s->pid, SIGKILL);
    close_fd(&s->in_fd);
    return;
  }
  if (s->in_off + s->in_len + len > AGENT_INITIAL_WINDOW) {
    memmove(s->in_buf, s->in_buf + s->in_off, s->in_len);
    s->in_off = 0;
  }
  memcpy(s->in_buf + s->in_off + s->in_len, data, len);
  s->in_len += len;
  pump_input(c, s);
}

static void handle_frame(struct connection *c, const struct agent_frame_header *h, const unsigned char *p) {
  if (h->flags || h->reserved) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "nonzero flags or reserved field");
  if (!c->handshaken) {
    if (h->type != AGENT_HELLO || h->stream != 0 || h->length != 8)
      return protocol_violation(c, AGENT_ERROR_PROTOCOL, "the first frame must be HELLO");
    struct agent_cursor cur = {p, h->length, 0};
    uint32_t magic = agent_cursor_u32(&cur);
    uint16_t lo = agent_cursor_u16(&cur), hi = agent_cursor_u16(&cur);
    if (magic != AGENT_MAGIC) return protocol_violation(c, AGENT_ERROR_PROTOCOL, "bad HELLO magic");
    if (lo > hi || lo > AGENT_PROTOCOL_VERSION || hi < AGENT_PROTOCOL_MIN_VERSION)
      return protocol_violation(c, AGENT_ERROR_UNSUPPORTED, "this agent speaks versions %u to %u",
                                AGENT_PROTOCOL_MIN_VERSION, AGENT_PROTOCOL_VERSION);
    c->version = hi < AGENT_PROTOCOL_VERSION ? hi : AGENT_PROTOCOL_VERSION;
    unsigned char r[20];
    agent_put_u32(r, AGENT_MAGIC);
    agent_put_u16(r + 4, c->version);
    agent_put_u16(r + 6, 0);
    agent_put_u32(r + 8, AGENT_MAX_PAYLOAD);
    agent_put_u32(r + 12, AGENT_MAX_SESSIONS);
    agent_put_u32(r + 16, AGENT_INITIAL_WINDOW);
    send_frame(c, 0, AGENT_HELLO, r, sizeof r);
    c->handshaken = 1;
    return;
  }
  struct agent_cursor cur = {p, h->length, 0};
  struct session *s = NULL;
  switch (h->type) {
    case AGENT_EXEC:
    case AGENT_COPY_IN:
    case AGENT_COPY_OUT:
      return open_stream(c, h, p);
    case AGENT_RUN:
      if (c->version < 2) break;
      return open_stream(c, h, p);
    case AGENT_IDENTITY:
      if (c->version < 2) break;
      return set_identity(c, h, p);
    case AGENT_VOLUMES:
      if (c->version < 3) break;
      return set_volumes(c, h, p);
    case AGENT_STDIN:
      if (h->stream == 0) break;
      if ((s = session_find(c, h->stream))) on_stdin(c, s, p, h->length);
      return;
    case AGENT_WINDOW: {
      uint32_t channel = agent_cursor_u32(&cur), inc = agent_cursor_u32(&cur);
      if (cur.left || cur.bad || h->stream == 0 || (channel != AGENT_CHANNEL_STDOUT && channel != AGENT_CHANNEL_STDERR)) break;
      if (!(s = session_find(c, h->stream))) return;
      uint32_t *credit = channel == AGENT_CHANNEL_STDOUT ? &s->out_credit : &s->err_credit;
      if (inc > 0x7fffffffu - *credit) return protocol_violation(c, AGENT_ERROR_LIMIT, "window over 2^31 bytes");
      *credit += inc;
      return;
    }
    case AGENT_RESIZE: {
      uint16_t rows = agent_cursor_u16(&cur), cols = agent_cursor_u16(&cur);
      if (cur.left || cur.bad || h->stream == 0) break;
      if ((s = session_find(c, h->stream)) && s->tty && s->out_fd >= 0) agent_set_window_size(s->out_fd, rows, cols);
      return;
    }
    case AGENT_SIGNAL: {
      uint32_t sig = agent_cursor_u32(&cur);
      if (cur.left || cur.bad || h->stream == 0 || sig < 1 || sig > 64) break;
      if ((s = session_find(c, h->stream)) && !s->exited) kill(s->pid, (int)sig);
      return;
    }
    case AGENT_ERROR:
      if (h->stream != 0) break;
      c->closing = 1; /* the client gave up on the connection */
      return;
    default:
      break;
  }
  protocol_violation(c, AGENT_ERROR_PROTOCOL, "malformed or unexpected frame (type %u, stream %u, %u bytes)",
                     h->type, h->stream, h->length);
}

/* Reads what the connection has and handles every complete frame. */
static void connection_read(struct connection *c) {
  size_t cap = AGENT_HEADER_BYTES + AGENT_MAX_PAYLOAD;
  ssize_t n = read(c->fd, c->in + c->in_len, cap - c->in_len);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    connection_close(c);
    return;
  }
  c->in_len += (size_t)n;
  size_t off = 0;
  while (!c->closing && c->in_len - off >= AGENT_HEADER_BYTES) {
    struct agent_frame_header h;
    agent_decode_header(c->in + off, &h);
    if (h.length > AGENT_MAX_PAYLOAD) {
      protocol_violation(c, AGENT_ERROR_LIMIT, "frame of %u bytes (limit %u)", h.length, AGENT_MAX_PAYLOAD);
      break;
    }
    if (c->in_len - off < AGENT_HEADER_BYTES + h.length) break;
    handle_frame(c, &h, c->in + off + AGENT_HEADER_BYTES);
    off += AGENT_HEADER_BYTES + h.length;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

static void connection_write(struct connection *c) {
  while (out_pending(c)) {
    ssize_t n = write(c->fd, c->out + c->out_off, out_pending(c));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      connection_close(c);
      return;
    }
    c->out_off += (size_t)n;
  }
  c->out_off = c->out_len = 0;
  if (c->closing) connection_close(c);
}

static void accept_connection(int listen_fd) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  for (unsigned i = 0; i < AGENT_MAX_CONNECTIONS; i++) {
    struct connection *c = &conns[i];
    if (c->fd >= 0) continue;
    memset(c, 0, sizeof *c);
    c->in = malloc(AGENT_HEADER_BYTES + AGENT_MAX_PAYLOAD);
    if (!c->in) break;
    c->fd = fd;
    for (unsigned j = 0; j < AGENT_MAX_SESSIONS; j++) c->sessions[j].in_fd = c->sessions[j].out_fd = c->sessions[j].err_fd = -1;
    return;
  }
  close(fd); /* over AGENT_MAX_CONNECTIONS */
}

static void reap_children(void) {
  int ws;
  pid_t pid;
  while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
    for (unsigned i = 0; i < AGENT_MAX_CONNECTIONS; i++) {
      if (conns[i].fd < 0) continue;
      for (unsigned j = 0; j < AGENT_MAX_SESSIONS; j++) {
        struct session *s = &conns[i].sessions[j];
        if (s->used && s->pid == pid) {
          s->exited = 1;
          s->wait_status = ws;
        }
      }
    }
  }
}

/* One pass over every stream: move data that can move without waiting, end what ended. */
static void service_streams(void) {
  for (unsigned i = 0; i < AGENT_MAX_CONNECTIONS; i++) {
    struct connection *c = &conns[i];
    if (c->fd < 0) continue;
    if (c->closing && !out_pending(c)) {
      connection_close(c);
      continue;
    }
    for (unsigned j = 0; j < AGENT_MAX_SESSIONS; j++) {
      struct session *s = &c->sessions[j];
      if (!s->used) continue;
      if (s->tty && s->exited) pump_output(c, s, AGENT_CHANNEL_STDOUT);
      session_maybe_finish(c, s);
    }
  }
}

int agent_listen_unix(const char *path) {
  /* Bound and listening under a temporary name, then renamed: the path appears ready. */
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) + 5 >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s.tmp", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  unlink(addr.sun_path);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 || rename(addr.sun_path, path) != 0) {
    int saved = errno;
    close(fd);
    unlink(addr.sun_path);
    errno = saved;
    return -1;
  }
  return fd;
}

int agent_listen_vsock(unsigned port) {
  struct agent_sockaddr_vm addr;
  memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_port = port;
  addr.svm_cid = AGENT_VMADDR_CID_ANY;
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

enum poll_kind { WAIT_LISTEN, WAIT_SIGNAL, WAIT_CONN, WAIT_STDIN, WAIT_STDOUT, WAIT_STDERR };
struct poll_owner {
  enum poll_kind kind;
  struct connection *c;
  struct session *s;
};

#define MAX_POLL (2 + AGENT_MAX_CONNECTIONS * (1 + 3 * AGENT_MAX_SESSIONS))

int agent_serve(int listen_fd, const struct agent_defaults *d) {
  defaults = d;
  for (unsigned i = 0; i < AGENT_MAX_CONNECTIONS; i++) conns[i].fd = -1;
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    log_line("signalfd failed");
    return 1;
  }
  fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  static struct pollfd fds[MAX_POLL];
  static struct poll_owner owners[MAX_POLL];
  for (;;) {
    reap_children();
    service_streams();
    size_t n = 0;
    int timeout = -1;
    if (workload.ended) {
      long long left = workload.deadline_ms - now_ms();
      if (workload.conn_closed || left <= 0) defaults->workload_ended(workload.status);
      timeout = (int)left;
    }
    fds[n] = (struct pollfd){listen_fd, POLLIN, 0};
    owners[n++] = (struct poll_owner){WAIT_LISTEN, NULL, NULL};
    fds[n] = (struct pollfd){sfd, POLLIN, 0};
    owners[n++] = (struct poll_owner){WAIT_SIGNAL, NULL, NULL};
    for (unsigned i = 0; i < AGENT_MAX_CONNECTIONS; i++) {
      struct connection *c = &conns[i];
      if (c->fd < 0) continue;
      int room = out_pending(c) < AGENT_OUTPUT_HIGH_WATER;
      short ev = (short)((!c->closing && room ? POLLIN : 0) | (out_pending(c) ? POLLOUT : 0));
      fds[n] = (struct pollfd){c->fd, ev, 0};
      owners[n++] = (struct poll_owner){WAIT_CONN, c, NULL};
      if (c->closing) continue;
      for (unsigned j = 0; j < AGENT_MAX_SESSIONS; j++) {
        struct session *s = &c->sessions[j];
        if (!s->used) continue;
        if (s->in_fd >= 0 && s->in_len) {
          fds[n] = (struct pollfd){s->in_fd, POLLOUT, 0};
          owners[n++] = (struct poll_owner){WAIT_STDIN, c, s};
        }
        if (s->out_fd >= 0 && s->out_credit && room) {
          if (s->tty && s->exited) timeout = 0; /* drained by service_streams */
          fds[n] = (struct pollfd){s->out_fd, POLLIN, 0};
          owners[n++] = (struct poll_owner){WAIT_STDOUT, c, s};
        }
        if (s->err_fd >= 0 && s->err_credit && room) {
          fds[n] = (struct pollfd){s->err_fd, POLLIN, 0};
          owners[n++] = (struct poll_owner){WAIT_STDERR, c, s};
        }
      }
    }
    int ready = poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR) {
      log_line("poll failed");
      return 1;
    }
    for (size_t k = 0; ready > 0 && k < n; k++) {
      if (!fds[k].revents) continue;
      struct poll_owner *o = &owners[k];
      /* An earlier event in this pass may have closed the connection or ended the stream. */
      if (o->c && o->c->fd < 0) continue;
      if (o->s && !o->s->used) continue;
      switch (o->kind) {
        case WAIT_LISTEN:
          accept_connection(listen_fd);
          break;
        case WAIT_SIGNAL: {
          struct signalfd_siginfo si;
          while (read(sfd, &si, sizeof si) == sizeof si) {}
          break;
        }
        case WAIT_CONN:
          if (fds[k].revents & POLLOUT) connection_write(o->c);
          if (o->c->fd >= 0 && (fds[k].revents & (POLLIN | POLLHUP | POLLERR))) connection_read(o->c);
          break;
        case WAIT_STDIN:
          pump_input(o->c, o->s);
          break;
        case WAIT_STDOUT:
          pump_output(o->c, o->s, AGENT_CHANNEL_STDOUT);
          break;
        case WAIT_STDERR:
          pump_output(o->c, o->s, AGENT_CHANNEL_STDERR);
          break;
      }
    }
  }
}
