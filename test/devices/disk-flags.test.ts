// --disk and --rootfs as the CLI takes them: parsing, and bad files refused with one
// line and exit 125 before any image is pulled (no KVM needed).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDiskFlag } from '../../src/index.js';
import { chooseRootfs, BLOCK_ROOTFS_MIN_BYTES } from '../../src/run/rootfs-choice.js';
import { vmrun } from '../helpers/cli.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vmrun-disk-flags-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('--disk FILE[:ro]', () => {
  it('parses a path, an :ro or :rw suffix, and keeps other colons in the path', () => {
    expect(parseDiskFlag('/d/a.img')).toEqual({ path: '/d/a.img', readOnly: false });
    expect(parseDiskFlag('/d/a.img:ro')).toEqual({ path: '/d/a.img', readOnly: true });
    expect(parseDiskFlag('/d/a.img:rw')).toEqual({ path: '/d/a.img', readOnly: false });
    expect(parseDiskFlag('/d/x:y.img')).toEqual({ path: '/d/x:y.img', readOnly: false });
    expect(parseDiskFlag('rel.img:ro')).toEqual({ path: resolve('rel.img'), readOnly: true });
    expect(() => parseDiskFlag(':ro')).toThrow('--disk ":ro": the file name is empty');
  });

  it('a missing file, a directory or a file under one sector: one line, exit 125, nothing pulled', async () => {
    const env = { VMRUN_HOME: join(work, 'home'), VMRUN_CACHE: join(work, 'cache') };
    const tiny = join(work, 'tiny.img');
    writeFileSync(tiny, Buffer.alloc(10));
    const cases: [string, string][] = [
      [join(work, 'missing.img'), `vmrun: disk ${join(work, 'missing.img')} does not exist`],
      [work, `vmrun: disk ${work} is not a regular file`],
      [`${tiny}:ro`, `vmrun: disk ${tiny} is smaller than one 512-byte sector`],
    ];
    for (const [flag, message] of cases) {
      // The image does not exist either: the disk is judged first.
      const r = await vmrun(['run', '-q', '--disk', flag, 'oci:/nonexistent-layout:v1', 'true'], { env });
      expect(r.status).toBe(125);
      expect(r.stderr.trim().split('\n')).toEqual([message]);
    }
  });
});

describe('--rootfs', () => {
  it('auto picks the disk above the size limit or for extended attributes, else the initramfs', () => {
    expect(chooseRootfs('auto', { contentBytes: BLOCK_ROOTFS_MIN_BYTES, hasXattrs: false })).toBe('initramfs');
    expect(chooseRootfs('auto', { contentBytes: BLOCK_ROOTFS_MIN_BYTES + 1, hasXattrs: false })).toBe('block');
    expect(chooseRootfs('auto', { contentBytes: 10, hasXattrs: true })).toBe('block');
    expect(chooseRootfs('initramfs', { contentBytes: 1 << 30, hasXattrs: true })).toBe('initramfs');
    expect(chooseRootfs('block', { contentBytes: 0, hasXattrs: false })).toBe('block');
  });

  it('an unknown value is refused by the CLI with exit 125', async () => {
    const r = await vmrun(['run', '--rootfs', 'zfs', 'alpine', 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/--rootfs|zfs/);
  });
});
