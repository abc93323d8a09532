/**
 * vmrun's library API: boot kernels and images as microVMs, snapshot and restore them.
 * The CLI (src/commands) is a thin user of exactly these exports.
 */
export { Machine, DEFAULT_MEMORY, vsockLimits, type BootOptions, type VsockOptions } from './machine/machine.js';
export { type MachineExit } from './machine/exit.js';
export { parseGdbAddress, type GdbOptions } from './machine/gdb.js';
export { inspectHost, type HostReport } from './host/doctor.js';
export { VmrunError, isVmrunError, VMRUN_FAILURE_EXIT_CODE, type VmrunErrorKind } from './errors.js';
export { parseSize, formatBytes } from './units.js';
export { type RestoreOptions, type RestoreManyOptions, type ForkResult, type MachineMemory } from './machine/machine.js';
export { chooseCloneIdentity, hostnameFor, type CloneIdentity } from './machine/clone-identity.js';
export { processMemory, type ProcessMemory, type GuestRamMemory } from './host/process-memory.js';
export { parseDiskFlag, type DiskOptions } from './machine/disks.js';
export { parseMountFlag, parseVolumeFlag, volumeTag, type VolumeOptions } from './machine/volumes.js';
export { type RootfsMode, BLOCK_ROOTFS_MIN_BYTES } from './run/rootfs-choice.js';
export * from './snapshot/index.js';
export { runImage, prepareRun, guestCmdline, type RunImageOptions, type PreparedRun } from './run/run-image.js';
export { startImageRun, type ImageRun, type ImageRunOptions } from './run/image-run.js';
export { resolveRunSpec, type RunFlags, type RunSpec } from './run/run-spec.js';
/** The image store and registry client. */
export * as oci from './oci/index.js';
/** The guest agent: exec and docker cp over a connection to it (docs/agent-protocol.md). */
export {
  AgentClient, connectAgentUnix, connectAgentVsock, copyHostToGuest, copyGuestToHost, packHostPath, extractToHost,
  AGENT_VSOCK_PORT, type ExecOptions, type ExecExit, type GuestProcess,
} from './agent/index.js';
/** Background VMs: start detached, address by name or id, control socket. */
export * as vmhost from './vmhost/index.js';
