/*
 * A clone's identity, applied by the agent right after a restore (IDENTITY, protocol
 * version 2): every VM restored from one snapshot starts with the same entropy pool,
 * clock, hostname and MAC, and must not keep them.
 */
#ifndef VMRUN_GUEST_IDENTITY_H
#define VMRUN_GUEST_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

struct guest_identity {
  uint64_t realtime_ns;          /* 0: leave the clock */
  const unsigned char *entropy;  /* mixed into the pool, then the CRNG reseeds */
  size_t entropy_len;
  const char *hostname;          /* "" or NULL: keep */
  const char *mac;               /* "aa:bb:cc:dd:ee:ff" for eth0; "" or NULL: keep */
  const char *hosts_gateway;     /* host.vmrun.internal in the rewritten /etc/hosts (NULL: none) */
};

/** Parses "aa:bb:cc:dd:ee:ff" (a unicast address). Returns 0, or -1. */
int guest_parse_mac(const char *text, unsigned char out[6]);

/**
 * Applies what `id` sets, in this order: entropy (RNDADDENTROPY, then RNDRESEEDCRNG so
 * the very next random byte depends on it), clock, hostname (+ /etc/hostname and
 * /etc/hosts), eth0's MAC. Returns 0, or -1 with a one-line reason (what was applied
 * before the failure stays applied).
 */
int guest_identity_apply(const struct guest_identity *id, char *err, size_t errlen);

#endif
