// Kernel modules for L1 may come compressed (Debian's 6.12 kernels ship .ko.xz):
// the harness puts their plain bytes into L1's initramfs, where busybox's insmod
// loads them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModule } from './kernel-modules.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmrun-kernel-modules-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Stand-in module bytes: an ELF magic, then bytes that compress differently from a run of one value. */
const plain = Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251))]);

describe('kernel modules for L1', () => {
  it('reads .ko as is and .ko.xz / .ko.gz decompressed', () => {
    writeFileSync(join(dir, 'a.ko'), plain);
    writeFileSync(join(dir, 'b.ko.gz'), gzipSync(plain));
    writeFileSync(join(dir, 'c.ko'), plain);
    execFileSync('xz', ['-z', '--suffix=.xz', join(dir, 'c.ko')]); // -> c.ko.xz
    for (const f of ['a.ko', 'b.ko.gz', 'c.ko.xz']) expect(Buffer.compare(readModule(join(dir, f)), plain), f).toBe(0);
  });

  it('names the file when a compressed module is corrupt', () => {
    writeFileSync(join(dir, 'bad.ko.xz'), Buffer.from('not xz at all'));
    expect(() => readModule(join(dir, 'bad.ko.xz'))).toThrow(/xz -dc .*bad\.ko\.xz failed/);
  });
});
