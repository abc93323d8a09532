import type { Readable } from 'node:stream';
import { VmrunError, type VmrunErrorKind } from '../../errors.js';

/** Reads a whole response body, refusing more than `maxBytes` (the stream is destroyed). */
export async function readBounded(body: Readable, maxBytes: number, what: string, kind: VmrunErrorKind = 'registry'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      n += (chunk as Buffer).length;
      if (n > maxBytes) throw new VmrunError(kind, `${what}: response is larger than the ${maxBytes} bytes allowed`);
      chunks.push(chunk as Buffer);
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks, n);
}

/** The message of a distribution-spec error body (`{"errors":[{"code","message"}]}`), if any. */
export function registryErrorText(body: Buffer): string {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = doc.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(': ').slice(0, 300);
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
}
