import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, rm, symlink, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { VmrunError } from '../errors.js';
import { writeFileAtomic } from '../host/atomic-file.js';
import { ensureRuntimeDir } from './runtime-dir.js';
import type { PortMapping } from '../network/publish.js';
import type { CloneIdentity } from '../machine/clone-identity.js';

/** What a VM's record says about it (the host process keeps it current). */
export type RecordedVmState = 'starting' | 'running' | 'paused' | 'exited';

/** What `ps` shows: the recorded state, or `dead` when the host process vanished without recording an end. */
export type VmStatus = RecordedVmState | 'dead';

/** How a VM was started, as `ps` shows it. */
export type VmOrigin = 'boot' | 'restore' | 'run';

/** One VM's `vm.json`: who runs it, what it boots, and how it ended. */
export interface VmRecord {
  /** 12 lowercase hex digits. */
  id: string;
  name?: string;
  origin: VmOrigin;
  /** The host process that owns the VM (absent until it runs). */
  pid?: number;
  kernel?: string;
  image?: string;
  snapshot?: string;
  cmdline?: string;
  memory?: number;
  cpus?: number;
  /** Ports published into the VM (recorded once it runs). */
  ports?: PortMapping[];
  /** A restored VM's own MAC, vsock CID and hostname (recorded once it runs). */
  identity?: CloneIdentity;
  /** ISO 8601 times. */
  created: string;
  started?: string;
  finished?: string;
  state: RecordedVmState;
  exitCode?: number;
  exitReason?: string;
  exitMessage?: string;
}

/** A record with its live status, as `ps` and the commands see it. */
export interface VmEntry {
  record: VmRecord;
  status: VmStatus;
}

/** The files of one VM inside the runtime directory. */
export interface VmPaths {
  dir: string;
  record: string;
  consoleLog: string;
  /** The console log before its last rotation (src/vmhost/rotating-log.ts). */
  consoleLogPrevious: string;
  controlSocket: string;
  /** The VM's hybrid vsock socket: `CONNECT <port>` reaches a guest listener (the agent). */
  vsockSocket: string;
  /** The host process's own stdout/stderr (its crashes land here). */
  hostLog: string;
  /** How to start the machine; the host reads and deletes it. */
  spec: string;
}

/** Names like docker's: a letter or digit, then letters, digits, `_`, `.`, `-`. */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const ID_PATTERN = /^[0-9a-f]{12}$/;
/** A VM still `starting` after this long without a host pid is one whose start was abandoned. */
const START_GRACE_MS = 30_000;
/** Longest unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * The per-user registry of VMs run in the background: one directory per VM under
 * `RUNTIME/vms/ID` and a symlink `RUNTIME/names/NAME -> ID` per name, so that taking
 * a name is one atomic filesystem operation.
 */
export class VmRegistry {
  private constructor(readonly root: string) {}

  /** Opens (creating if needed) the registry in this user's runtime directory. */
  static async open(env: NodeJS.ProcessEnv = process.env): Promise<VmRegistry> {
    const root = await ensureRuntimeDir(env);
    await mkdir(join(root, 'vms'), { recursive: true, mode: 0o700 });
    await mkdir(join(root, 'names'), { recursive: true, mode: 0o700 });
    return new VmRegistry(root);
  }

  /** The registry at `root`, which must already exist (the host process, told where by its parent). */
  static at(root: string): VmRegistry {
    return new VmRegistry(root);
  }

  /** The files of VM `id`. */
  paths(id: string): VmPaths {
    const dir = join(this.root, 'vms', id);
    return {
      dir,
      record: join(dir, 'vm.json'),
      consoleLog: join(dir, 'console.log'),
      consoleLogPrevious: join(dir, 'console.log.1'),
      controlSocket: join(dir, 'control.sock'),
      vsockSocket: join(dir, 'vsock.sock'),
      hostLog: join(dir, 'host.log'),
      spec: join(dir, 'spec.json'),
    };
  }

