import type { SavedNetwork } from '../network/native-config.js';

/** The JSON metadata section of a snapshot: what `vmrun snapshot inspect` prints. */
export interface SnapshotMetadata {
  format: 'vmrun-snapshot';
  formatVersion: string;
  vmrunVersion: string;
  created: string;
  /** The machine as it must be recreated. */
  machine: {
    /**
     * The machine type (the addon's: "x86_64-pc", "arm64-virt"); a restore on a host
     * whose vmrun builds another is refused. Absent in snapshots from before arm64: x86_64-pc.
     */
    type?: string;
    memoryBytes: number;
    cpus: number;
    kernelFormat: string;
    kernel?: string;
    cmdline?: string;
    image?: string;
    /** Disks the machine had: recorded here, never copied; restore uses the files in place. */
    disks?: SnapshotDisk[];
    /**
     * Volumes the machine had: host directories, never copied. The guest unmounts them
     * for the save and mounts them again after it and after a restore (docs/snapshots.md).
     */
    volumes?: SnapshotVolume[];
    /**
     * A Hermit guest's file mappings: host paths, never copied. The files it had open
     * are reopened by restore and must be as they were at the save (docs/snapshots.md).
     */
    fileMappings?: SnapshotFileMapping[];
    /** The machine's virtio-vsock device (restored in the same MMIO slot, with a new host socket). */
    vsock?: { cid: number };
    /** The machine's virtio-net device: mode, published ports, DNS relay (a restored clone draws a new MAC). */
    network?: SavedNetwork;
  };
  host: { cpuModel: string; cpuVendor: string; virtualization: string };
  ram: { touchedBytes: number; savedBytes: number; compressedBytes: number; chunks: number };
  timings: { pausedMs: number; writeMs: number };
}

/** A disk of a saved machine, as restore must find it again. */
export interface SnapshotDisk {
  path: string;
  readOnly: boolean;
  serial: string;
  /** The file's size at the save; restore refuses another size. */
  bytes: number;
}

/** A volume of a saved machine: a restore serves the same host directory again, under the same tag. */
export interface SnapshotVolume {
  hostDir: string;
  guestDir: string;
  readOnly: boolean;
}

/** A Hermit guest's mapping of a host file or directory into its file hypercalls. */
export interface SnapshotFileMapping {
  hostPath: string;
  guestPath: string;
}

type Json = Record<string, unknown>;

/**
 * Decodes untrusted metadata JSON into a fresh SnapshotMetadata, checking every field's
 * type (and nothing else: the machine's limits are the caller's). Unknown fields are
 * dropped, so nothing downstream meets a value of a type it does not expect.
 * `invalid(why)` throws the caller's error.
 */
export function decodeSnapshotMetadata(doc: unknown, invalid: (why: string) => never): SnapshotMetadata {
  const object = (v: unknown, name: string): Json => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`the metadata field "${name}" is not an object`);
    return v as Json;
  };
  const string = (o: Json, key: string, at: string): string => {
    const v = o[key];
    if (typeof v !== 'string') invalid(`the metadata field "${at}${key}" is not a string`);
    return v as string;
  };
  const optionalString = (o: Json, key: string, at: string): { [k: string]: string } => (o[key] === undefined ? {} : { [key]: string(o, key, at) });
  const number = (o: Json, key: string, at: string): number => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) invalid(`the metadata field "${at}${key}" is not a non-negative number`);
    return v as number;
  };
  const m = object(doc, '(root)');
  if (m.format !== 'vmrun-snapshot') invalid('the metadata does not describe a vmrun snapshot ("format" is not "vmrun-snapshot")');
  const machine = object(m.machine, 'machine');
  const host = object(m.host, 'host');
  const ram = object(m.ram, 'ram');
  const timings = object(m.timings, 'timings');
  return {
    format: 'vmrun-snapshot',
    formatVersion: string(m, 'formatVersion', ''),
    vmrunVersion: string(m, 'vmrunVersion', ''),
    created: string(m, 'created', ''),
    machine: {
      ...optionalString(machine, 'type', 'machine.'),
      memoryBytes: number(machine, 'memoryBytes', 'machine.'),
      cpus: number(machine, 'cpus', 'machine.'),
      kernelFormat: string(machine, 'kernelFormat', 'machine.'),
      ...optionalString(machine, 'kernel', 'machine.'),
      ...optionalString(machine, 'cmdline', 'machine.'),
      ...optionalString(machine, 'image', 'machine.'),
      ...(machine.vsock === undefined ? {} : { vsock: { cid: number(object(machine.vsock, 'machine.vsock'), 'cid', 'machine.vsock.') } }),
      ...(machine.network === undefined ? {} : { network: decodeNetwork(object(machine.network, 'machine.network'), { object, string, number }, invalid) }),
      ...(machine.disks === undefined ? {} : { disks: decodeDisks(machine.disks, { object, string, number }, invalid) }),
      ...(machine.volumes === undefined ? {} : { volumes: decodeVolumes(machine.volumes, { object, string, number }, invalid) }),
      ...(machine.fileMappings === undefined ? {} : { fileMappings: decodeFileMappings(machine.fileMappings, { object, string, number }, invalid) }),
    },
    host: { cpuModel: string(host, 'cpuModel', 'host.'), cpuVendor: string(host, 'cpuVendor', 'host.'), virtualization: string(host, 'virtualization', 'host.') },
    ram: {
      touchedBytes: number(ram, 'touchedBytes', 'ram.'),
      savedBytes: number(ram, 'savedBytes', 'ram.'),
      compressedBytes: number(ram, 'compressedBytes', 'ram.'),
      chunks: number(ram, 'chunks', 'ram.'),
    },
    timings: { pausedMs: number(timings, 'pausedMs', 'timings.'), writeMs: number(timings, 'writeMs', 'timings.') },
  };
}

