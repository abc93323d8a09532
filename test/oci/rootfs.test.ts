import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { ImageStore, pullImage, streamRootfs, writeRootfsTarFile } from '../../src/oci/index.js';
import { buildLayer, writeOciLayout, type LayerEntrySpec } from './image-builder.js';
import { collectRootfs, fixture, tempDir, useTempHome } from './test-env.js';

const run = promisify(execFile);

let store: ImageStore;
let cleanup: () => Promise<void>;
let work: string;

beforeAll(async () => {
  ({ store, cleanup } = await useTempHome());
  work = await tempDir();
});
afterAll(async () => {
  await cleanup();
  await rm(work, { recursive: true, force: true });
});

/** Writes a single-image layout from layers and pulls it through the oci: source. */
async function pullLayers(name: string, layers: { entries: LayerEntrySpec[]; compression?: 'none' | 'gzip' | 'zstd' }[]) {
  const dir = join(work, name);
  const built = [];
  for (const l of layers) built.push(await buildLayer(l.entries, l.compression ?? 'gzip'));
  await writeOciLayout(dir, { v1: { layers: built } });
  return pullImage(store, `oci:${dir}:v1`);
}

async function expectRejected(name: string, entries: LayerEntrySpec[], pattern: RegExp) {
  const image = await pullLayers(name, [{ entries: [{ name: 'etc/', type: 'directory' }] }, { entries }]);
  const err = await (async () => {
    for await (const _ of streamRootfs(store, image)) {
      // drain
    }
  })().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isVmrunError(err, 'image'), `expected an image error, got ${String(err)}`).toBe(true);
  expect((err as Error).message).toMatch(/layer 2\/2/);
  expect((err as Error).message).toMatch(pattern);
}

