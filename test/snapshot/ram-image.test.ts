import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readSync, openSync, closeSync, renameSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { compress } from 'zstd-napi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { addon } from '../../src/native/addon.js';
import { DATA_OFFSET } from '../../src/snapshot/format.js';
import { ensureRamImage, pruneRamImages, ramImageDir } from '../../src/snapshot/ram-image.js';
import { openSnapshotFile } from '../../src/snapshot/snapshot-file.js';
import { sampleMetadata, writeSyntheticSnapshot } from '../helpers/snapshot-file.js';

const dir = mkdtempSync(join(tmpdir(), 'vmrun-ramimg-'));
beforeAll(() => {
  process.env.VMRUN_CACHE = join(dir, 'cache');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The chunk and index-entry layout the addon writes (exported by it, not copied here).
const { memoryChunkBytes: MEMORY_CHUNK_BYTES, pageBytes: PAGE, memoryIndexEntry: ENTRY } = addon().layout;

/** Guest RAM for chunk k: every page filled with a byte that names it. */
const PAGES = MEMORY_CHUNK_BYTES / PAGE;
function chunkPages(k: number): Buffer {
  const b = Buffer.alloc(MEMORY_CHUNK_BYTES);
  for (let p = 0; p < PAGES; p++) b.fill((k * 7 + p) & 0xff || 1, p * PAGE, (p + 1) * PAGE);
  return b;
}

/** A snapshot of a 32 MiB machine whose first `chunks` 2 MiB stretches hold data. */
async function snapshotWithRam(path: string, chunks: number): Promise<void> {
  const frames: Buffer[] = [];
  const index = Buffer.alloc(ENTRY.bytes * chunks);
  let pos = 0;
  for (let k = 0; k < chunks; k++) {
    const frame = compress(chunkPages(k));
    const e = k * ENTRY.bytes;
    index.writeBigUInt64LE(BigInt(k * MEMORY_CHUNK_BYTES), e + ENTRY.ramOffset);
    index.writeBigUInt64LE(BigInt(pos), e + ENTRY.dataOffset);
    index.writeUInt32LE(frame.length, e + ENTRY.compressedSize);
    index.writeUInt32LE(PAGES, e + ENTRY.pageCount);
    index.writeUInt32LE(addon().crc32c(frame) >>> 0, e + ENTRY.crc);
    index.fill(0xff, e + ENTRY.bitmap, e + ENTRY.bytes); // every page present
    frames.push(frame);
    pos += frame.length;
  }
  await writeSyntheticSnapshot(path, sampleMetadata(), { index, data: Buffer.concat(frames) });
}

function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, offset);
  closeSync(fd);
  return b;
}

