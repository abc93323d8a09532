/** Shared setup for the OCI tests: a private VMRUN_HOME per test file, fixture files, rootfs collection. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageStore, streamRootfs, type RootfsEntry, type StoredImage } from '../../src/oci/index.js';

/** fixtures/images, where the test images' source files live. */
export const FIXTURES = fileURLToPath(new URL('../../fixtures/images/', import.meta.url));

/** Reads a fixture file. */
export function fixture(path: string): Promise<Buffer> {
  return readFile(join(FIXTURES, path));
}

/** A temp dir that becomes VMRUN_HOME for this test file, so the real ~/.local/share is never touched. */
export async function useTempHome(): Promise<{ home: string; store: ImageStore; cleanup: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'vmrun-home-'));
  process.env.VMRUN_HOME = home;
  const store = await ImageStore.open(home);
  return { home, store, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** A temp working dir. */
export function tempDir(prefix = 'vmrun-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Collects a whole streamed rootfs (entries in order, file contents as strings). */
export async function collectRootfs(store: ImageStore, image: StoredImage): Promise<{ order: string[]; byPath: Map<string, RootfsEntry & { content?: Buffer }> }> {
  const order: string[] = [];
  const byPath = new Map<string, RootfsEntry & { content?: Buffer }>();
  for await (const { entry, content } of streamRootfs(store, image)) {
    order.push(entry.path);
    const chunks: Buffer[] = [];
    if (content) for await (const c of content) chunks.push(Buffer.from(c));
    byPath.set(entry.path, { ...entry, ...(content ? { content: Buffer.concat(chunks) } : {}) });
  }
  return { order, byPath };
}
