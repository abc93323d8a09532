import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, symlinkSync, utimesSync, writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { useHostAgent, type HostAgent } from './agent-process.js';
import { describeTree } from './tree.js';
import { copyGuestToHost, copyHostToGuest, extractToHost, packHostPath, type AgentClient } from '../../src/agent/index.js';

// The "guest" is the host agent here: its paths are this host's paths, under `work`.
let agent: HostAgent;
let client: AgentClient;
let work: string;

useHostAgent('vmrun-cp-', { beforeAll, afterAll }, (f) => ({ agent, client, work } = f));

/** A tree with 1000 small files, a 100 MB file, links, odd modes, an empty dir and a fifo. */
function buildTree(root: string): void {
  mkdirSync(root);
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(root, `d${d}`));
    for (let f = 0; f < 100; f++) writeFileSync(join(root, `d${d}`, `f${f}.txt`), randomBytes(f * 37));
  }
  const big = openSync(join(root, 'big.bin'), 'w');
  for (let i = 0; i < 100; i++) writeSync(big, randomBytes(1 << 20));
  closeSync(big);
  writeFileSync(join(root, 'script.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'script.sh'), 0o755);
  writeFileSync(join(root, 'secret'), 'x');
  chmodSync(join(root, 'secret'), 0o600);
  writeFileSync(join(root, 'setuid'), 'y');
  chmodSync(join(root, 'setuid'), 0o4755);
  symlinkSync('d0/f1.txt', join(root, 'relative-link'));
  symlinkSync('/etc/passwd', join(root, 'absolute-link'));
  symlinkSync('missing', join(root, 'dangling-link'));
  linkSync(join(root, 'd1', 'f5.txt'), join(root, 'hard-link'));
  mkdirSync(join(root, 'empty'), { mode: 0o700 });
  mkdirSync(join(root, `deep/${'long-directory-name-'.repeat(8)}`), { recursive: true });
  writeFileSync(join(root, `deep/${'long-directory-name-'.repeat(8)}/${'n'.repeat(120)}`), 'long name');
  execFileSync('mkfifo', [join(root, 'fifo')]);
  writeFileSync(join(root, 'late-in-second'), 'z');
  utimesSync(join(root, 'script.sh'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
  // In the last half millisecond of its second: a millisecond rounding would move it to the next.
  utimesSync(join(root, 'late-in-second'), LATE_IN_SECOND, LATE_IN_SECOND);
}

/** 2020-01-02T03:04:05.9998Z in seconds, for utimes (which takes fractions). */
const LATE_IN_SECOND = Date.parse('2020-01-02T03:04:05Z') / 1000 + 0.9998;

describe('cp over the agent (docker cp placement, tar both ways)', () => {
  it('copies a tree of 1000 files and a 100 MB file in and back out unchanged', async () => {
    const src = join(work, 'src');
    buildTree(src);
    const guestDir = join(work, 'guest');
    mkdirSync(guestDir);
    await copyHostToGuest(client, src, guestDir); // existing dir: lands as guest/src
    const back = join(work, 'back');
    await copyGuestToHost(client, join(guestDir, 'src'), back); // new name: lands as back
    const [a, b, c] = await Promise.all([describeTree(src), describeTree(join(guestDir, 'src')), describeTree(back)]);
    // Directory times change as entries are made; compare everything else for directories.
    const noDirTimes = (t: typeof a) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.type === 'dir' ? { ...v, mtime: 0 } : v]));
    expect(Object.keys(a).length).toBeGreaterThan(1010);
    expect(noDirTimes(b)).toEqual(noDirTimes(a));
    // The host side does not recreate fifos (node has no mkfifo); the guest side does.
    const { fifo, ...aWithoutFifo } = a;
    expect(fifo?.type).toBe('fifo');
    expect(noDirTimes(c)).toEqual(noDirTimes(aWithoutFifo));
    expect(b['big.bin']!.size).toBe(100 << 20);
    expect(b['setuid']!.mode).toBe(0o4755);
    expect(c['absolute-link']!.target).toBe('/etc/passwd');
    expect(c['script.sh']!.mtime).toBe(Date.parse('2020-01-02T03:04:05Z') / 1000);
    expect(lstatSync(join(src, 'late-in-second')).mtimeMs % 1000).toBeGreaterThan(999.5); // the case is set up
    expect([b['late-in-second']!.mtime, c['late-in-second']!.mtime]).toEqual([Math.floor(LATE_IN_SECOND), Math.floor(LATE_IN_SECOND)]);
    // Hard links stay links (one inode) on both sides.
    expect(lstatSync(join(guestDir, 'src', 'hard-link')).ino).toBe(lstatSync(join(guestDir, 'src', 'd1', 'f5.txt')).ino);
    expect(lstatSync(join(back, 'hard-link')).ino).toBe(lstatSync(join(back, 'd1', 'f5.txt')).ino);
  }, 240_000);

  it('copies a single file to a new name and over an existing file', async () => {
    const f = join(work, 'one.txt');
    writeFileSync(f, 'first');
    await copyHostToGuest(client, f, join(work, 'renamed.txt'));
    expect(readFileSync(join(work, 'renamed.txt'), 'utf8')).toBe('first');
    writeFileSync(f, 'second');
    await copyHostToGuest(client, f, join(work, 'renamed.txt'));
    expect(readFileSync(join(work, 'renamed.txt'), 'utf8')).toBe('second');
  });

  it('reports a missing guest path and a missing guest parent as errors', async () => {
    await expect(copyGuestToHost(client, join(work, 'nope'), join(work, 'x'))).rejects.toThrow(/copy-out .*nope.*No such file/);
    expect(existsSync(join(work, 'x'))).toBe(false);
    const f = join(work, 'one.txt');
    await expect(copyHostToGuest(client, f, join(work, 'no-dir', 'sub', 'y'))).rejects.toThrow(/parent directory .* does not exist/);
  });

  it('a host archive that fails while it streams fails the copy with its own error', async () => {
    const dest = join(work, 'from-nowhere');
    mkdirSync(dest);
    // The file vanishes between copyHostToGuest's check and the archive's first read.
    const source = packHostPath(join(work, 'no-such-host-file'));
    await expect(client.copyIn(source, dest, { intoDir: true })).rejects.toThrow(/no such file or directory: .*no-such-host-file/);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('the agent refuses archives that climb out of the destination', async () => {
    const dest = join(work, 'jail');
    mkdirSync(dest);
    // ".." in a name, an absolute name, and a file placed through a symbolic link an earlier entry made.
    const dotdot = tarOf([{ name: '../escaped.txt', body: 'x' }]);
    await expect(client.copyIn(Readable.from([dotdot]), dest, { intoDir: true })).rejects.toThrow(/refusing name with/);
    const abs = tarOf([{ name: `${work}/abs-escaped.txt`, body: 'x' }]);
    await expect(client.copyIn(Readable.from([abs]), dest, { intoDir: true })).rejects.toThrow(/refusing absolute name/);
    const viaLink = tarOf([{ name: 'link', symlink: work }, { name: 'link/through-link.txt', body: 'x' }]);
    await expect(client.copyIn(Readable.from([viaLink]), dest, { intoDir: true })).rejects.toThrow(/through a symbolic link/);
    expect(existsSync(join(work, 'escaped.txt')) || existsSync(join(work, 'abs-escaped.txt')) || existsSync(join(work, 'through-link.txt'))).toBe(false);
    // Garbage is not an archive.
    await expect(client.copyIn(Readable.from([Buffer.alloc(1024, 7)]), dest, { intoDir: true })).rejects.toThrow(/not a tar archive/);
  });

  it('the host extractor refuses the same escapes', async () => {
    const dest = join(work, 'host-jail');
    mkdirSync(dest);
    await expect(extractToHost(Readable.from([tarOf([{ name: '../escaped2.txt', body: 'x' }])]), dest)).rejects.toThrow(/refusing name/);
    await expect(extractToHost(Readable.from([tarOf([{ name: 'l', symlink: work }, { name: 'l/x.txt', body: 'x' }])]), dest)).rejects.toThrow(/not a directory/);
    expect(existsSync(join(work, 'escaped2.txt')) || existsSync(join(work, 'x.txt'))).toBe(false);
  });
});

/** A minimal ustar archive built by hand (so hostile names are possible). */
function tarOf(entries: Array<{ name: string; body?: string; symlink?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const body = Buffer.from(e.body ?? '');
    h.write(e.name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write(e.symlink ? '2' : '0', 156);
    if (e.symlink) h.write(e.symlink, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.fill(' ', 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
