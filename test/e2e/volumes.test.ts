/**
 * Volumes (-v / --mount, virtio-fs served by virtiofsd) with a real Linux guest, in
 * three boots:
 * 1. As a user who is not root (uid 1000; root runs vmrun through setpriv): files go
 *    both ways while the VM runs, guest files are the user's on the host, `:ro` holds
 *    even after the guest remounts it read-write, and each way out of the shared
 *    directory fails (`..`, symlinks the host planted, an absolute symlink the guest
 *    planted, a hard link in, device nodes, setuid and setgid bits).
 * 2. A large file round trip with equal sha256 both ways, then the guest unbinds and
 *    rebinds the virtio-fs driver (a device reset and restart) and reads on.
 * 3. A background VM: its virtiofsd runs while it runs; a snapshot of it is saved
 *    (the guest unmounts and mounts its volume again) and restored (a new virtiofsd,
 *    host changes seen, guest writes on the host); SIGKILL of its host process takes
 *    virtiofsd with it; a volume in use refuses a save with one clear line.
 * Run: scripts/e2e.sh test/e2e/volumes.test.ts
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, LiveCommand } from '../vmhost/vm-env.js';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { processesWhere, VmrunTestEnv } from './helpers/vmrun-env.js';
import { REPO } from '../helpers/cli.js';

/** One `vmrun run` in L1 takes ~15-20 s (Node's start under TCG, then the guest boot). */
const RUN_TIMEOUT_MS = 240_000;
/**
 * The round-trip file: 200 MB, the size (about 3-4 min in L1, where every byte
 * is hashed by emulated host code and by the L2 guest). Blocks of 1 MiB, each a random
 * block stamped with its index, so a misplaced block changes the hash.
 */
const BIG_MB = Number(process.env.VMRUN_E2E_VOLUME_MB ?? 200);
/** The user vmrun runs as when the suite runs as root. */
const USER = { uid: 1000, gid: 1000 };
const APPLETS = ['ln', 'mknod', 'touch', 'chmod', 'mkdir', 'stat', 'sha256sum', 'cp', 'umount', 'rm', 'basename', 'ls'];

if (process.env.VMRUN_GUEST_KERNEL && !process.env.VMRUN_KERNEL) process.env.VMRUN_KERNEL = process.env.VMRUN_GUEST_KERNEL;

