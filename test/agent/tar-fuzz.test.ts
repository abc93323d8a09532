import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { useHostAgent, type HostAgent } from './agent-process.js';
import { packHostPath, type AgentClient } from '../../src/agent/index.js';
import { readAll } from './streams.js';

// Mutated archives against the agent's tar reader: every one either extracts or is
// refused with a message; the agent never dies, never hangs, and writes nothing
// outside the destination.
let agent: HostAgent;
let client: AgentClient;
let work: string;

useHostAgent('vmrun-tar-fuzz-', { beforeAll, afterAll }, (f) => ({ agent, client, work } = f));

/** A deterministic pseudo-random sequence (xorshift32), so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

describe('the agent tar reader under mutated input', () => {
  it('200 mutated archives: extracted or refused, never an escape, a crash or a hang', async () => {
    const src = join(work, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha');
    writeFileSync(join(src, 'sub', `${'long'.repeat(40)}.txt`), 'long name via pax');
    symlinkSync('a.txt', join(src, 'link'));
    const archive = await readAll(packHostPath(src));
    const outside = join(work, 'outside');
    mkdirSync(outside);
    const next = random(12345);
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.from(archive);
      const flips = 1 + Math.floor(next() * 8);
      for (let f = 0; f < flips; f++) {
        // Mostly headers (the first blocks), where the parser's decisions are.
        const at = Math.floor(next() * Math.min(bytes.length, 3072));
        bytes[at] = next() < 0.5 ? Math.floor(next() * 256) : '/.0 7x'.charCodeAt(Math.floor(next() * 6));
      }
      // Most mutants keep valid checksums, so they reach the parser's field decisions.
      if (next() < 0.8) fixChecksums(bytes);
      const dest = join(outside, `d${i}`);
      mkdirSync(dest);
      try {
        await client.copyIn(Readable.from([bytes]), dest, { intoDir: true });
      } catch (e) {
        refused++;
        expect((e as Error).message).toMatch(/^copy-in /);
      }
    }
    // Nothing appeared beside the destinations, and the agent still serves.
    expect(readdirSync(outside).every((n) => /^d\d+$/.test(n))).toBe(true);
    expect(readdirSync(work).sort()).toEqual(['outside', 'src']);
    expect(agent.process.exitCode).toBeNull();
    const p = client.exec(['true']);
    expect((await p.exited).exitCode).toBe(0);
    console.log(`tar fuzz: ${refused} of 200 mutated archives refused`);
  }, 240_000);
});

/** Recomputes the checksum of every block that carries the ustar magic. */
function fixChecksums(bytes: Buffer): void {
  for (let off = 0; off + 512 <= bytes.length; off += 512) {
    const h = bytes.subarray(off, off + 512);
    if (h.toString('latin1', 257, 262) !== 'ustar') continue;
    h.fill(' ', 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  }
}
