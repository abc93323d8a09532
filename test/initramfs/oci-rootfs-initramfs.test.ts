// An image's initramfs built from the OCI library's real output: a layout with
// layers (hardlinks, whiteouts, devices, owners) pulled into a store, streamed as a
// flattened rootfs, written as newc, then read back with GNU cpio.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImageInitramfs } from '../../src/initramfs/image-initramfs.js';
import { cpioEntriesOfRootfs } from '../../src/initramfs/rootfs-entries.js';
import { pullImage, streamRootfs, type ImageStore } from '../../src/oci/index.js';
import { buildLayer, writeOciLayout } from '../oci/image-builder.js';
import { useTempHome } from '../oci/test-env.js';
import { buildGuestInit } from './guest-init-binary.js';

let store: ImageStore;
let cleanupHome: () => Promise<void>;
let work: string;
beforeAll(async () => {
  ({ store, cleanup: cleanupHome } = await useTempHome());
  work = mkdtempSync(join(tmpdir(), 'vmrun-oci-initramfs-'));
});
afterAll(async () => {
  await cleanupHome();
  rmSync(work, { recursive: true, force: true });
});

describe('initramfs of a pulled image', () => {
  it('holds the flattened rootfs with owners, devices and hardlinks intact', async () => {
    const busybox = await readFile('/bin/busybox');
    const layers = [
      await buildLayer([
        { name: 'bin/', type: 'directory' },
        { name: 'bin/busybox', content: busybox, mode: 0o755 },
        { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
        { name: 'etc/', type: 'directory' },
        { name: 'etc/motd', content: 'to be whited out' },
        { name: 'dev/', type: 'directory' },
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
        { name: 'home/user/', type: 'directory', uid: 1000, gid: 1000, mode: 0o700 },
        { name: 'home/user/secret', content: 'mine', uid: 1000, gid: 1000, mode: 0o4750 },
      ]),
      await buildLayer([
        { name: 'etc/.wh.motd', content: '' },
        { name: 'etc/hostname', content: 'layer2\n' },
        { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      ], 'zstd'),
    ];
    const layout = join(work, 'layout');
    await writeOciLayout(layout, { v1: { layers } });
    const image = await pullImage(store, `oci:${layout}:v1`);

    const archive = await buildImageInitramfs(
      { imageDigest: image.record.digest, initBinaryPath: buildGuestInit(), cacheDir: join(work, 'cache') },
      cpioEntriesOfRootfs(streamRootfs(store, image)),
    );
    const bytes = readFileSync(archive);
    const listing = execFileSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid'], { input: bytes }).toString();
    expect(listing).toMatch(/^brw-rw----\s+1\s+0\s+6\s+8,\s+0 .* dev\/sda$/m);
    expect(listing).toMatch(/^drwx------\s+2\s+1000\s+1000 .* home\/user$/m);
    expect(listing).toMatch(/^-rwsr-x---\s+1\s+1000\s+1000\s+4 .* home\/user\/secret$/m);
    expect(listing).toMatch(/^l[-rwx]{9} .* lib -> usr\/lib$/m); // symlink permission bits are meaningless
    expect(listing).not.toMatch(/etc\/motd/);

    const out = mkdtempSync(join(work, 'x-'));
    execFileSync('cpio', ['-idmu', '--quiet', 'bin', 'bin/*', 'etc', 'etc/*'], { input: bytes, cwd: out });
    expect(readFileSync(join(out, 'bin/sh'))).toEqual(busybox);
    expect(lstatSync(join(out, 'bin/sh')).ino).toBe(lstatSync(join(out, 'bin/busybox')).ino);
    expect(readFileSync(join(out, 'etc/hostname'), 'utf8')).toBe('layer2\n');
  });
});