describe('RAM images', () => {
  it('expands the chunks into a raw image at their RAM offsets', async () => {
    const path = join(dir, 'good.vmsnap');
    await snapshotWithRam(path, 3);
    const { path: image, built } = await ensureRamImage(openSnapshotFile(path));
    expect(built).toBe(true);
    for (const k of [0, 2]) expect(readAt(image, k * MEMORY_CHUNK_BYTES, MEMORY_CHUNK_BYTES).equals(chunkPages(k))).toBe(true);
    expect(readAt(image, 3 * MEMORY_CHUNK_BYTES, 4096).every((b) => b === 0)).toBe(true);
  });

  it('a snapshot truncated after it was opened is a snapshot error, not a SIGBUS', async () => {
    const path = join(dir, 'truncated.vmsnap');
    await snapshotWithRam(path, 8);
    const opened = openSnapshotFile(path);
    truncateSync(path, DATA_OFFSET + 4096);
    const err = await ensureRamImage(opened).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVmrunError(err, 'snapshot'), `expected a snapshot error, got ${String(err)}`).toBe(true);
    expect((err as Error).message).toMatch(/truncated\.vmsnap.*changed since it was opened/);
    expect(readdirSync(ramImageDir())).not.toContainEqual(expect.stringMatching(/tmp/));

    // The addon checks the size itself too (the file may shrink after the identity check).
    const fd = openSync(path, 'r');
    const temp = join(ramImageDir(), 'direct.ram.tmp');
    await expect(
      addon().buildRamImage(fd, path, opened.memoryData.offset, opened.memoryData.length, opened.memoryIndex, opened.metadata.machine.memoryBytes, temp, join(ramImageDir(), 'direct.ram')),
    ).rejects.toThrow(/truncated\.vmsnap changed since it was opened: it is shorter than its memory data/);
    closeSync(fd);
    expect(existsSync(temp)).toBe(false);
  });

  it('a snapshot file swapped for another after it was opened is refused', async () => {
    const path = join(dir, 'swapped.vmsnap');
    await snapshotWithRam(path, 2);
    const opened = openSnapshotFile(path);
    copyFileSync(path, `${path}.copy`);
    renameSync(`${path}.copy`, path); // same bytes, another file
    await expect(ensureRamImage(opened)).rejects.toThrow(/swapped\.vmsnap.*changed since it was opened/);
  });

  it('concurrent first restores, in this process and in others, expand one image once', async () => {
    const path = join(dir, 'concurrent.vmsnap');
    await snapshotWithRam(path, 8);
    const builtBefore = readdirSync(ramImageDir()).length;
    // Four other processes and eight calls here, all before any image exists.
    const script = fileURLToPath(new URL('./ensure-ram-image-child.mjs', import.meta.url));
    const children = Array.from({ length: 4 }, () =>
      new Promise<{ status: number | null; out: string }>((resolve) => {
        const c = spawn(process.execPath, [script, path], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.on('close', (status) => resolve({ status, out }));
      }),
    );
    const here = await Promise.all(Array.from({ length: 8 }, () => ensureRamImage(openSnapshotFile(path))));
    const there = await Promise.all(children);
    for (const c of there) expect(c.status, c.out).toBe(0);
    const results = [...here, ...there.map((c) => JSON.parse(c.out) as { path: string; built: boolean; ino: number })];
    // Exactly one builder built it; every caller got the same file, which they map.
    expect(results.filter((r) => r.built)).toHaveLength(1);
    expect(new Set(results.map((r) => r.path)).size).toBe(1);
    const ino = statSync(results[0]!.path).ino;
    for (const c of there) expect((JSON.parse(c.out) as { ino: number }).ino).toBe(ino);
    for (let k = 0; k < 8; k++) expect(readAt(results[0]!.path, k * MEMORY_CHUNK_BYTES, 4096).equals(chunkPages(k).subarray(0, 4096))).toBe(true);
    // What is left: the image and its lock file, no temp file.
    const key = basename(results[0]!.path, '.ram');
    const left = readdirSync(ramImageDir()).filter((f) => f.startsWith(key)).sort();
    expect(left).toEqual([`${key}.ram`, `${key}.ram.lock`]);
    expect(readdirSync(ramImageDir()).length).toBe(builtBefore + 2);
    // A prune that keeps the snapshot keeps both; one that does not removes both.
    pruneRamImages([openSnapshotFile(path)]);
    expect(readdirSync(ramImageDir()).filter((f) => left.includes(f)).sort()).toEqual(left);
    pruneRamImages([]);
    expect(readdirSync(ramImageDir()).filter((f) => left.includes(f))).toEqual([]);
  }, 120_000);

  it('prune keeps another builder\'s temp file while that builder lives, and removes a dead one\'s', async () => {
    const images = ramImageDir();
    mkdirSync(images, { recursive: true });
    const dead = Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
    const live = join(images, `0123456789abcdef0123456789abcdef.ram.tmp-${process.pid}-00000001`);
    const orphan = join(images, `0123456789abcdef0123456789abcdef.ram.tmp-${dead}-00000002`);
    const stale = join(images, 'fedcba9876543210fedcba9876543210.ram');
    // Temp names of older vmrun (no pid): kept while a build could still be writing them.
    const legacyFresh = join(images, 'fedcba9876543210fedcba9876543210.ram.tmp-Ab12Cd');
    const legacyOld = join(images, 'fedcba9876543210fedcba9876543210.ram.tmp-Xy34Zw');
    for (const f of [live, orphan, stale, legacyFresh, legacyOld]) writeFileSync(f, 'x');
    const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
    utimesSync(legacyOld, twoDaysAgo, twoDaysAgo);
    pruneRamImages([]);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(legacyFresh)).toBe(true);
    expect(existsSync(legacyOld)).toBe(false);
    rmSync(live);
    rmSync(legacyFresh);
  });
});
