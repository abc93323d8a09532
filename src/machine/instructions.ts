/**
 * Names of the instructions this project's PVM-backed KVM is known to reject
 * (shared/notes/host-kvm.md), so an emulation failure says what the guest tried.
 */
const KNOWN: Array<{ prefix: number[]; name: string }> = [
  { prefix: [0x0f, 0x01, 0xd0], name: 'XGETBV' },
  { prefix: [0x0f, 0x01, 0xca], name: 'CLAC' },
  { prefix: [0x0f, 0x01, 0xcb], name: 'STAC' },
  { prefix: [0xf3, 0x0f, 0xb8], name: 'POPCNT' },
  { prefix: [0xf3, 0x0f, 0xbd], name: 'LZCNT' },
  { prefix: [0xf3, 0x0f, 0xbc], name: 'TZCNT' },
  { prefix: [0xcc], name: 'INT3' },
  { prefix: [0xcd], name: 'INT n' },
];

/** A short description of an instruction from its bytes, or '' if unknown. */
export function describeRejectedInstruction(bytes: Uint8Array): string {
  const b = [...bytes];
  // Skip legacy prefixes except F3 (part of POPCNT/LZCNT/TZCNT) and REX.
  let i = 0;
  while (i < b.length && [0x66, 0xf2, 0x2e, 0x3e, 0x26, 0x64, 0x65, 0x36].includes(b[i]!)) i++;
  const rest = b.slice(i);
  for (const k of KNOWN) if (k.prefix.every((v, j) => rest[j] === v)) return k.name;
  const body = rest[0] !== undefined && rest[0] >= 0x40 && rest[0] <= 0x4f ? rest.slice(1) : rest;
  if (body[0] === 0x0f && body[1] === 0xae && body[2] !== undefined && ((body[2] >> 3) & 7) === 5) return 'XRSTOR';
  if (body[0] === 0x0f && body[1] !== undefined && body[1] >= 0x10 && body[1] <= 0x7f) return 'an SSE instruction';
  return '';
}
