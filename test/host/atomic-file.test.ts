import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/host/atomic-file.js';

/** A 64 KiB tmpfs, so a write really fails with ENOSPC (needs mount rights: root here). */
let small: string | undefined;
let whyNot = '';
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'vmrun-small-fs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    small = dir;
  } catch (e) {
    whyNot = `cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]}`;
    rmSync(dir, { recursive: true, force: true });
  }
});
afterAll(() => {
  if (!small) return;
  execFileSync('umount', [small]);
  rmSync(small, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes the whole file and leaves no temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmrun-atomic-'));
    await writeFileAtomic(join(dir, 'f'), 'hello');
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('hello');
    expect(readdirSync(dir)).toEqual(['f']);
    rmSync(dir, { recursive: true });
  });

  it('leaves neither a temp file nor a partial file when the write fails (ENOSPC)', async (ctx) => {
    if (!small) {
      console.warn(`skipped: ${whyNot}`);
      ctx.skip();
    }
    const dir = small!;
    const err = await writeFileAtomic(join(dir, 'big'), Buffer.alloc(1 << 20, 1)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as NodeJS.ErrnoException | undefined)?.code).toBe('ENOSPC');
    expect(readdirSync(dir)).toEqual([]);
  });
});
