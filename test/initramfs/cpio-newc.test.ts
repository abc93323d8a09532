// The newc writer, checked by reading its archives back with GNU cpio (a real reader;
// -u because newc repeats a hardlinked file's name to carry its data on the last link).
// The kernel's own unpacker is exercised by test/e2e/guest-init.test.ts.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { CPIO_MAX_NAME_BYTES, newcArchive, type CpioEntry } from '../../src/initramfs/cpio-newc.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vmrun-cpio-'));
  dirs.push(d);
  return d;
}

/** Collects the archive in memory; read-back serves hardlinks from what was produced. */
async function archiveBytes(entries: CpioEntry[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  let produced = Buffer.alloc(0);
  const readBack = async function* (offset: number, length: number) {
    produced = Buffer.concat(parts);
    yield produced.subarray(offset, offset + length);
  };
  for await (const chunk of newcArchive(entries, { readBack })) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function* chunked(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const base = { uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 };

function listVerbose(archive: Buffer): string[] {
  return execFileSync('cpio', ['-itv', '--numeric-uid-gid', '--quiet'], { input: archive }).toString().trim().split('\n');
}

function extract(archive: Buffer, patterns: string[] = []): string {
  const dir = tempDir();
  execFileSync('cpio', ['-idmu', '--quiet', '--no-absolute-filenames', ...patterns], { input: archive, cwd: dir });
  return dir;
}

describe('newcArchive', () => {
  it('writes types, modes, owners and device numbers into the headers', async () => {
    const content = 'hello from a file\n';
    const entries = (): CpioEntry[] => [
      { ...base, path: '/etc', type: 'dir', mode: 0o750, uid: 1000, gid: 2000 },
      { ...base, path: '/etc/greeting', type: 'file', mode: 0o640, uid: 1000, gid: 2000, size: content.length, content: chunked(content, 5) },
      { ...base, path: './etc/link', type: 'symlink', mode: 0o777, linkname: 'greeting' },
      { ...base, path: 'dev/console', type: 'char', mode: 0o600, devmajor: 5, devminor: 1 },
      { ...base, path: 'dev/vda', type: 'block', mode: 0o660, devmajor: 254, devminor: 3 },
      { ...base, path: 'run/fifo', type: 'fifo', mode: 0o644 },
    ];
    const listing = listVerbose(await archiveBytes(entries()));
    expect(listing).toHaveLength(entries().length);
    const line = (name: string) => listing.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `))!;
    expect(line('etc')).toMatch(/^drwxr-x---\s+2\s+1000\s+2000\s+0 /);
    expect(line('etc/greeting')).toMatch(new RegExp(`^-rw-r-----\\s+1\\s+1000\\s+2000\\s+${content.length} `));
    expect(line('etc/link')).toMatch(/^lrwxrwxrwx .* etc\/link -> greeting$/);
    expect(line('dev/console')).toMatch(/^crw-------\s+1\s+0\s+0\s+5,\s+1 /);
    expect(line('dev/vda')).toMatch(/^brw-rw----\s+1\s+0\s+0\s+254,\s+3 /);
    expect(line('run/fifo')).toMatch(/^prw-r--r-- /);

    const dir = extract(await archiveBytes(entries()), ['etc', 'etc/*']);
    expect(readFileSync(join(dir, 'etc/greeting'), 'utf8')).toBe(content);
    expect(readlinkSync(join(dir, 'etc/link'))).toBe('greeting');
    expect(statSync(join(dir, 'etc/greeting')).mtimeMs).toBe(base.mtime * 1000);
  });

  it('pads every member to 4 bytes, whatever the name and data lengths', async () => {
    const entries: CpioEntry[] = [];
    for (let n = 0; n < 8; n++) {
      const data = 'x'.repeat(n);
      entries.push({ ...base, path: `${'d'.repeat(n + 1)}`, type: 'file', mode: 0o644, size: n, content: Buffer.from(data) });
    }
    const archive = await archiveBytes(entries);
    expect(archive.length % 4).toBe(0);
    expect(archive.subarray(archive.length - 16).toString('latin1')).toContain('TRAILER!!!');
    const dir = extract(archive);
    for (let n = 0; n < 8; n++) expect(readFileSync(join(dir, 'd'.repeat(n + 1)), 'utf8')).toBe('x'.repeat(n));
  });

  it('writes hardlinks as one inode whose data survives extraction', async () => {
    const data = 'shared bytes, 29 of them....\n';
    const entries: CpioEntry[] = [
      { ...base, path: 'bin', type: 'dir', mode: 0o755 },
      { ...base, path: 'bin/gzip', type: 'file', mode: 0o755, size: data.length, content: Buffer.from(data) },
      { ...base, path: 'bin/gunzip', type: 'hardlink', mode: 0o755, linkname: '/bin/gzip' },
      { ...base, path: 'bin/zcat', type: 'hardlink', mode: 0o755, linkname: 'bin/gunzip' },
    ];
    const archive = await archiveBytes(entries);
    const dir = extract(archive);
    const inodes = ['gzip', 'gunzip', 'zcat'].map((n) => lstatSync(join(dir, 'bin', n)).ino);
    expect(new Set(inodes).size).toBe(1);
    for (const n of ['gzip', 'gunzip', 'zcat']) expect(readFileSync(join(dir, 'bin', n), 'utf8')).toBe(data);
  });

  it('writes a hardlink to a non-file as a copy of that node', async () => {
    const entries: CpioEntry[] = [
      { ...base, path: 'a', type: 'symlink', mode: 0o777, linkname: 'target' },
      { ...base, path: 'b', type: 'hardlink', mode: 0o777, linkname: 'a' },
    ];
    const dir = extract(await archiveBytes(entries));
    expect(readlinkSync(join(dir, 'b'))).toBe('target');
  });

  const refusals: [string, CpioEntry[], RegExp][] = [
    ['a name over 4 KiB', [{ ...base, path: 'n'.repeat(CPIO_MAX_NAME_BYTES), type: 'dir', mode: 0o755 }], /over the 4095-byte limit/],
    ['a size over 4 GiB', [{ ...base, path: 'big', type: 'file', mode: 0o644, size: 2 ** 32 }], /size 4294967296 is outside/],
    ['content shorter than its size', [{ ...base, path: 'short', type: 'file', mode: 0o644, size: 10, content: Buffer.from('abc') }], /has 3 bytes, not its size 10/],
    ['content longer than its size', [{ ...base, path: 'long', type: 'file', mode: 0o644, size: 2, content: Buffer.from('abc') }], /longer than its size 2/],
    ['a path escaping the root', [{ ...base, path: 'a/../../etc', type: 'dir', mode: 0o755 }], /not a clean path/],
    ['a hardlink to nothing earlier', [{ ...base, path: 'x', type: 'hardlink', mode: 0o644, linkname: 'missing' }], /not an earlier entry/],
    ['a uid that does not fit', [{ ...base, path: 'u', type: 'dir', mode: 0o755, uid: -1 }], /uid -1 is outside/],
  ];
  for (const [what, entries, message] of refusals) {
    it(`refuses ${what} with one clear error`, async () => {
      const err = await archiveBytes(entries).catch((e: unknown) => e);
      expect(isVmrunError(err, 'image')).toBe(true);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('needs read-back for a hardlink to a file and says so', async () => {
    const entries: CpioEntry[] = [
      { ...base, path: 'f', type: 'file', mode: 0o644, size: 1, content: Buffer.from('a') },
      { ...base, path: 'g', type: 'hardlink', mode: 0o644, linkname: 'f' },
    ];
    const err = await (async () => {
      for await (const _ of newcArchive(entries)) void _;
    })().catch((e: unknown) => e);
    expect(isVmrunError(err, 'internal')).toBe(true);
    expect((err as Error).message).toMatch(/read back/);
  });
});
