/** Snapshots: the library's public face (Machine.snapshot / Machine.restore use these). */
export { openSnapshot, saveMachineSnapshot, type SaveResult, type SnapshotInfo } from './snapshot.js';
export { listSnapshots, inspectSnapshot, removeSnapshot, resolveSnapshot, snapshotsDir, type SnapshotListing } from './store.js';
export { type SnapshotMetadata } from './metadata.js';
export { FORMAT_MAJOR, FORMAT_MINOR } from './format.js';
