/**
 * The ELF e_machine of a file, and the one each Node architecture runs. A checkout can
 * hold binaries of two architectures side by side (the aarch64 harness's L1 runs the
 * checkout an x86_64 host built; a cross-build sits beside a native one), so the addon
 * and the guest init are chosen by what their ELF header says they are.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** e_machine by Node's process.arch name: EM_X86_64, EM_AARCH64. */
export const ELF_MACHINE_BY_NODE_ARCH: Partial<Record<string, number>> = { x64: 62, arm64: 183 };

/** The ELF e_machine of `path`, or undefined if it is not an ELF file. */
export function elfMachine(path: string): number | undefined {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, header, 0, 20, 0) < 20 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  } finally {
    closeSync(fd);
  }
  return header.readUInt16LE(18);
}
