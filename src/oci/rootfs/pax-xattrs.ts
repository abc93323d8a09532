/**
 * PAX records with extended attribute values kept byte for byte. tar-stream decodes
 * and encodes every PAX value as UTF-8, which mangles binary `SCHILY.xattr.*` values:
 * a file capability with a byte >= 0x80 (cap_setuid, cap_ipc_owner...) would come
 * out longer and be refused by the kernel. vmrun carries attribute values as binary
 * strings (one char per byte, Node's 'latin1'), and these two codecs replace
 * tar-stream's (its header module is shared by its extract and pack streams).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const XATTR_PREFIX = 'SCHILY.xattr.';

/** Decodes PAX records: `LEN KEY=VALUE\n`...; attribute values as binary strings, the rest as UTF-8. */
export function decodePaxRecords(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = buf;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    if (space <= 0) break;
    const len = Number.parseInt(rest.subarray(0, space).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= space + 1 || len > rest.length) break;
    const record = rest.subarray(space + 1, len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq < 0) break;
    const key = record.subarray(0, eq).toString('utf8');
    out[key] = record.subarray(eq + 1).toString(key.startsWith(XATTR_PREFIX) ? 'latin1' : 'utf8');
    rest = rest.subarray(len);
  }
  return out;
}

function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let digits = String(body.length).length;
  if (body.length + digits >= 10 ** digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits)), body]);
}

/** Encodes tar-stream's PAX header options (`name`, `linkname`, `pax`) the same way, attribute values as binary strings. */
export function encodePaxRecords(opts: { name?: string; linkname?: string; pax?: Record<string, string> }): Buffer {
  const parts: Buffer[] = [];
  if (opts.name) parts.push(record('path', Buffer.from(opts.name)));
  if (opts.linkname) parts.push(record('linkpath', Buffer.from(opts.linkname)));
  for (const [key, value] of Object.entries(opts.pax ?? {})) {
    parts.push(record(key, Buffer.from(value, key.startsWith(XATTR_PREFIX) ? 'latin1' : 'utf8')));
  }
  return Buffer.concat(parts);
}

let installed = false;

/** Makes tar-stream use these codecs (once per process). */
export function keepXattrBytesInTar(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  // tar-stream's package exports hide its header module; its file sits beside index.js.
  const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as { decodePax: unknown; encodePax: unknown };
  headers.decodePax = decodePaxRecords;
  headers.encodePax = encodePaxRecords;
}
