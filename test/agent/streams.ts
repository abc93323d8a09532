// Reading a guest process to its end in tests: both output streams and the exit.
import type { GuestProcess } from '../../src/agent/index.js';

export function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on('data', (d: Buffer) => parts.push(d));
    r.on('end', () => resolve(Buffer.concat(parts)));
    r.on('error', reject);
  });
}

/** Everything `p` writes and how it ends. */
export async function runToEnd(p: GuestProcess): Promise<{ out: Buffer; err: Buffer; exitCode: number; signal: string | null }> {
  const [out, err, exit] = await Promise.all([readAll(p.stdout), readAll(p.stderr), p.exited]);
  return { out, err, ...exit };
}
