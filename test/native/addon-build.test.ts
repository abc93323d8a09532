// Which addon build vmrun loads: the one whose ELF header is the process's
// architecture, the host's own cmake-js build before the arm64 cross-build, so the
// same checkout works on an x86_64 host, in the aarch64 harness's L1 (which sees the
// x86 host's build beside the cross-build) and on an arm64 host that built natively.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { findAddonBuild } from '../../src/native/addon.js';

const NATIVE = ['build', 'native', 'Release', 'vmrun_native.node'];
const CROSS = ['build', 'arm64', 'addon', 'vmrun_native.node'];

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vmrun-addon-build-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Writes the start of an ELF shared object for `machine` (e_machine at offset 18) at `parts` under root. */
function writeElf(parts: string[], machine: number): string {
  const path = join(root, ...parts);
  mkdirSync(dirname(path), { recursive: true });
  const b = Buffer.alloc(64);
  b.write('\x7fELF', 0, 'latin1');
  b.writeUInt16LE(machine, 18);
  writeFileSync(path, b);
  return path;
}

function caught(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('the addon build for this architecture', () => {
  it('an x86_64 process loads the cmake-js build, never the arm64 cross-build beside it', () => {
    const native = writeElf(NATIVE, 62);
    writeElf(CROSS, 183);
    expect(findAddonBuild(root, 'x64')).toBe(native);
  });

  it("an arm64 process skips the x86_64 host's build and loads the cross-build (the aarch64 harness's L1)", () => {
    writeElf(NATIVE, 62);
    const cross = writeElf(CROSS, 183);
    expect(findAddonBuild(root, 'arm64')).toBe(cross);
  });

  it("an arm64 host's own build comes before a cross-build", () => {
    const native = writeElf(NATIVE, 183);
    writeElf(CROSS, 183);
    expect(findAddonBuild(root, 'arm64')).toBe(native);
  });

  it('with no build for the architecture, one line says how to build it', () => {
    writeElf(NATIVE, 62);
    const e = caught(() => findAddonBuild(root, 'arm64'));
    expect(isVmrunError(e, 'internal')).toBe(true);
    expect(e.message).toMatch(/^the native addon is not built for arm64 \(none in \S+\/build\): run npm run build:native on this host, or cross-build it with sh scripts\/build-arm64-addon\.sh$/);
    // Not an ELF file at all is no build either.
    writeFileSync(join(root, ...NATIVE), 'not an elf file, but long enough to read a header from');
    expect(caught(() => findAddonBuild(root, 'x64')).message).toMatch(/not built for x64 .*run npm run build:native$/);
  });

  it('refuses another host architecture in one line', () => {
    const e = caught(() => findAddonBuild(root, 'riscv64'));
    expect(isVmrunError(e, 'host')).toBe(true);
    expect(e.message).toBe('vmrun runs on x86_64 and arm64 hosts; this one is riscv64');
  });
});
