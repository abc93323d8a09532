// The block rootfs of a pulled image: layers with owners, modes, hard links, device
// nodes, whiteouts and a file capability in a PAX xattr record, flattened by the OCI
// library and written by vmrun's ext4 writer, then read back with e2fsprogs (e2fsck
// for the structure, debugfs for every file's metadata and content) without root.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImageDisk, findCachedImageDisk } from '../../src/blockfs/image-disk.js';
import { writeExt4Image } from '../../src/blockfs/ext4-image.js';
import type { RootfsItem } from '../../src/oci/index.js';
import { pullImage, streamRootfs, type ImageStore } from '../../src/oci/index.js';
import { buildLayer, writeOciLayout } from '../oci/image-builder.js';
import { useTempHome } from '../oci/test-env.js';

const DEBUGFS = '/usr/sbin/debugfs';
const E2FSCK = '/usr/sbin/e2fsck';
const tools = existsSync(DEBUGFS) && existsSync(E2FSCK);
/** security.capability for cap_net_raw+ep (VFS_CAP_REVISION_2, effective, permitted bit 13). */
const CAP_NET_RAW_EP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
/** cap_setuid+ep: permitted bit 7, a byte of 0x80 that UTF-8 decoding would mangle. */
const CAP_SETUID_EP = Buffer.from('0100000280000000000000000000000000000000', 'hex');

let store: ImageStore;
let cleanupHome: () => Promise<void>;
let work: string;
beforeAll(async () => {
  ({ store, cleanup: cleanupHome } = await useTempHome());
  work = mkdtempSync(join(tmpdir(), 'vmrun-ext4-'));
});
afterAll(async () => {
  await cleanupHome();
  rmSync(work, { recursive: true, force: true });
});

const debugfs = (image: string, request: string) => execFileSync(DEBUGFS, ['-R', request, image], { stdio: ['ignore', 'pipe', 'ignore'] });

/** e2fsck -fn: the exit status is 0 only when it found nothing to fix. */
function fsck(image: string): { status: number; output: string } {
  try {
    return { status: 0, output: execFileSync(E2FSCK, ['-fn', image], { stdio: ['ignore', 'pipe', 'pipe'] }).toString() };
  } catch (e) {
    const err = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { status: err.status, output: `${err.stdout}${err.stderr}` };
  }
}

