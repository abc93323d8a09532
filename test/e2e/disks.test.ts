/**
 * Disks and the block root filesystem with a real Linux guest: --disk files written by
 * one VM are on the host and read back by a fresh VM, :ro disks refuse writes, a
 * missing disk is one clear error, and an image with a file capability and a 16 MB
 * layer boots from a read-only ext4 disk under a tmpfs overlay with the capability
 * in force.
 * Run: scripts/e2e.sh test/e2e/disks.test.ts
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../vmhost/vm-env.js';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { VmrunTestEnv } from './helpers/vmrun-env.js';

/** One `vmrun run` in L1 takes ~15-20 s (Node's start under TCG, then the guest boot). */
const RUN_TIMEOUT_MS = 180_000;
/** security.capability for cap_net_raw+ep (VFS_CAP_REVISION_2 | effective; permitted bit 13). */
const CAP_NET_RAW_EP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const CAP_NET_RAW_MASK = '0000000000002000';
// The 300 MB (and 96 MB, above the 64 MiB that makes `--rootfs auto` choose a
// block rootfs) did not finish within 12 minutes in L1: building, pulling and reading
// it are all emulated. 16 MB with `--rootfs block` covers the same path in CI's bound;
// the automatic choice is covered by the capability image (xattrs choose block).
const PAYLOAD_BYTES = 16 << 20;
const DEBUGFS = '/usr/sbin/debugfs';

// The suite's kernel (built on the host from this tree's config) rather than "latest".
if (process.env.VMRUN_GUEST_KERNEL && !process.env.VMRUN_KERNEL) process.env.VMRUN_KERNEL = process.env.VMRUN_GUEST_KERNEL;

