// The cached image initramfs: what it holds around the image, the cache hit that skips
// the image stream, and that a failed build leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import type { CpioEntry } from '../../src/initramfs/cpio-newc.js';
import { buildImageInitramfs, findCachedImageInitramfs, GUEST_INIT_PATH, type ImageInitramfsKey } from '../../src/initramfs/image-initramfs.js';
import { buildGuestInit } from './guest-init-binary.js';

let init: string;
const dirs: string[] = [];
beforeAll(() => {
  init = buildGuestInit();
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function keyIn(dir: string, over: Partial<ImageInitramfsKey> = {}): ImageInitramfsKey {
  return { imageDigest: `sha256:${'a'.repeat(64)}`, initBinaryPath: init, cacheDir: join(dir, 'cache'), ...over };
}
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'vmrun-initramfs-'));
  dirs.push(d);
  return d;
}
const root = { uid: 0, gid: 0, mtime: 0, size: 0 };
const file = (path: string, body: string): CpioEntry => ({ ...root, path, type: 'file', mode: 0o644, size: body.length, content: Buffer.from(body) });

function names(archive: string): string[] {
  return execFileSync('cpio', ['-it', '--quiet'], { input: readFileSync(archive) }).toString().trim().split('\n');
}

describe('buildImageInitramfs', () => {
  it('puts early /dev first, the image, then /.vmrun/init and /init, creating missing parents', async () => {
    const dir = temp();
    const image = [file('usr/share/doc/readme', 'hello\n')];
    const path = await buildImageInitramfs(keyIn(dir), image);
    const list = names(path);
    expect(list.slice(0, 4)).toEqual(['dev', 'dev/console', 'dev/null', 'dev/tty']);
    expect(list.slice(4, 8)).toEqual(['usr', 'usr/share', 'usr/share/doc', 'usr/share/doc/readme']);
    expect(list.slice(8)).toEqual(['.vmrun', GUEST_INIT_PATH.slice(1), 'init']);
    const verbose = execFileSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid'], { input: readFileSync(path) }).toString();
    expect(verbose).toMatch(/^crw-------\s+1\s+0\s+0\s+5,\s+1 .* dev\/console$/m);
    expect(verbose).toMatch(/^lrwxrwxrwx .* init -> \.vmrun\/init$/m);
    const out = temp();
    execFileSync('cpio', ['-idm', '--quiet', '.vmrun/*'], { input: readFileSync(path), cwd: out });
    expect(readFileSync(join(out, GUEST_INIT_PATH))).toEqual(readFileSync(init));
  });

  it("keeps the image's own /init", async () => {
    const path = await buildImageInitramfs(keyIn(temp()), [file('init', '#!/bin/sh\n')]);
    expect(names(path).filter((n) => n === 'init')).toHaveLength(1);
  });

  it('finds the cached archive without reading the image again', async () => {
    const dir = temp();
    const first = await buildImageInitramfs(keyIn(dir), [file('a', 'x')]);
    expect(await findCachedImageInitramfs(keyIn(dir))).toBe(first);
    const untouchable = {
      [Symbol.iterator](): Iterator<CpioEntry> {
        throw new Error('the image stream was read although the cache has the archive');
      },
    };
    expect(await buildImageInitramfs(keyIn(dir), untouchable)).toBe(first);
  });

  it('keys the cache by the image digest and by the init binary', async () => {
    const dir = temp();
    const base = await buildImageInitramfs(keyIn(dir), [file('a', 'x')]);
    const otherImage = keyIn(dir, { imageDigest: `sha256:${'c'.repeat(64)}` });
    expect(await findCachedImageInitramfs(otherImage)).toBeUndefined();
    const otherInit = join(dir, 'other-init');
    copyFileSync(init, otherInit);
    execFileSync('sh', ['-c', `printf x >> "${otherInit}"`]);
    expect(await findCachedImageInitramfs(keyIn(dir, { initBinaryPath: otherInit }))).toBeUndefined();
    expect(await buildImageInitramfs(keyIn(dir, { initBinaryPath: otherInit }), [file('a', 'x')])).not.toBe(base);
  });

  it('leaves nothing in the cache when the image stream fails midway', async () => {
    const dir = temp();
    async function* failing(): AsyncGenerator<CpioEntry> {
      yield file('a', 'x');
      throw new Error('layer read failed');
    }
    await expect(buildImageInitramfs(keyIn(dir), failing())).rejects.toThrow('layer read failed');
    expect(await findCachedImageInitramfs(keyIn(dir))).toBeUndefined();
    expect(readdirSync(join(dir, 'cache', 'initramfs'))).toEqual([]);
  });

  it('refuses a malformed digest and a missing init binary with clear errors', async () => {
    const dir = temp();
    const badDigest = await buildImageInitramfs(keyIn(dir, { imageDigest: 'latest' }), []).catch((e: unknown) => e);
    expect(isVmrunError(badDigest, 'usage')).toBe(true);
    expect((badDigest as Error).message).toMatch(/image digest "latest"/);
    const noInit = await buildImageInitramfs(keyIn(dir, { initBinaryPath: join(dir, 'nope') }), []).catch((e: unknown) => e);
    expect(isVmrunError(noInit, 'not-found')).toBe(true);
    expect((noInit as Error).message).toMatch(/make -C guest\/init/);
    expect(existsSync(join(dir, 'cache', 'initramfs'))).toBe(false);
  });
});
