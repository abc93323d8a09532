import { VmrunError, type VmrunErrorKind } from '../errors.js';

/** Parses JSON from untrusted bytes, bounded in size, requiring an object at the top. */
export function parseJsonObject(
  bytes: Uint8Array,
  maxBytes: number,
  what: string,
  kind: VmrunErrorKind = 'image',
): Record<string, unknown> {
  if (bytes.length > maxBytes) throw new VmrunError(kind, `${what}: ${bytes.length} bytes is more than the ${maxBytes} allowed`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new VmrunError(kind, `${what}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObject(value)) throw new VmrunError(kind, `${what}: expected a JSON object`);
  return value;
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an optional string field, rejecting any other type. */
export function optionalString(obj: Record<string, unknown>, key: string, what: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new VmrunError('image', `${what}: field "${key}" must be a string`);
  return v;
}

/** Reads an optional array of strings, rejecting anything else. */
export function optionalStringArray(obj: Record<string, unknown>, key: string, what: string): string[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new VmrunError('image', `${what}: field "${key}" must be an array of strings`);
  }
  return v as string[];
}