interface FieldReaders {
  object: (v: unknown, name: string) => Json;
  string: (o: Json, key: string, at: string) => string;
  number: (o: Json, key: string, at: string) => number;
}

/** The saved network device: its mode, published ports and DNS relay, each field's type checked. */
function decodeNetwork(n: Json, read: FieldReaders, invalid: (why: string) => never): SavedNetwork {
  const at = 'machine.network.';
  const mode = read.string(n, 'mode', at);
  if (mode !== 'user' && mode !== 'host-loopback') invalid(`the metadata field "${at}mode" is not a network mode`);
  let publish: SavedNetwork['publish'];
  if (n.publish !== undefined) {
    if (!Array.isArray(n.publish)) invalid(`the metadata field "${at}publish" is not a list`);
    publish = (n.publish as unknown[]).map((entry, i) => {
      const p = read.object(entry, `${at}publish[${i}]`);
      const protocol = read.string(p, 'protocol', `${at}publish[${i}].`);
      if (protocol !== 'tcp' && protocol !== 'udp') invalid(`the metadata field "${at}publish[${i}].protocol" is not tcp or udp`);
      return {
        protocol,
        hostIp: read.string(p, 'hostIp', `${at}publish[${i}].`),
        hostPort: read.number(p, 'hostPort', `${at}publish[${i}].`),
        guestPort: read.number(p, 'guestPort', `${at}publish[${i}].`),
      };
    });
  }
  const dns = n.dns === undefined ? undefined : read.object(n.dns, `${at}dns`);
  return {
    mode,
    ...(publish ? { publish } : {}),
    ...(dns ? { dns: { ip: read.string(dns, 'ip', `${at}dns.`), port: read.number(dns, 'port', `${at}dns.`) } } : {}),
  };
}

/** The saved disks, each field's type checked (their limits are snapshot-file.ts's). */
function decodeDisks(disks: unknown, read: FieldReaders, invalid: (why: string) => never): SnapshotDisk[] {
  if (!Array.isArray(disks)) invalid('the metadata field "machine.disks" is not a list');
  return (disks as unknown[]).map((entry, i) => {
    const at = `machine.disks[${i}].`;
    const d = read.object(entry, `machine.disks[${i}]`);
    if (typeof d.readOnly !== 'boolean') invalid(`the metadata field "${at}readOnly" is not a boolean`);
    return { path: read.string(d, 'path', at), readOnly: d.readOnly as boolean, serial: read.string(d, 'serial', at), bytes: read.number(d, 'bytes', at) };
  });
}

/** The saved volumes, each field's type checked (their limits are snapshot-file.ts's). */
function decodeVolumes(volumes: unknown, read: FieldReaders, invalid: (why: string) => never): SnapshotVolume[] {
  if (!Array.isArray(volumes)) invalid('the metadata field "machine.volumes" is not a list');
  return (volumes as unknown[]).map((entry, i) => {
    const at = `machine.volumes[${i}].`;
    const v = read.object(entry, `machine.volumes[${i}]`);
    if (typeof v.readOnly !== 'boolean') invalid(`the metadata field "${at}readOnly" is not a boolean`);
    return { hostDir: read.string(v, 'hostDir', at), guestDir: read.string(v, 'guestDir', at), readOnly: v.readOnly as boolean };
  });
}

/** A Hermit guest's saved file mappings, each field's type checked (their limits are snapshot-file.ts's). */
function decodeFileMappings(mappings: unknown, read: FieldReaders, invalid: (why: string) => never): SnapshotFileMapping[] {
  if (!Array.isArray(mappings)) invalid('the metadata field "machine.fileMappings" is not a list');
  return (mappings as unknown[]).map((entry, i) => {
    const at = `machine.fileMappings[${i}].`;
    const m = read.object(entry, `machine.fileMappings[${i}]`);
    return { hostPath: read.string(m, 'hostPath', at), guestPath: read.string(m, 'guestPath', at) };
  });
}
