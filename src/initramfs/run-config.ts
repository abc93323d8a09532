/**
 * The per-run configuration vmrun-init reads from /.vmrun/run, and the tiny cpio that
 * carries it. Appended after the cached image initramfs (Linux unpacks concatenated
 * archives in order), it makes one cached image archive serve every run.
 * The record format is specified in guest/init/src/run_config.h; keep the two in step.
 */
import { VmrunError } from '../errors.js';
import { newcDataPadding, newcHeader, newcTrailer } from './cpio-newc.js';

/** Where the guest finds the run configuration. */
export const RUN_CONFIG_GUEST_PATH = '/.vmrun/run';
/** The format version this encoder writes and the init reads. */
export const RUN_CONFIG_VERSION = 4;
/** vmrun-init's limits (RUN_CONFIG_MAX_BYTES / RUN_CONFIG_MAX_ITEMS). */
export const RUN_CONFIG_MAX_BYTES = 1 << 20;
export const RUN_CONFIG_MAX_RECORDS = 16384;

const MAGIC = 'vmrun-run-config';
const MAX_HOSTNAME_BYTES = 64;

/** eth0 in the guest: a static IPv4 address, default route and resolver. */
export interface GuestNetworkConfig {
  /** "A.B.C.D/PREFIX". */
  address: string;
  /** Default route; also host.vmrun.internal in /etc/hosts. */
  gateway: string;
  /** /etc/resolv.conf's nameserver. */
  nameserver: string;
}

/** What the guest runs and how: already resolved by the host (see resolveRunSpec). */
export interface GuestRunConfig {
  /**
   * The program and its arguments; argv[0] is looked up in the env's PATH. Empty with
   * `workloadFromAgent`.
   */
  argv: string[];
  /** The host sends the workload over the agent (RUN) instead: init only sets the guest up. */
  workloadFromAgent?: boolean;
  /** KEY=VALUE strings, in order. */
  env: string[];
  /** Absolute; created if missing. */
  workdir: string;
  /** docker's -u spec (name|uid[:group|gid]), resolved in the guest; "" is root. */
  user: string;
  /** Extra supplementary groups (names or gids), like docker's --group-add. */
  groupAdd?: string[];
  hostname: string;
  /** Whether the workload gets the console as a terminal (docker -t). */
  tty: boolean;
  /** Whether the workload reads the console (docker -i); without it and -t, stdin is /dev/null. */
  interactive?: boolean;
  rows?: number;
  cols?: number;
  /** eth0's set-up; absent: the guest has only `lo`. */
  network?: GuestNetworkConfig;
  /** virtio-fs volumes the init mounts before the workload starts, in order. */
  volumes?: GuestVolumeConfig[];
}

/** One volume as the guest mounts it. */
export interface GuestVolumeConfig {
  /** The virtio-fs tag (letters, digits, '-', '_'). */
  tag: string;
  /** Absolute mount point; created if missing. */
  guestDir: string;
  readOnly: boolean;
}

const encoder = new TextEncoder();

function checkText(value: string, what: string): string {
  if (value.includes('\0')) throw new VmrunError('usage', `${what} ${JSON.stringify(value)} contains a NUL character`);
  return value;
}

function checkTerminalSize(value: number | undefined, what: string): number {
  const v = value ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new VmrunError('usage', `terminal ${what} ${value} is not an integer in 0..65535`);
  return v;
}

