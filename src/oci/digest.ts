import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { VmrunError } from '../errors.js';

/** A content digest such as `sha256:<64 hex>`; only sha256 and sha512 are accepted. */
export type Digest = `${'sha256' | 'sha512'}:${string}`;

// A Map, not an object literal: an algorithm such as "constructor" or "__proto__"
// must find nothing rather than Object.prototype's members.
const DIGEST_PATTERN = new Map<string, RegExp>([
  ['sha256', /^[a-f0-9]{64}$/],
  ['sha512', /^[a-f0-9]{128}$/],
]);

/** True when `text` is a well-formed digest vmrun can verify. */
export function isDigest(text: unknown): text is Digest {
  if (typeof text !== 'string') return false;
  const colon = text.indexOf(':');
  if (colon < 0) return false;
  const pattern = DIGEST_PATTERN.get(text.slice(0, colon));
  return pattern !== undefined && pattern.test(text.slice(colon + 1));
}

/** Validates a digest from untrusted input, naming `what` in the error. */
export function parseDigest(text: unknown, what: string): Digest {
  if (!isDigest(text)) {
    throw new VmrunError('image', `${what}: "${String(text).slice(0, 100)}" is not a valid sha256/sha512 digest`);
  }
  return text;
}

/** The algorithm part (`sha256`) and the hex part of a digest. */
export function splitDigest(digest: Digest): { algorithm: 'sha256' | 'sha512'; hex: string } {
  const colon = digest.indexOf(':');
  return { algorithm: digest.slice(0, colon) as 'sha256' | 'sha512', hex: digest.slice(colon + 1) };
}

/** sha256 digest of an in-memory byte string. */
export function sha256Digest(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Digest of `bytes` computed with the same algorithm as `like`. */
export function digestLike(like: Digest, bytes: Uint8Array): Digest {
  const { algorithm } = splitDigest(like);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws a `digest` error unless `bytes` hash to `expected`. */
export function verifyBytes(bytes: Uint8Array, expected: Digest, what: string): void {
  const actual = digestLike(expected, bytes);
  if (actual !== expected) {
    throw new VmrunError('digest', `${what}: content has digest ${actual}, expected ${expected}`);
  }
}

/**
 * A pass-through stream that hashes what flows through it and, at the end, fails the
 * stream unless the content matches the expected digest and size: so nothing
 * downstream can commit unverified bytes.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash;
  private bytes = 0;

  constructor(
    private readonly expected: Digest,
    private readonly expectedSize: number | undefined,
    private readonly what: string,
    initial?: { hash: Hash; bytes: number },
  ) {
    super();
    this.hash = initial?.hash ?? createHash(splitDigest(expected).algorithm);
    this.bytes = initial?.bytes ?? 0;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      done(new VmrunError('digest', `${this.what}: more than the ${this.expectedSize} bytes its descriptor declares`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      done(new VmrunError('digest', `${this.what}: got ${this.bytes} bytes, its descriptor declares ${this.expectedSize}`));
      return;
    }
    const actual = `${splitDigest(this.expected).algorithm}:${this.hash.digest('hex')}`;
    if (actual !== this.expected) {
      done(new VmrunError('digest', `${this.what}: content has digest ${actual}, expected ${this.expected}`));
      return;
    }
    done();
  }
}