  /** Creates a VM's directory and record (state `starting`), taking its name if it has one. */
  async create(fields: Omit<VmRecord, 'id' | 'created' | 'state'>): Promise<VmRecord> {
    if (fields.name !== undefined) validateName(fields.name);
    const id = randomBytes(6).toString('hex');
    const paths = this.paths(id);
    if (paths.controlSocket.length > MAX_SOCKET_PATH) {
      throw new VmrunError('host', `the runtime directory ${this.root} is too long for a unix socket path; set VMRUN_RUNTIME_DIR to a shorter directory`);
    }
    await mkdir(paths.dir, { mode: 0o700 });
    if (fields.name !== undefined) {
      try {
        await symlink(id, this.namePath(fields.name));
      } catch (e) {
        await rm(paths.dir, { recursive: true, force: true });
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const holder = await readlink(this.namePath(fields.name)).catch(() => '?');
        throw new VmrunError('usage', `the name "${fields.name}" is already in use by VM ${holder}; remove it with vmrun rm or choose another --name`);
      }
    }
    const record: VmRecord = { id, ...fields, created: new Date().toISOString(), state: 'starting' };
    await this.write(record);
    return record;
  }

  /** Replaces a VM's record atomically (readers see the old or the new one, never half). */
  async write(record: VmRecord): Promise<void> {
    await writeFileAtomic(this.paths(record.id).record, `${JSON.stringify(record, null, 2)}\n`);
  }

  /** Reads VM `id`'s record; undefined if it has none (gone, or being created). */
  async read(id: string): Promise<VmRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.paths(id).record, 'utf8')) as VmRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new VmrunError('internal', `cannot read the record of VM ${id}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Every VM's record, oldest first. */
  async list(): Promise<VmRecord[]> {
    const ids = (await readdir(join(this.root, 'vms'))).filter((d) => ID_PATTERN.test(d));
    const records = (await Promise.all(ids.map((id) => this.read(id)))).filter((r): r is VmRecord => r !== undefined);
    return records.sort((a, b) => a.created.localeCompare(b.created));
  }

  /** Every VM with its live status; a dead VM's stale socket is removed on the way. */
  async entries(): Promise<VmEntry[]> {
    return Promise.all((await this.list()).map((r) => this.entry(r)));
  }

  /** One VM's live status: a running record whose host process is gone is `dead` (its socket is removed). */
  async entry(record: VmRecord): Promise<VmEntry> {
    if (record.state === 'exited') return { record, status: 'exited' };
    if (record.pid === undefined) {
      const young = Date.now() - Date.parse(record.created) < START_GRACE_MS;
      return { record, status: young ? 'starting' : 'dead' };
    }
    const socket = this.paths(record.id).controlSocket;
    if (await hostIsAlive(record.pid, socket)) return { record, status: record.state };
    await unlink(socket).catch(() => {});
    return { record, status: 'dead' };
  }

  /**
   * Finds a VM the way docker finds a container: full id, then full name, then a
   * unique id prefix. Unknown: "no such VM"; an ambiguous prefix says so.
   */
  async resolve(ref: string): Promise<VmEntry> {
    const records = await this.list();
    const match =
      records.find((r) => r.id === ref) ??
      records.find((r) => r.name === ref) ??
      (() => {
        const byPrefix = ref.length > 0 ? records.filter((r) => r.id.startsWith(ref)) : [];
        if (byPrefix.length > 1) throw new VmrunError('usage', `VM id prefix "${ref}" is ambiguous: it matches ${byPrefix.map((r) => r.id).join(', ')}`);
        return byPrefix[0];
      })();
    if (!match) throw new VmrunError('not-found', `no such VM: ${ref}`);
    return this.entry(match);
  }

  /** Deletes a VM's directory and frees its name. The caller checks it is not running. */
  async remove(record: VmRecord): Promise<void> {
    if (record.name !== undefined) {
      const link = this.namePath(record.name);
      // Only free the name if it is still ours (never another VM's that took it since).
      if ((await readlink(link).catch(() => undefined)) === record.id) await unlink(link).catch(() => {});
    }
    await rm(this.paths(record.id).dir, { recursive: true, force: true });
  }

  private namePath(name: string): string {
    return join(this.root, 'names', name);
  }
}

function validateName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new VmrunError('usage', `invalid VM name "${name}": use 1-64 letters, digits, "_", "." or "-", starting with a letter or digit`);
  }
}

/**
 * Whether the host process still owns its VM: the pid exists (signal 0) and something
 * accepts connections on its socket (a recycled pid has no listener there).
 */
async function hostIsAlive(pid: number, socketPath: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(alive);
    };
    // A listener too busy to accept within the bound is still there.
    const timer = setTimeout(() => done(true), 1000);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
