/**
 * The guest agent's host side: the protocol (docs/agent-protocol.md), a client that
 * multiplexes exec and copy streams over one connection, and the dialers.
 */
export { AgentClient, AGENT_HANDSHAKE_TIMEOUT_MS, type ExecOptions, type ExecExit, type GuestProcess, type IdentityOptions, type WorkloadOptions } from './client.js';
export { refreshGuestIdentity } from './identity.js';
export { connectAgentUnix, connectAgentVsock, waitForAgent, AGENT_CONNECT_TIMEOUT_MS } from './dial.js';
export { AGENT_VSOCK_PORT, AGENT_PROTOCOL_VERSION, AGENT_MAX_PAYLOAD, AGENT_MAX_SESSIONS, AGENT_INITIAL_WINDOW } from './protocol.js';
export { copyHostToGuest, copyGuestToHost } from './copy.js';
export { packHostPath, extractToHost } from './host-tar.js';