describe.skipIf(!tools)('ext4 block rootfs of a pulled image (e2fsprogs reads it back)', () => {
  let image: string;
  const busybox = readFileSync('/bin/busybox');
  beforeAll(async () => {
    const layers = [
      await buildLayer([
        { name: 'bin/', type: 'directory' },
        { name: 'bin/busybox', content: busybox, mode: 0o755 },
        { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
        { name: 'bin/ping', content: busybox, mode: 0o755, pax: { 'SCHILY.xattr.security.capability': CAP_NET_RAW_EP.toString('latin1'), 'SCHILY.xattr.user.origin': 'layer one' } },
        { name: 'bin/newuidmap', content: 'x', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': CAP_SETUID_EP.toString('latin1') } },
        { name: 'etc/', type: 'directory' },
        { name: 'etc/motd', content: 'to be whited out' },
        { name: 'dev/', type: 'directory' },
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
        { name: 'dev/odd', type: 'character-device', devmajor: 300, devminor: 70000, mode: 0o600 },
        { name: 'run/fifo', type: 'fifo', mode: 0o620 },
        { name: 'home/user/', type: 'directory', uid: 100000, gid: 1000, mode: 0o700 },
        { name: 'home/user/secret', content: 'mine', uid: 100000, gid: 1000, mode: 0o4750 },
        { name: 'long-link', type: 'symlink', linkname: `${'deep/'.repeat(20)}target` },
      ]),
      await buildLayer([
        { name: 'etc/.wh.motd', content: '' },
        { name: 'etc/hostname', content: 'layer2\n' },
        { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
        ...Array.from({ length: 400 }, (_, i) => ({ name: `many/file-${i}-${'x'.repeat(i % 60)}`, content: `${i}\n` })),
      ], 'zstd'),
    ];
    const layout = join(work, 'layout');
    await writeOciLayout(layout, { v1: { layers } });
    const pulled = await pullImage(store, `oci:${layout}:v1`);
    const cacheDir = join(work, 'cache');
    expect(await findCachedImageDisk(pulled.record.digest, cacheDir)).toBeUndefined();
    image = await buildImageDisk(pulled.record.digest, streamRootfs(store, pulled), cacheDir);
    expect(await findCachedImageDisk(pulled.record.digest, cacheDir)).toBe(image);
  });

  it('is a consistent ext4 file system (e2fsck -fn finds nothing)', () => {
    const r = fsck(image);
    expect(r.output).toContain('Pass 5');
    expect(r.status).toBe(0);
  });

  it('keeps owners, modes, device numbers, fifos and symlinks', () => {
    const root = debugfs(image, 'ls -l /dev').toString();
    expect(root).toMatch(/\s60660 \(4\)\s+0\s+6\s+0 .* sda/);
    expect(root).toMatch(/\s20600 \(3\)\s+0\s+0\s+0 .* odd/);
    expect(debugfs(image, 'stat /dev/sda').toString()).toMatch(/Device major\/minor number: 08:00/);
    expect(debugfs(image, 'stat /dev/odd').toString()).toMatch(/Device major\/minor number: 300:70000/);
    expect(debugfs(image, 'ls -l /run').toString()).toMatch(/\s10620 \(5\) .* fifo/);
    const secret = debugfs(image, 'stat /home/user/secret').toString();
    expect(secret).toMatch(/Mode:\s+04750/);
    expect(secret).toMatch(/User:\s+100000\s+Group:\s+1000/);
    expect(debugfs(image, 'stat /home/user').toString()).toMatch(/Type: directory\s+Mode:\s+0700/);
    expect(debugfs(image, 'stat /lib').toString()).toMatch(/Fast link dest: "usr\/lib"/);
    expect(debugfs(image, 'cat /long-link').toString()).toBe(`${'deep/'.repeat(20)}target`);
  });

  it('keeps hard links as one inode and contents byte for byte', () => {
    const sh = debugfs(image, 'stat /bin/sh').toString();
    const bb = debugfs(image, 'stat /bin/busybox').toString();
    expect(sh).toMatch(/Links: 2/);
    expect(sh.match(/Inode: (\d+)/)![1]).toBe(bb.match(/Inode: (\d+)/)![1]);
    const out = join(work, 'busybox.out');
    debugfs(image, `dump /bin/busybox ${out}`);
    expect(readFileSync(out).equals(busybox)).toBe(true);
    expect(debugfs(image, 'cat /etc/hostname').toString()).toBe('layer2\n');
    expect(debugfs(image, 'cat /many/file-399-' + 'x'.repeat(399 % 60)).toString()).toBe('399\n');
  });

  it('applies whiteouts', () => {
    expect(debugfs(image, 'ls /etc').toString()).not.toMatch(/motd/);
  });

  it('keeps extended attributes: the file capability and a user attribute', () => {
    const attrs = debugfs(image, 'ea_list /bin/ping').toString();
    expect(attrs).toContain('security.capability (20) = 01 00 00 02 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
    expect(attrs).toContain('user.origin (9) = "layer one"');
    // Byte for byte through the tar reader, the layer index and the writer.
    expect(debugfs(image, 'ea_list /bin/newuidmap').toString()).toContain('security.capability (20) = 01 00 00 02 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
  });
});

async function* synthetic(count: number, bigBytes: number): AsyncGenerator<RootfsItem> {
  const meta = { uid: 0, gid: 0, mtime: 1_700_000_000, size: 0, mode: 0o755 };
  yield { entry: { ...meta, path: 'd', type: 'directory' } };
  for (let i = 0; i < count; i++) yield { entry: { ...meta, path: `d/f${i}`, type: 'file', mode: 0o644 } };
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  yield {
    entry: { ...meta, path: 'big', type: 'file', size: bigBytes, xattrs: { 'user.long': 'v'.repeat(300) } },
    content: (async function* () {
      for (let done = 0; done < bigBytes; done += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, bigBytes - done));
    })(),
  };
}

describe.skipIf(!tools)('ext4 writer at scale', () => {
  it('spreads 40000 inodes and a 600 MiB file (an extent tree) over several groups', async () => {
    const path = join(work, 'scale.ext4');
    const handle = await open(path, 'w+');
    const summary = await writeExt4Image(handle, synthetic(40_000, 600 << 20), Buffer.alloc(16, 7));
    await handle.close();
    expect(summary.groups).toBeGreaterThan(4);
    expect(statSync(path).size).toBe(summary.bytes);
    expect(fsck(path).status).toBe(0);
    const big = debugfs(path, 'stat /big').toString();
    expect(big).toMatch(/Size: 629145600/);
    expect(big).toMatch(/\(ETB0\)/); // more than 4 extents: one index level
    expect(debugfs(path, 'ea_list /big').toString()).toContain('user.long (300)');
    expect(debugfs(path, 'stat /d/f39999').toString()).toMatch(/Type: regular/);
    rmSync(path);
  }, 120_000);

  it('refuses a file whose content is shorter than its header says', async () => {
    const handle = await open(join(work, 'short.ext4'), 'w+');
    async function* short(): AsyncGenerator<RootfsItem> {
      yield { entry: { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 10 }, content: (async function* () { yield Buffer.from('abc'); })() };
    }
    await expect(writeExt4Image(handle, short(), Buffer.alloc(16))).rejects.toThrow(/image file "\/f": content ended after 3 of 10 bytes/);
    await handle.close();
  });
});
