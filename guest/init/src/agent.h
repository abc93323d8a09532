/*
 * The guest agent: serves docs/agent-protocol.md on a listening socket (AF_VSOCK in
 * a guest, a unix socket on a host for tests) in one poll loop with bounded buffers.
 */
#ifndef VMRUN_AGENT_H
#define VMRUN_AGENT_H

#include "agent_spawn.h"

/** Listens on AF_VSOCK `port` (any CID). Returns the fd or -1 with errno. */
int agent_listen_vsock(unsigned port);

/** Listens on a unix socket at `path` (replacing a stale one). Returns the fd or -1. */
int agent_listen_unix(const char *path);

/** Serves connections on `listen_fd` until a fatal error; returns 1 then. */
int agent_serve(int listen_fd, const struct agent_defaults *defaults);

#endif
