// vmrun-init on arm64 finds vmrun's exit device in the device tree the kernel exports
// under /sys/firmware/devicetree/base (a directory per node, a file per property with
// the blob's raw bytes). The real binary's --find-exit-device host mode runs the same
// lookup on a tree laid out here the way the kernel lays it out.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestInit, runGuestInit } from './guest-init-binary.js';

const repo = resolve(import.meta.dirname, '../..');
let init: string;
let dir: string;
beforeAll(() => {
  init = buildGuestInit();
  dir = mkdtempSync(join(tmpdir(), 'vmrun-exit-device-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A "compatible" property: NUL-terminated strings back to back. */
const strings = (...s: string[]) => Buffer.from(s.map((x) => x + '\0').join(''));
/** A reg of two address cells and two size cells, big-endian. */
function reg(address: bigint, size: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(address, 0);
  b.writeBigUInt64BE(size, 8);
  return b;
}

/** Lays out a tree: node name -> property name -> bytes. */
function tree(name: string, nodes: Record<string, Record<string, Buffer>>): string {
  const base = join(dir, name);
  for (const [node, props] of Object.entries(nodes)) {
    mkdirSync(join(base, node), { recursive: true });
    for (const [prop, value] of Object.entries(props)) writeFileSync(join(base, node, prop), value);
  }
  return base;
}

const uart = { compatible: strings('ns16550a'), reg: reg(0x0900_0000n, 0x1000n) };

describe('vmrun-init: the arm64 exit device from the device tree', () => {
  it('reads the address from the reg of the node whose compatible list names vmrun,exit-device', () => {
    // An address other than vmrun's own, so a hard-coded one would fail.
    const base = tree('ok', {
      'uart@9000000': uart,
      'exit@123450000': { compatible: strings('acme,other', 'vmrun,exit-device'), reg: reg(0x1_2345_0000n, 0x1000n) },
    });
    const r = runGuestInit(init, ['--find-exit-device', base]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('exit-device=0x123450000\n');
    expect(r.status).toBe(0);
  });

  it.each([
    ['no such node', { 'uart@9000000': uart }],
    ['a reg of the wrong length', { 'exit@9010000': { compatible: strings('vmrun,exit-device'), reg: reg(0x0901_0000n, 0x1000n).subarray(0, 8) } }],
    ['a compatible that only starts with the name', { 'exit@9010000': { compatible: strings('vmrun,exit-device-2'), reg: reg(0x0901_0000n, 0x1000n) } }],
    ['a compatible without its terminating NUL', { 'exit@9010000': { compatible: Buffer.from('vmrun,exit-device'), reg: reg(0x0901_0000n, 0x1000n) } }],
  ])('finds nothing with %s, and says so', (name, nodes) => {
    const r = runGuestInit(init, ['--find-exit-device', tree(name.replace(/\W+/g, '-'), nodes)]);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/no "vmrun,exit-device" node with a 16-byte reg under /);
    expect(r.status).not.toBe(0);
  });

  it('names the device the way the VMM announces it (one string on each side of the guest boundary)', () => {
    const guest = /#define EXIT_DEVICE_COMPATIBLE "([^"]+)"/.exec(readFileSync(join(repo, 'guest/init/src/exit_report.h'), 'utf8'));
    const vmm = /kExitDeviceCompatible = "([^"]+)"/.exec(readFileSync(join(repo, 'native/arch/aarch64/layout.h'), 'utf8'));
    expect(guest?.[1]).toBeDefined();
    expect(guest?.[1]).toBe(vmm?.[1]);
  });
});
