/** The newc writer, checked by reading its archives back with GNU cpio. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { newcArchive, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from './cpio-newc.js';

function cpioList(archive: Buffer): string[] {
  const result = spawnSync('cpio', ['-t', '-v', '--quiet'], { input: archive, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim().split('\n');
}

describe('newcArchive', () => {
  it('writes directories, files, device nodes and symlinks that cpio reads back', () => {
    const archive = newcArchive([
      { name: 'dev', mode: S_IFDIR | 0o755 },
      { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
      { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from('#!/bin/sh\n') },
      { name: 'odd', mode: S_IFREG | 0o644, data: Buffer.from('12345') }, // needs padding
      { name: 'sh', mode: S_IFLNK | 0o777, data: Buffer.from('bin/busybox') },
    ]);
    const listing = cpioList(archive).map((line) => line.split(/\s+/));
    expect(listing.map((f) => [f[0], f.at(-1)])).toEqual([
      ['drwxr-xr-x', 'dev'],
      ['crw-------', 'dev/console'],
      ['-rwxr-xr-x', 'init'],
      ['-rw-r--r--', 'odd'],
      ['lrwxrwxrwx', 'bin/busybox'],
    ]);
    expect(listing[1]?.slice(4, 6)).toEqual(['5,', '1']); // major, minor
    expect(listing[3]?.[4]).toBe('5'); // size
    const extracted = spawnSync('cpio', ['-i', '--to-stdout', '--quiet', 'odd'], { input: archive });
    expect(extracted.stdout.toString()).toBe('12345');
  });

  it('refuses member names that leave the archive', () => {
    expect(() => newcArchive([{ name: '/etc/passwd', mode: S_IFREG | 0o644 }])).toThrow(/must be relative/);
    expect(() => newcArchive([{ name: 'a/../../x', mode: S_IFREG | 0o644 }])).toThrow(/must be relative/);
  });
});
