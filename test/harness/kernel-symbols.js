// @ts-check
/**
 * L1 kernel addresses to symbol names: what a stall report shows for each vCPU's
 * instruction pointer. Debian's package ships only a placeholder System.map, so L1
 * itself saves its /proc/kallsyms text symbols into the image's cache directory on
 * its first boot (l1-init.sh); L1 boots with nokaslr, so they hold for every boot.
 */
import { readFileSync } from 'node:fs';

/** Symbols sorted by address, for nearest-below lookups. */
export class KernelSymbols {
  /** @param {string} text System.map-style lines: "ffffffff81000000 T _text" */
  constructor(text) {
    /** @type {{ address: bigint, name: string }[]} */
    this.symbols = [];
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]{16}) [tTwW] (\S+)$/.exec(line);
      if (m) this.symbols.push({ address: BigInt(`0x${m[1]}`), name: /** @type {string} */ (m[2]) });
    }
    this.symbols.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  /** @param {string} path */
  static load(path) {
    return new KernelSymbols(readFileSync(path, 'utf8'));
  }

  /**
   * `name+0xoffset` for a kernel text address, or undefined outside the kernel's text
   * (user space, a module, or an address past the last symbol).
   * @param {bigint} address
   */
  symbolize(address) {
    const first = this.symbols[0];
    const last = this.symbols[this.symbols.length - 1];
    if (!first || !last || address < first.address || address > last.address) return undefined;
    let lo = 0;
    let hi = this.symbols.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (/** @type {{ address: bigint }} */ (this.symbols[mid]).address <= address) lo = mid;
      else hi = mid - 1;
    }
    const symbol = /** @type {{ address: bigint, name: string }} */ (this.symbols[lo]);
    return `${symbol.name}+0x${(address - symbol.address).toString(16)}`;
  }
}
