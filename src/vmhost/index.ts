/**
 * Background VMs: a host process per VM that owns the machine, keeps its console
 * log and answers a control socket; a per-user registry to find them by name or id.
 * `vmrun boot -d`, `run -d` and `snapshot restore -d` start VMs with `startDetached`;
 * `ps`, `stop`, `logs`, `attach`, `rm` and `snapshot save` reach them through here.
 */
export { startDetached, DEFAULT_START_TIMEOUT_MS, type VmDescription } from './start.js';
export { startClones, restoreStartBounds, MAX_CLONES, type CloneOptions } from './clones.js';
export { VmRegistry, type VmRecord, type VmEntry, type VmStatus, type VmOrigin, type VmPaths } from './registry.js';
export { VmControlClient, connectToVm, requestVm } from './client.js';
export { stopVm, removeVm, isLive } from './control.js';
export { copyConsoleLog } from './console-log.js';
export { runtimeDirPath } from './runtime-dir.js';
export type { HostSpec, MachineSpec } from './host-spec.js';
export type { SnapshotFunction } from './host-process.js';
export type { ControlRequest, ControlResults, LiveStatus, VmExit } from './protocol.js';
export { connectVmAgent } from './agent-connection.js';
