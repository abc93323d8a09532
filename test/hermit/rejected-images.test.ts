// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
/**
 * Kernels vmrun must refuse, each with one line naming the file and the problem
 * and exit 125: variants of a good test kernel with one field broken.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, hermitKernel } from './hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 120_000);

const work = mkdtempSync(join(tmpdir(), 'vmrun-hermit-bad-'));

/** Writes a copy of a test kernel with `edit` applied; returns its path. */
function variant(name: string, kernel: string, edit: (elf: Buffer) => void): string {
  const elf = readFileSync(hermitKernel(kernel));
  edit(elf);
  const path = join(work, `${name}.elf`);
  writeFileSync(path, elf);
  return path;
}

/** Offset of the descriptor of the note named `name` (namesz padded to 4). */
function noteDescriptor(elf: Buffer, name: string): number {
  const at = elf.indexOf(Buffer.from(`${name}\0`));
  if (at < 0) throw new Error(`no ${name} note`);
  return at + ((name.length + 1 + 3) & ~3);
}

/** File offset of the first program header of `type`. */
function programHeader(elf: Buffer, type: number): { offset: number; fileOffset: number } {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const offset = phoff + i * 56;
    if (elf.readUInt32LE(offset) === type) return { offset, fileOffset: Number(elf.readBigUInt64LE(offset + 8)) };
  }
  throw new Error(`no program header of type ${type}`);
}

const PT_DYNAMIC = 2;

async function expectRejected(path: string, message: RegExp): Promise<void> {
  const r = await vmrun(['boot', path, '--memory', '32M']);
  expect(r.status).toBe(125);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
}

describe('vmrun boot: Hermit images it refuses', () => {
  it('an entry version outside 2-4, naming the supported ones', async () => {
    for (const v of [1, 5]) {
      const path = variant(`entry-v${v}`, 'uhyve-v2', (elf) => elf.writeUInt8(v, noteDescriptor(elf, 'HERMIT')));
      await expectRejected(
        path,
        new RegExp(`^vmrun: kernel .*entry-v${v}\\.elf: Hermit entry version ${v} is not supported; vmrun boots entry versions 2 to 4 \\(hermit-entry 0\\.9\\.x and 0\\.10\\.x\\)$`, 'm'),
      );
    }
  });

  it('an unknown uhyve interface version', async () => {
    const path = variant('uhyveif-3', 'uhyve-v2', (elf) => elf.writeUInt32BE(3, noteDescriptor(elf, 'UHYVEIF')));
    await expectRejected(path, /uhyve interface version 3 \(UHYVEIF note\) is not supported; vmrun serves versions 1 and 2/);
  });

  it('a kernel that needs shared libraries (DT_NEEDED)', async () => {
    const path = variant('needed', 'uhyve-v2', (elf) => {
      const dynamic = programHeader(elf, PT_DYNAMIC);
      elf.writeBigInt64LE(1n, dynamic.fileOffset);  // first entry's tag -> DT_NEEDED
    });
    await expectRejected(path, /it needs shared libraries \(DT_NEEDED\); a Hermit kernel must be linked statically/);
  });

  it('a truncated image', async () => {
    const full = readFileSync(hermitKernel('uhyve-v2'));
    const path = join(work, 'truncated.elf');
    writeFileSync(path, full.subarray(0, 0x1200));
    await expectRejected(path, /truncated/);
  });

  it('an entry point outside the loaded segments', async () => {
    const path = variant('bad-entry', 'uhyve-v2', (elf) => elf.writeBigUInt64LE(0x7fff0000n, 0x18));
    await expectRejected(path, /the entry point 0x7fff0000 lies outside the loaded segments/);
  });

  it('a kernel that does not fit in guest memory', async () => {
    // ET_EXEC linked at 0x400000, placed in 16 MiB: fits; moved to 15.9 MiB it does not.
    const path = variant('too-high', 'uhyve-v2-exec', (elf) => {
      const phoff = Number(elf.readBigUInt64LE(0x20));
      const phnum = elf.readUInt16LE(0x38);
      const shift = 0xC00000n;
      for (let i = 0; i < phnum; i++) {
        const ph = phoff + i * 56;
        for (const field of [16, 24]) elf.writeBigUInt64LE(elf.readBigUInt64LE(ph + field) + shift, ph + field);
      }
      elf.writeBigUInt64LE(elf.readBigUInt64LE(0x18) + shift, 0x18);
    });
    const r = await vmrun(['boot', path, '--memory', '16M']);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/does not fit in 16 MiB of guest memory; give it more --memory/);
  });
});