describe('rootfs assembly', () => {
  it('applies layers in order with whiteouts, opaque dirs, hardlinks, symlinks and devices kept as metadata', async () => {
    const busybox = await readFile('/bin/busybox'); // Debian's busybox-static: real binary content
    const image = await pullLayers('multi', [
      {
        compression: 'gzip',
        entries: [
          { name: 'bin/', type: 'directory' },
          { name: 'bin/busybox', content: busybox, mode: 0o755 },
          { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
          { name: 'etc/', type: 'directory' },
          { name: 'etc/os-release', content: await fixture('basic/etc/os-release') },
          { name: 'etc/motd', content: await fixture('basic/etc/motd') },
          { name: 'var/cache/', type: 'directory' },
          { name: 'var/cache/a', content: 'a' },
          { name: 'var/cache/sub/b', content: 'b' },
          { name: 'old/file', content: 'old' },
          { name: 'dev/', type: 'directory' },
          { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
          { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
          { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
          { name: 'home/user/', type: 'directory', uid: 1000, gid: 1000, mode: 0o700 },
          { name: 'home/user/secret', content: 'mine', uid: 1000, gid: 1000, mode: 0o4750, mtime: 1_234_567_890 },
          { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
          { name: 'usr/lib/', type: 'directory' },
        ],
      },
      {
        compression: 'zstd',
        entries: [
          { name: 'etc/.wh.motd', content: '' },
          { name: 'var/cache/', type: 'directory', mode: 0o700 },
          { name: 'var/cache/.wh..wh..opq', content: '' },
          { name: 'var/cache/new', content: 'new' },
          { name: 'old', content: 'now a file' },
          { name: 'lib/libc.so', content: 'through the symlink' },
          { name: 'etc/os-release', content: 'replaced' },
        ],
      },
      {
        compression: 'none',
        entries: [
          { name: 'app/run.sh', content: await fixture('basic/app/run.sh'), mode: 0o755 },
          { name: 'app/run-link', type: 'link', linkname: 'app/run.sh' },
          { name: 'bin/.wh.busybox', content: '' },
        ],
      },
    ]);
    const { order, byPath } = await collectRootfs(store, image);
    // Whiteout removed etc/motd; opaque dir hid var/cache's lower content but kept this layer's.
    expect(byPath.has('etc/motd')).toBe(false);
    expect(byPath.has('var/cache/a')).toBe(false);
    expect(byPath.has('var/cache/sub')).toBe(false);
    expect(byPath.get('var/cache/new')?.content?.toString()).toBe('new');
    expect(byPath.get('var/cache')?.mode).toBe(0o700);
    // A file replacing a directory drops the directory's subtree.
    expect(byPath.get('old')?.type).toBe('file');
    expect(byPath.has('old/file')).toBe(false);
    expect(byPath.get('etc/os-release')?.content?.toString()).toBe('replaced');
    // A write through a symlink lands at its target inside the root.
    expect(byPath.get('lib')).toMatchObject({ type: 'symlink', linkname: 'usr/lib' });
    expect(byPath.get('usr/lib/libc.so')?.content?.toString()).toBe('through the symlink');
    // bin/busybox was whited out but its hardlink bin/sh keeps the content: it becomes the file.
    expect(byPath.has('bin/busybox')).toBe(false);
    expect(byPath.get('bin/sh')).toMatchObject({ type: 'file', mode: 0o755, size: busybox.length });
    expect(byPath.get('bin/sh')?.content?.equals(busybox)).toBe(true);
    // Hardlinked paths share one inode: the first path in byte order carries the
    // content, the others link to it and come after it.
    expect(byPath.get('app/run-link')).toMatchObject({ type: 'file', mode: 0o755 });
    expect(byPath.get('app/run-link')?.content?.toString()).toContain('hello from the vmrun test image');
    expect(byPath.get('app/run.sh')).toMatchObject({ type: 'hardlink', linkname: 'app/run-link', mode: 0o755 });
    expect(order.indexOf('app/run.sh')).toBeGreaterThan(order.indexOf('app/run-link'));
    // Devices, fifos, owners, modes and times are metadata.
    expect(byPath.get('dev/null')).toMatchObject({ type: 'char-device', devmajor: 1, devminor: 3, mode: 0o666 });
    expect(byPath.get('dev/sda')).toMatchObject({ type: 'block-device', devmajor: 8, devminor: 0, gid: 6 });
    expect(byPath.get('dev/fifo')?.type).toBe('fifo');
    expect(byPath.get('home/user/secret')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o4750, mtime: 1_234_567_890 });
    // Parents always precede children.
    for (const p of order) {
      const parent = p.split('/').slice(0, -1).join('/');
      if (parent) expect(order.indexOf(parent), `${parent} before ${p}`).toBeLessThan(order.indexOf(p));
    }
    // Deterministic: the same image streams the same order.
    expect((await collectRootfs(store, image)).order).toEqual(order);
  });

  it('exports a tar that GNU tar lists with owners, modes and device numbers', async () => {
    const image = await pullLayers('export', [
      {
        entries: [
          { name: 'etc/motd', content: 'hi\n' },
          { name: 'dev/console', type: 'character-device', devmajor: 5, devminor: 1, mode: 0o600 },
          { name: 'home/u/f', content: 'x', uid: 1234, gid: 5678, mode: 0o640 },
          { name: 'link', type: 'symlink', linkname: '/etc/motd' },
        ],
      },
    ]);
    const out = join(work, 'export.tar');
    const result = await writeRootfsTarFile(streamRootfs(store, image), out);
    expect(result.bytes).toBe(4);
    const { stdout } = await run('tar', ['-tvf', out, '--numeric-owner']);
    expect(stdout).toMatch(/crw------- 0\/0\s+5,1 .* dev\/console/);
    expect(stdout).toMatch(/-rw-r----- 1234\/5678\s+1 .* home\/u\/f/);
    expect(stdout).toMatch(/lrwxrwxrwx? 0\/0\s+0 .* link -> \/etc\/motd|l[rwx-]{9} 0\/0 .* link -> \/etc\/motd/);
    const { stdout: motd } = await run('tar', ['-xOf', out, 'etc/motd']);
    expect(motd).toBe('hi\n');
  });

  it('rejects ".." in an entry path, naming the layer and entry', async () => {
    await expectRejected('dotdot', [{ name: 'etc/../../escape', content: 'x' }], /entry 0 "etc\/\.\.\/\.\.\/escape".*\.\./);
  });

  it('rejects absolute entry paths', async () => {
    await expectRejected('absolute', [{ name: '/etc/passwd', content: 'x' }], /absolute path/);
  });

  it('rejects a write through a symlink that leaves the root', async () => {
    await expectRejected(
      'symlink-escape',
      [
        { name: 'evil', type: 'symlink', linkname: '../../../../tmp' },
        { name: 'evil/owned', content: 'x' },
      ],
      /entry 1 "evil\/owned".*leaves the image root/,
    );
  });

  it('rejects a hardlink whose target path traverses out', async () => {
    await expectRejected('hardlink-escape', [{ name: 'h', type: 'link', linkname: '../etc/shadow' }], /hardlink target.*\.\./);
  });

  it('rejects an absurd entry size', async () => {
    // A raw tar header claiming a petabyte-sized file (base-256 size field).
    const { makeTar } = await import('./image-builder.js');
    const raw = await makeTar([{ name: 'huge', content: 'x' }]);
    const header = raw.subarray(0, 512);
    header.fill(0, 124, 136);
    header[124] = 0x80;
    header.writeUIntBE(2 ** 47, 130, 6);
    // Recompute the header checksum.
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    const { layerFromTar } = await import('./image-builder.js');
    const dir = join(work, 'absurd');
    await writeOciLayout(dir, { v1: { layers: [layerFromTar(raw, 'gzip')] } });
    const image = await pullImage(store, `oci:${dir}:v1`);
    await expect(collectRootfs(store, image)).rejects.toThrow(/layer 1\/1 .*entry 0 "huge": size \d+ is absurd/);
  });

  it('checks each layer against its diff_id', async () => {
    const { buildLayer: build } = await import('./image-builder.js');
    const layer = await build([{ name: 'a', content: 'a' }]);
    const dir = join(work, 'diffid');
    await writeOciLayout(dir, { v1: { layers: [layer], diffIds: [`sha256:${'0'.repeat(64)}`] } });
    const image = await pullImage(store, `oci:${dir}:v1`);
    const err = await collectRootfs(store, image).catch((e: unknown) => e);
    expect(isVmrunError(err, 'digest')).toBe(true);
    expect((err as Error).message).toMatch(/diff_id/);
  });

  it('streams a layer with more files than a spread call can take as arguments (150k)', async () => {
    // Math.max(...ordinals) over this many ordinals overflows V8's stack (RangeError).
    const count = 150_000;
    const entries: LayerEntrySpec[] = [{ name: 'many/', type: 'directory' }];
    for (let i = 0; i < count; i++) entries.push({ name: `many/${i}`, content: 'x' });
    const image = await pullLayers('many-files', [{ entries, compression: 'gzip' }]);
    let files = 0;
    for await (const { entry, content } of streamRootfs(store, image)) {
      if (!content) continue;
      for await (const _ of content) {
        // drain
      }
      if (entry.path.startsWith('many/')) files++;
    }
    expect(files).toBe(count);
  }, 180_000);
});