/** The bytes of /.vmrun/run for `config` (validated like vmrun-init validates them). */
export function encodeRunConfigRecords(config: GuestRunConfig): Uint8Array {
  if (config.workloadFromAgent) {
    if (config.argv.length !== 0) throw new VmrunError('usage', 'a workload sent over the agent has no command in the run configuration');
  } else {
    if (config.argv.length === 0) throw new VmrunError('usage', 'nothing to run: the command is empty');
    if (config.argv[0] === '') throw new VmrunError('usage', 'the command name is empty');
  }
  if (!config.workdir.startsWith('/')) throw new VmrunError('usage', `working directory "${config.workdir}" is not an absolute path`);
  if (encoder.encode(config.hostname).length > MAX_HOSTNAME_BYTES) {
    throw new VmrunError('usage', `hostname "${config.hostname}" is longer than ${MAX_HOSTNAME_BYTES} bytes`);
  }
  const records = [MAGIC, `version=${RUN_CONFIG_VERSION}`];
  if (config.hostname) records.push(`hostname=${checkText(config.hostname, 'hostname')}`);
  records.push(`workdir=${checkText(config.workdir, 'working directory')}`);
  if (config.user) records.push(`user=${checkText(config.user, 'user')}`);
  for (const group of config.groupAdd ?? []) {
    if (group === '') throw new VmrunError('usage', 'an added group is empty');
    records.push(`group-add=${checkText(group, 'group')}`);
  }
  records.push(`tty=${config.tty ? 1 : 0}`, `interactive=${config.interactive ? 1 : 0}`);
  records.push(`rows=${checkTerminalSize(config.rows, 'rows')}`, `cols=${checkTerminalSize(config.cols, 'cols')}`);
  if (config.network) {
    const { address, gateway, nameserver } = config.network;
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(address)) throw new VmrunError('usage', `guest network address "${address}" is not A.B.C.D/PREFIX`);
    records.push(`net-address=${address}`, `net-gateway=${checkText(gateway, 'gateway')}`, `net-dns=${checkText(nameserver, 'nameserver')}`);
  }
  for (const v of config.volumes ?? []) {
    if (!/^[A-Za-z0-9_-]{1,36}$/.test(v.tag)) throw new VmrunError('usage', `volume tag "${v.tag}" is not 1 to 36 letters, digits, '-' or '_'`);
    if (!v.guestDir.startsWith('/')) throw new VmrunError('usage', `volume guest path "${v.guestDir}" is not absolute`);
    records.push(`volume=${v.tag}:${v.readOnly ? 'ro' : 'rw'}:${checkText(v.guestDir, 'volume guest path')}`);
  }
  if (config.workloadFromAgent) records.push('workload=agent');
  for (const arg of config.argv) records.push(`arg=${checkText(arg, 'argument')}`);
  for (const kv of config.env) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new VmrunError('usage', `environment entry ${JSON.stringify(kv)} is not KEY=VALUE`);
    records.push(`env=${checkText(kv, 'environment entry')}`);
  }
  records.push('end');
  if (records.length > RUN_CONFIG_MAX_RECORDS) {
    throw new VmrunError('usage', `the run configuration has ${records.length} records, over the limit of ${RUN_CONFIG_MAX_RECORDS} (too many arguments or environment variables)`);
  }
  const bytes = encoder.encode(records.join('\0') + '\0');
  if (bytes.length > RUN_CONFIG_MAX_BYTES) {
    throw new VmrunError('usage', `the run configuration is ${bytes.length} bytes, over the limit of ${RUN_CONFIG_MAX_BYTES} (arguments and environment too large)`);
  }
  return bytes;
}

/**
 * The per-run cpio: directory /.vmrun and the file /.vmrun/run, then the trailer.
 * Small enough to build in memory for every run.
 */
export function encodeRunConfig(config: GuestRunConfig): Uint8Array {
  const data = encodeRunConfigRecords(config);
  const common = { uid: 0, gid: 0, mtime: 0, rdevmajor: 0, rdevminor: 0 };
  const parts = [
    newcHeader('.vmrun', { ...common, ino: 1, mode: 0o040755, nlink: 2, filesize: 0 }),
    newcHeader('.vmrun/run', { ...common, ino: 2, mode: 0o100600, nlink: 1, filesize: data.length }),
    data,
    newcDataPadding(data.length),
    newcTrailer(),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
