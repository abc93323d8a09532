// @ts-check
/**
 * Reads the `kvm_exit` lines the x86 L1 traces (l1-init.sh: shutdown exits, that is
 * triple faults, and injected exceptions): what event the guest was taking when it
 * exited (SVM's EXITINTINFO, which the trace prints as intr_info) and where its RIP
 * is in the guest kernel. By hand, this took System.map and the APM's tables.
 */
import { execFileSync } from 'node:child_process';

/** Exception vectors by number (SDM vol. 3, table 6-1). */
const VECTOR_NAMES = ['#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', 'coprocessor overrun', '#TS', '#NP', '#SS', '#GP', '#PF', 'reserved', '#MF', '#AC', '#MC', '#XM', '#VE', '#CP'];

/** EXITINTINFO's TYPE field (APM vol. 2, 15.7.2). */
const EVENT_TYPES = ['external interrupt', 'type 1', 'NMI', 'exception', 'software interrupt', 'type 5', 'type 6', 'type 7'];

/**
 * What a page fault's error code says (SDM vol. 3, 4.7).
 * @param {number} code
 */
function pageFaultCause(code) {
  const access = code & 0x10 ? 'instruction fetch' : code & 0x2 ? 'write' : 'read';
  return `${access}${code & 0x4 ? ' from user mode' : ''}, ${code & 0x1 ? 'protection violation' : 'page not present'}${code & 0x8 ? ', reserved bit set' : ''}`;
}

/**
 * The event in `intr_info` (EXITINTINFO), in words, or undefined when none was pending.
 * @param {number} info
 * @param {number} errorCode
 * @returns {string | undefined}
 */
export function describeExitIntInfo(info, errorCode) {
  if (!(info & 0x8000_0000)) return undefined;
  const vector = info & 0xff;
  const type = (info >> 8) & 0x7;
  const name = type === 3 ? VECTOR_NAMES[vector] : undefined;
  let text = name ? `${name} (vector ${vector}, ${EVENT_TYPES[type]})` : `vector ${vector} (${EVENT_TYPES[type]})`;
  if (info & 0x800) {
    text += `, error code 0x${errorCode.toString(16)}`;
    if (type === 3 && vector === 14) text += ` (${pageFaultCause(errorCode)})`;
  }
  return text;
}

/**
 * A symbolizer over a kernel image's symbols (`nm -n`): address -> "symbol+0xoff".
 * @param {string} nmOutput
 * @returns {(address: bigint) => string | undefined}
 */
export function symbolizerFromNm(nmOutput) {
  /** @type {{ address: bigint, name: string }[]} */
  const symbols = [];
  for (const line of nmOutput.split('\n')) {
    const m = /^([0-9a-f]{16}) [tTwW] (\S+)$/.exec(line);
    if (m) symbols.push({ address: BigInt(`0x${m[1]}`), name: m[2] ?? '' });
  }
  symbols.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return (address) => {
    let lo = 0;
    let hi = symbols.length - 1;
    let found;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = symbols[mid];
      if (s && s.address <= address) {
        found = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found ? `${found.name}+0x${(address - found.address).toString(16)}` : undefined;
  };
}

/**
 * The text symbols of the kernel `vmlinux`, or undefined when nm cannot read it.
 * @param {string} vmlinux
 */
export function kernelSymbolizer(vmlinux) {
  try {
    return symbolizerFromNm(execFileSync('nm', ['-n', '--defined-only', vmlinux], { encoding: 'latin1', maxBuffer: 256 << 20, timeout: 60_000 }));
  } catch {
    return undefined;
  }
}

/**
 * One trace line, with what its intr_info and RIP mean appended on a line of its own
 * (unchanged when it is not a kvm_exit line with both).
 * @param {string} line
 * @param {((address: bigint) => string | undefined) | undefined} symbolize
 */
export function explainKvmExit(line, symbolize) {
  const m = /kvm_exit: .*?\brip (0x[0-9a-f]+)\b.*?\bintr_info (0x[0-9a-f]+)\b.*?\berror_code (0x[0-9a-f]+)\b/.exec(line);
  if (!m) return line;
  const event = describeExitIntInfo(Number(m[2]), Number(m[3]));
  const where = symbolize?.(BigInt(m[1] ?? '0'));
  const notes = [event ? `taking ${event}` : 'no event pending', where ? `at ${where}` : undefined].filter(Boolean);
  return `${line}\n    (${notes.join(', ')})`;
}