const skipReason = busyboxUnavailableReason();
if (skipReason) console.warn(`volumes e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let image: string;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  const layout = join(env.root, 'layout');
  await writeBusyboxLayout(layout, 'v1', { applets: APPLETS });
  image = `oci:${layout}:v1`;
}, 10 * 60_000);

const running = new Set<LiveCommand>();
afterAll(() => {
  for (const c of running) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  env?.cleanup();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const virtiofsdPids = (dir: string) => processesWhere((argv) => argv[0]!.endsWith('virtiofsd') && argv.includes(`source=${dir}`));

/**
 * The non-root user's own vmrun: state, kernel copy and image in a tree it owns on a
 * tmpfs (/dev/shm: the suite's own runtime dir is root's), and the argv prefix that
 * runs vmrun as that user (nothing when the suite is not root).
 */
function userSetup(): { dir: string; prefix: string[]; env: NodeJS.ProcessEnv; uid: number } {
  const uid = process.getuid!();
  const dir = mkdtempSync(join(uid === 0 ? '/dev/shm' : env.root, 'vmrun-e2e-vol-'));
  chmodSync(dir, 0o755);
  const runtime = join(dir, 'runtime');
  mkdirSync(runtime, { mode: 0o700 });
  const kernel = join(dir, 'vmlinux');
  copyFileSync(env.kernel, kernel);
  const userEnv = { VMRUN_HOME: join(dir, 'home'), VMRUN_CACHE: join(dir, 'cache'), VMRUN_RUNTIME_DIR: join(runtime, 'vms'), VMRUN_KERNEL: kernel, XDG_RUNTIME_DIR: runtime, TMPDIR: runtime, HOME: dir };
  if (uid !== 0) return { dir, prefix: [], env: userEnv, uid };
  chownSync(dir, USER.uid, USER.gid);
  chownSync(runtime, USER.uid, USER.gid);
  const prefix = ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups'];
  return { dir, prefix, env: userEnv, uid: USER.uid };
}

describe.skipIf(skipReason !== undefined)('volumes with a real Linux guest', () => {
  it('as a non-root user: live both ways, owned by the user, :ro enforced by the host, no way out of the shared directory', async () => {
    const user = userSetup();
    const share = join(user.dir, 'share');
    const ro = join(user.dir, 'ro');
    const outside = join(user.dir, 'outside');
    for (const d of [share, ro, outside]) mkdirSync(d);
    writeFileSync(join(outside, 'secret'), 'host-secret\n');
    writeFileSync(join(ro, 'kept'), 'read-only-content\n');
    // Ways out the host planted: relative and absolute symlinks, a symlinked directory.
    symlinkSync('../outside/secret', join(share, 'rel-out'));
    symlinkSync(join(outside, 'secret'), join(share, 'abs-out'));
    symlinkSync(outside, join(share, 'dir-out'));
    if (user.prefix.length) execFileSync('chown', ['-R', `${USER.uid}:${USER.gid}`, user.dir]);
    const layout = join(user.dir, 'layout');
    await writeBusyboxLayout(layout, 'v1', { applets: APPLETS });
    if (user.prefix.length) execFileSync('chown', ['-R', `${USER.uid}:${USER.gid}`, layout]);

    const script = [
      'echo guest-wrote > /vol/from-guest',
      'echo ready > /vol/ready',
      // The host's answer, written while this VM runs (cache=auto: seen within 1 s).
      'i=0; while [ "$(cat /vol/from-host 2>/dev/null)" != host-wrote ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done',
      'echo "seen=$(cat /vol/from-host)"',
      'echo "guest-uid=$(id -u) host-file-owner=$(stat -c %u:%g /vol/from-host)"',
      'echo "ro-kept=$(cat /ro/kept)"',
      'touch /ro/new 2>&1; echo "ro-write=$?"',
      // A guest that remounts the volume read-write still cannot write: the host refuses.
      'mount -o remount,rw /ro; echo "remount=$?"',
      'touch /ro/new2 2>&1; echo "ro-write-after-remount=$?"',
      'mkdir /ro/new3 2>&1; echo "ro-mkdir-after-remount=$?"',
      // Ways out: each must fail and never print the secret.
      'for p in /vol/rel-out /vol/abs-out /vol/dir-out/secret /vol/../outside/secret; do cat $p >/dev/null 2>&1; echo "escape $p=$?"; done',
      `ln -s ${outside} /vol/guest-abs; cat /vol/guest-abs/secret >/dev/null 2>&1; echo "escape guest-abs=$?"`,
      'ln /etc/passwd /vol/hard 2>/dev/null; echo "hardlink-in=$?"',
      'mknod /vol/null c 1 3 2>/dev/null; echo "mknod-char=$?"',
      'mknod /vol/disk b 8 0 2>/dev/null; echo "mknod-block=$?"',
      'touch /vol/suid && chmod 4755 /vol/suid 2>/dev/null; echo "chmod-setuid=$?"',
      'chmod 2755 /vol/suid 2>/dev/null; echo "chmod-setgid=$?"',
      'mkdir /vol/sgid-dir && chmod g+s /vol/sgid-dir 2>/dev/null; echo "chmod-dir-setgid=$?"',
      'echo "suid-mode=$(stat -c %a /vol/suid)"',
      'echo done',
    ].join('\n');
    const argv = [...user.prefix, process.execPath, join(REPO, 'bin', 'run.js'),
      'run', '-q', '--mount', `type=bind,src=${share},dst=/vol`, '-v', `${ro}:/ro:ro`, `oci:${layout}:v1`, 'sh', '-c', script];
    const run = new LiveCommand(spawn(argv[0]!, argv.slice(1), { cwd: REPO, env: { ...process.env, ...user.env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    running.add(run);
    // Guest to host, while the VM runs.
    await eventually(run.whileRunning(async () => (existsSync(join(share, 'ready')) ? true : undefined)), 'the guest\'s files on the host', RUN_TIMEOUT_MS)
      .catch((e: Error) => { throw new Error(`${e.message}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`); });
    expect(readFileSync(join(share, 'from-guest'), 'utf8')).toBe('guest-wrote\n');
    const st = statSync(join(share, 'from-guest'));
    expect([st.uid, st.gid]).toEqual([user.uid, user.uid === USER.uid ? USER.gid : process.getgid!()]);
    // Host to guest.
    writeFileSync(join(share, 'from-host'), 'host-wrote');
    if (user.prefix.length) chownSync(join(share, 'from-host'), USER.uid, USER.gid);
    expect(await run.waitExit(RUN_TIMEOUT_MS), run.stdout + run.stderr).toBe(0);

    const out = run.stdout;
    expect(out, run.stderr).toContain('seen=host-wrote\n');
    // The user's files are root's in the guest (the only uid mapped: docs/volumes.md).
    expect(out).toContain('guest-uid=0 host-file-owner=0:0\n');
    expect(out).toContain('ro-kept=read-only-content\n');
    expect(out).toMatch(/Read-only file system\nro-write=1\n/);
    expect(out).toContain('remount=0\n');
    expect(out).toMatch(/Read-only file system\nro-write-after-remount=1\n/);
    expect(out).toMatch(/Read-only file system\nro-mkdir-after-remount=1\n/);
    for (const p of ['/vol/rel-out', '/vol/abs-out', '/vol/dir-out/secret', '/vol/../outside/secret', 'guest-abs']) expect(out).toMatch(new RegExp(`escape ${p.replace(/[.]/g, '\\.')}=1\n`));
    expect(out).not.toContain('host-secret');
    expect(out).toContain('hardlink-in=1\n');
    expect(out).toContain('mknod-char=1\n');
    expect(out).toContain('mknod-block=1\n');
    expect(out).toContain('chmod-setuid=1\n');
    expect(out).toContain('chmod-setgid=1\n');
    expect(out).toContain('chmod-dir-setgid=1\n');
    expect(out).toContain('suid-mode=644\n');
    expect(out).toMatch(/done\n$/);
    // The host side agrees: nothing written under :ro, no nodes, no set-id bits.
    expect(['new', 'new2', 'new3'].filter((f) => existsSync(join(ro, f)))).toEqual([]);
    expect(['null', 'disk', 'hard'].filter((f) => existsSync(join(share, f)))).toEqual([]);
    expect(statSync(join(share, 'suid')).mode & 0o6000).toBe(0);
    expect(statSync(join(share, 'sgid-dir')).mode & 0o6000).toBe(0);
    expect(lstatSync(join(share, 'guest-abs')).isSymbolicLink()).toBe(true); // a link the guest made, followed by no one on the host
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host-secret\n');
    expect(virtiofsdPids(share)).toEqual([]); // gone with the VM
    rmSync(user.dir, { recursive: true, force: true });
  }, 2 * RUN_TIMEOUT_MS);

  it(`a ${BIG_MB} MB file round trip with equal sha256, across a reset of the virtio-fs device`, async () => {
    const share = join(env.root, 'big');
    mkdirSync(share);
    const block = randomBytes(1 << 20);
    const data = Buffer.alloc(BIG_MB << 20);
    for (let i = 0; i < BIG_MB; i++) {
      block.copy(data, i << 20);
      data.writeUInt32LE(i, i << 20);
    }
    writeFileSync(join(share, 'in'), data);
    const hash = sha256(data);
    const started = Date.now();
    const r = await env.run(
      ['run', '-q', '-v', `${share}:/vol`, image, 'sh', '-c',
        'sha256sum /vol/in && cp /vol/in /vol/out && sync && ' +
        // Unbind and rebind the driver: the device is reset and set up again.
        'umount /vol && dev=$(basename /sys/bus/virtio/drivers/virtiofs/virtio*) && echo $dev > /sys/bus/virtio/drivers/virtiofs/unbind && ' +
        'echo $dev > /sys/bus/virtio/drivers/virtiofs/bind && mount -t virtiofs vmrun0 /vol && echo after-reset >> /vol/reset && cat /vol/reset'],
      { timeoutMs: 4 * RUN_TIMEOUT_MS },
    );
    console.log(`volumes e2e: ${BIG_MB} MB round trip in ${((Date.now() - started) / 1000).toFixed(1)} s (boot included)`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toBe(`${hash}  /vol/in\nafter-reset\n`);
    expect(sha256(readFileSync(join(share, 'out')))).toBe(hash);
  }, 5 * RUN_TIMEOUT_MS);

  it('a background VM with a volume is saved and restored; a volume in use refuses the save; SIGKILL of its host ends virtiofsd', async () => {
    const share = join(env.root, 'bg');
    mkdirSync(share);
    const started = await env.run(['run', '-d', '-q', '--name', 'vol-bg', '-v', `${share}:/data`, image, 'sh', '-c', 'echo up > /data/up; sleep 1000'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(started.status, started.stderr).toBe(0);
    await eventually(async () => (existsSync(join(share, 'up')) ? true : undefined), 'the background guest writing its volume', RUN_TIMEOUT_MS);
    expect(virtiofsdPids(share).length).toBeGreaterThan(0);

    // The guest unmounts the volume for the save and mounts it again: the VM that runs on still uses it.
    const saved = await env.run(['snapshot', 'save', 'vol-bg', '-o', 'vol-bg-snap'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(saved.status, saved.stderr).toBe(0);
    const live = await env.run(['exec', 'vol-bg', 'sh', '-c', 'echo live > /data/after-save && grep -c " /data virtiofs " /proc/mounts'], { timeoutMs: RUN_TIMEOUT_MS });
    expect([live.status, live.stdout, live.stderr]).toEqual([0, '1\n', '']);
    expect(readFileSync(join(share, 'after-save'), 'utf8')).toBe('live\n');
    const inspected = await env.run(['snapshot', 'inspect', 'vol-bg-snap'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(inspected.stdout).toContain(`${share} at /data`);

    const hosts = env.hostPids();
    expect(hosts).toHaveLength(1);
    process.kill(hosts[0]!, 'SIGKILL');
    await eventually(async () => (virtiofsdPids(share).length === 0 ? true : undefined), 'virtiofsd ending with its host process', 60_000);

    // A restore serves the host directory as it is now, through a new virtiofsd, both ways.
    writeFileSync(join(share, 'from-host'), 'changed after the save\n');
    const restored = await env.run(['snapshot', 'restore', '-d', '--name', 'vol-restored', 'vol-bg-snap'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(restored.status, restored.stderr).toBe(0);
    expect(virtiofsdPids(share).length).toBeGreaterThan(0);
    const seen = await env.run(['exec', 'vol-restored', 'sh', '-c', 'cat /data/from-host /data/after-save && echo restored > /data/from-restored'], { timeoutMs: RUN_TIMEOUT_MS });
    expect([seen.status, seen.stdout, seen.stderr]).toEqual([0, 'changed after the save\nlive\n', '']);
    expect(readFileSync(join(share, 'from-restored'), 'utf8')).toBe('restored\n');
    expect((await env.run(['rm', '-f', 'vol-restored'], { timeoutMs: RUN_TIMEOUT_MS })).status).toBe(0);

    // A workload whose working directory is in the volume holds it: the save is refused, nothing is written, the volume stays.
    const busyShare = join(env.root, 'busy');
    mkdirSync(busyShare);
    const busy = await env.run(['run', '-d', '-q', '--name', 'vol-busy', '-w', '/data', '-v', `${busyShare}:/data`, image, 'sleep', '1000'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(busy.status, busy.stderr).toBe(0);
    const refused = await env.run(['snapshot', 'save', 'vol-busy', '-o', 'vol-busy-snap'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(refused.status).toBe(125);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/volume at \/data is in use in the guest/);
    expect(readdirSync(join(env.home, 'snapshots')).filter((f) => f.startsWith('vol-busy'))).toEqual([]);
    const still = await env.run(['exec', 'vol-busy', 'sh', '-c', 'echo still > /data/still'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(still.status, still.stderr).toBe(0);
    expect(readFileSync(join(busyShare, 'still'), 'utf8')).toBe('still\n');
    expect((await env.run(['rm', '-f', 'vol-busy'], { timeoutMs: RUN_TIMEOUT_MS })).status).toBe(0);
  }, 8 * RUN_TIMEOUT_MS);
});
