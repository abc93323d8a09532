/**
 * Hermit applications shipped as OCI images: when the entrypoint of an image is a
 * Hermit kernel (detected from its bytes, never its name), `vmrun run` boots that
 * kernel directly instead of a Linux guest, with the command's arguments and the
 * resolved environment as the application's.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { join } from 'node:path';
import { streamRootfs, type ImageStore, type StoredImage } from '../oci/index.js';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { addon } from '../native/addon.js';
import type { RunSpec } from './run-spec.js';

/** Largest entrypoint file inspected as a possible Hermit kernel. */
const MAX_KERNEL_BYTES = 256 << 20;

/** Where `argv[0]` lives in the image: absolute as given, else the first PATH entry that has it. */
function candidatePaths(spec: RunSpec): string[] {
  const program = spec.argv[0]!;
  if (program.startsWith('/')) return [posix.normalize(program).slice(1)];
  const path = spec.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '';
  return path.split(':').filter((d) => d.startsWith('/')).map((d) => posix.join(d, program).slice(1));
}

/**
 * If the image's program is a Hermit kernel, extracts it into the cache (once per
 * image digest and path) and returns its path; otherwise undefined.
 */
export async function findHermitEntrypoint(store: ImageStore, image: StoredImage, spec: RunSpec): Promise<string | undefined> {
  const wanted = candidatePaths(spec);
  // The answer depends only on the image and where the program is looked up: found once
  // (reading the image's layers), remembered, so a run does not decompress every layer.
  const dir = join(vmrunCacheDir(), 'hermit');
  const decision = join(dir, `${createHash('sha256').update([image.record.digest, ...wanted].join('\0')).digest('hex').slice(0, 32)}.decision`);
  const known = readDecision(decision);
  if (known !== undefined) return known === NOT_HERMIT ? undefined : known;
  const found = await scanForHermitKernel(store, image, wanted, dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeAtomically(decision, found ?? NOT_HERMIT);
  return found;
}

/** What a decision file says for an image that is not a Hermit application. */
const NOT_HERMIT = 'not-hermit';

function readDecision(path: string): string | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    // A kernel removed from the cache since is extracted again.
    return text === NOT_HERMIT || existsSync(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

function writeAtomically(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

async function scanForHermitKernel(store: ImageStore, image: StoredImage, wanted: string[], dir: string): Promise<string | undefined> {
  const links = new Map<string, string>();
  for await (const item of streamRootfs(store, image)) {
    const e = item.entry;
    if (e.type === 'symlink' && e.linkname) links.set(e.path, posix.normalize(posix.join(posix.dirname(e.path), e.linkname)).replace(/^\//, ''));
    const target = wanted.find((w) => w === e.path || links.get(w) === e.path);
    if (!target || e.type !== 'file' || !item.content) continue;
    if (e.size > MAX_KERNEL_BYTES || e.size < 64) return undefined;
    const chunks: Uint8Array[] = [];
    for await (const c of item.content) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    if (addon().kernelFormat(bytes) !== 'hermit') return undefined;
    const path = join(dir, `${createHash('sha256').update(`${image.record.digest}\0${e.path}`).digest('hex').slice(0, 32)}.elf`);
    if (!existsSync(path)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeAtomically(path, bytes);
    }
    return path;
  }
  return undefined;
}
