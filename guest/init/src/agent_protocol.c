/* Big-endian field codecs and the bounded payload cursor of the agent protocol. */
#include "agent_protocol.h"

#include <stdlib.h>
#include <string.h>

void agent_put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

void agent_put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

uint32_t agent_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void agent_decode_header(const unsigned char *p, struct agent_frame_header *out) {
  out->length = agent_get_u32(p);
  out->stream = agent_get_u32(p + 4);
  out->type = p[8];
  out->flags = p[9];
  out->reserved = (uint16_t)(p[10] << 8 | p[11]);
}

void agent_encode_header(unsigned char *p, uint32_t length, uint32_t stream, uint8_t type) {
  agent_put_u32(p, length);
  agent_put_u32(p + 4, stream);
  p[8] = type;
  p[9] = 0;
  p[10] = p[11] = 0;
}

uint16_t agent_cursor_u16(struct agent_cursor *c) {
  if (c->bad || c->left < 2) {
    c->bad = 1;
    return 0;
  }
  uint16_t v = (uint16_t)(c->p[0] << 8 | c->p[1]);
  c->p += 2;
  c->left -= 2;
  return v;
}

uint32_t agent_cursor_u32(struct agent_cursor *c) {
  if (c->bad || c->left < 4) {
    c->bad = 1;
    return 0;
  }
  uint32_t v = agent_get_u32(c->p);
  c->p += 4;
  c->left -= 4;
  return v;
}

char *agent_cursor_string(struct agent_cursor *c, size_t max) {
  uint32_t len = agent_cursor_u32(c);
  if (c->bad || len > max || len > c->left || memchr(c->p, 0, len)) {
    c->bad = 1;
    return NULL;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) {
    c->bad = 1;
    return NULL;
  }
  memcpy(s, c->p, len);
  s[len] = '\0';
  c->p += len;
  c->left -= len;
  return s;
}

const unsigned char *agent_cursor_bytes(struct agent_cursor *c, size_t max, size_t *len) {
  uint32_t n = agent_cursor_u32(c);
  if (c->bad || n > max || n > c->left) {
    c->bad = 1;
    *len = 0;
    return NULL;
  }
  const unsigned char *p = c->p;
  c->p += n;
  c->left -= n;
  *len = n;
  return p;
}