const skipReason = busyboxUnavailableReason();
if (skipReason) console.warn(`disks e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let layouts: string;
let plainImage: string;
let capImage: string;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layouts = mkdtempSync(join(tmpdir(), 'vmrun-e2e-disks-'));
  await writeBusyboxLayout(join(layouts, 'plain'), 'v1', { applets: ['mke2fs', 'umount', 'sync', 'dd', 'grep', 'od', 'wc', 'head'] });
  plainImage = `oci:${join(layouts, 'plain')}:v1`;
  // A copy of busybox carrying cap_net_raw+ep runs its `cat` applet by its name.
  await writeBusyboxLayout(join(layouts, 'cap'), 'v1', { applets: ['grep', 'wc', 'tail'], users: [APP_USER], layers: [capLayer()] });
  capImage = `oci:${join(layouts, 'cap')}:v1`;
}, 10 * 60_000);

afterAll(() => {
  env?.cleanup();
  if (layouts) rmSync(layouts, { recursive: true, force: true });
});

const APP_USER = { name: 'app', uid: 1000, gid: 1000, home: '/home/app' };

/** /opt/cap/cat: busybox with cap_net_raw+ep in a PAX xattr record. */
function capLayer() {
  return {
    entries: [
      { name: 'opt/', type: 'directory' as const },
      { name: 'opt/cap/', type: 'directory' as const },
      { name: 'opt/cap/cat', content: readFileSync('/bin/busybox'), mode: 0o755, pax: { 'SCHILY.xattr.security.capability': CAP_NET_RAW_EP.toString('latin1') } },
    ],
  };
}

/** The payload layer: a pattern the guest can check the end of. */
function payload(): Buffer {
  const b = Buffer.alloc(PAYLOAD_BYTES, 'vmrun-payload ');
  b.write('payload-end\n', PAYLOAD_BYTES - 12);
  return b;
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(skipReason !== undefined)('disks with a real Linux guest', () => {
  it('a disk written by the guest (mke2fs + a file, raw dd) is on the host after the VM, and a fresh VM reads it back', async () => {
    const fsDisk = join(env.root, 'fs.img');
    const rawDisk = join(env.root, 'raw.img');
    writeFileSync(fsDisk, Buffer.alloc(16 << 20));
    writeFileSync(rawDisk, Buffer.alloc(1 << 20));
    const marker = `written-by-the-guest-${Date.now()}`;
    const write = await env.run(
      ['run', '-q', '--disk', fsDisk, '--disk', rawDisk, plainImage, 'sh', '-c',
        `mke2fs -q /dev/vda >/dev/null && mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo ${marker} > /mnt/hello && umount /mnt && ` +
        `printf raw-${marker} | dd of=/dev/vdb bs=512 seek=3 conv=fsync 2>/dev/null && sync && echo done`],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    expect(write.stdout, write.stderr).toBe('done\n');
    expect(write.status).toBe(0);
    // On the host, read without the guest: the raw bytes, and the file through e2fsprogs.
    expect(readAt(rawDisk, 3 * 512, `raw-${marker}`.length).toString()).toBe(`raw-${marker}`);
    if (existsSync(DEBUGFS)) expect(execFileSync(DEBUGFS, ['-R', 'cat /hello', fsDisk], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()).toBe(`${marker}\n`);

    const read = await env.run(['run', '-q', '--disk', `${fsDisk}:ro`, plainImage, 'sh', '-c', 'mkdir -p /mnt && mount -t ext4 -o ro /dev/vda /mnt && cat /mnt/hello'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(read.stdout, read.stderr).toBe(`${marker}\n`);
    expect(read.status).toBe(0);
  });

  it(':ro refuses writes in the guest and leaves the host file unchanged', async () => {
    const disk = join(env.root, 'ro.img');
    writeFileSync(disk, Buffer.alloc(1 << 20, 0xab));
    const before = sha256(disk);
    const r = await env.run(
      ['run', '-q', '--disk', `${disk}:ro`, plainImage, 'sh', '-c', 'dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync; echo "dd=$?"; cat /sys/block/vda/ro'],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dd=1\n1\n$/);
    expect(r.stdout + r.stderr).toMatch(/Read-only file system|Operation not permitted/);
    expect(sha256(disk)).toBe(before);
  });

  it('a missing disk file is one clear error and exit 125, before anything boots', async () => {
    const missing = join(env.root, 'no-such-disk.img');
    const r = await env.run(['run', '-q', '--disk', missing, plainImage, 'true'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.status).toBe(125);
    expect(r.stderr.trim().split('\n')).toEqual([`vmrun: disk ${missing} does not exist`]);
  });

  it('a VM on a block rootfs with a disk is saved and restored: it goes on writing the disk and reading its root', async () => {
    const disk = join(env.root, 'counter.img');
    writeFileSync(disk, Buffer.alloc(64 << 10));
    const session = 'i=0; while :; do i=$((i+1)); printf "%08d" $i | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; echo "count $i $(cat /etc/group | head -c 6)"; sleep 1; done';
    const countsIn = (out: string) => [...out.matchAll(/^count (\d+) root:x$/gm)].map((m) => Number(m[1]));
    const started = await env.run(['run', '-d', '-q', '--name', 'disky', '--rootfs', 'block', '--disk', disk, plainImage, 'sh', '-c', session], { timeoutMs: RUN_TIMEOUT_MS });
    expect(started.status, started.stderr).toBe(0);
    const before = env.start(['logs', '-f', 'disky']);
    await eventually(async () => ((countsIn(before.stdout).at(-1) ?? 0) >= 3 ? true : undefined), 'three counts before the save', RUN_TIMEOUT_MS);
    const saved = await env.run(['snapshot', 'save', 'disky', '-o', 'disky', '--stop'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(saved.status, saved.stderr).toBe(0);
    await before.waitExit(60_000);
    const last = countsIn(before.stdout).at(-1)!;
    const inspect = await env.run(['snapshot', 'inspect', 'disky'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(inspect.stdout).toContain(`${disk} (read-write, 64 KiB, serial vmrun-disk0)`);
    expect(inspect.stdout).toMatch(/rootfs-disk\/[0-9a-f]+\.ext4 \(read-only, .*serial vmrun-rootfs\)/);

    const restored = await env.run(['snapshot', 'restore', 'disky', '-d', '--name', 'disky2'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(restored.status, restored.stderr).toBe(0);
    const after = env.start(['logs', '-f', 'disky2']);
    await eventually(async () => ((countsIn(after.stdout).at(-1) ?? 0) >= last + 2 ? true : undefined), `counts past ${last + 1} after the restore`, RUN_TIMEOUT_MS);
    const all = countsIn(before.stdout + after.stdout);
    expect(all).toEqual(all.map((_, i) => i + 1)); // one session: no restart, no repeat
    expect((await env.run(['stop', 'disky2'], { timeoutMs: RUN_TIMEOUT_MS })).status).toBe(0);
    await after.waitExit(60_000);
    expect(Number(readAt(disk, 512, 8).toString())).toBeGreaterThanOrEqual(last + 2);
  }, 10 * 60_000);

  it('an image with a file capability boots from the block rootfs (auto) with the capability in force', async () => {
    const disksDir = join(env.cache, 'rootfs-disk');
    const ext4Files = () => (existsSync(disksDir) ? readdirSync(disksDir).filter((f) => f.endsWith('.ext4')) : []);
    const before = ext4Files().length;
    const r = await env.run(
      ['run', '-q', '-u', '1000', capImage, 'sh', '-c',
        'grep " / " /proc/mounts; echo "plain $(grep CapPrm /proc/self/status)"; /opt/cap/cat /proc/self/status | grep -E "CapPrm|CapEff"; ' +
        'echo scratch > /home/app/new-file && cat /home/app/new-file'],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    // The serial console carries the workload's stderr too: show all of it on failure.
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      expect.stringMatching(/^overlay \/ overlay /), // root is the overlay over the disk
      'plain CapPrm:\t0000000000000000',
      `CapPrm:\t${CAP_NET_RAW_MASK}`,
      `CapEff:\t${CAP_NET_RAW_MASK}`,
      'scratch', // the tmpfs upper layer takes writes (in a directory of the image)
      '',
    ]);
    expect(ext4Files()).toHaveLength(before + 1); // this image's own disk, built once
  });

  it('an image with a file capability and a 16 MB layer runs from a block rootfs (--rootfs block)', async () => {
    const dir = join(layouts, 'big');
    await writeBusyboxLayout(dir, 'v1', {
      applets: ['grep', 'wc', 'tail'],
      users: [APP_USER],
      layers: [capLayer(), { entries: [{ name: 'opt/payload.bin', content: payload() }], compression: 'none' }],
    });
    const r = await env.run(
      ['run', '-q', '-u', '1000', '--rootfs', 'block', `oci:${dir}:v1`, 'sh', '-c', 'wc -c < /opt/payload.bin; tail -c 12 /opt/payload.bin; /opt/cap/cat /proc/self/status | grep CapEff'],
      { timeoutMs: 4 * RUN_TIMEOUT_MS },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${PAYLOAD_BYTES}\npayload-end\nCapEff:\t${CAP_NET_RAW_MASK}\n`);
  }, 20 * 60_000);
});
