/**
 * Snapshot files (src/snapshot/format.ts, snapshot-file.ts, metadata.ts): header,
 * section table, every section's bounds, the metadata and the memory index. The
 * format's CRC-32Cs would stop almost every mutation at the first check, so the
 * target first makes them right (as a deliberate attacker would) and the parser's
 * structure checks are what is exercised; odd inputs are left as they are, so the
 * checksum checks themselves are fuzzed too.
 */
import { addon } from '../../src/native/addon.js';
import { DATA_OFFSET, TABLE_ENTRY_SIZE } from '../../src/snapshot/format.js';
import { openSnapshotFile } from '../../src/snapshot/snapshot-file.js';
import { refusalsAllowed, scratchFile, type FuzzTarget } from './target.js';

const crc32c = (b: Uint8Array): number => addon().crc32c(b) >>> 0;

/** Recomputes every section CRC, the table CRC and the header CRC where they lie inside the file. */
function fixChecksums(file: Buffer): void {
  if (file.length < DATA_OFFSET) return;
  const count = file.readUInt32LE(12);
  const tableOffset = Number(file.readBigUInt64LE(16));
  if (count > 0 && count <= 1024 && tableOffset >= DATA_OFFSET && tableOffset + count * TABLE_ENTRY_SIZE <= file.length) {
    for (let i = 0; i < count; i++) {
      const e = tableOffset + i * TABLE_ENTRY_SIZE;
      const offset = Number(file.readBigUInt64LE(e + 24));
      const length = Number(file.readBigUInt64LE(e + 32));
      if (offset + length <= file.length) file.writeUInt32LE(crc32c(file.subarray(offset, offset + length)), e + 40);
    }
    file.writeUInt32LE(crc32c(file.subarray(tableOffset, tableOffset + count * TABLE_ENTRY_SIZE)), 32);
  }
  file.writeBigUInt64LE(BigInt(file.length), 24);
  file.writeUInt32LE(crc32c(file.subarray(0, 36)), 36);
}

export default {
  name: 'snapshot-file',
  run(data) {
    const file = Buffer.from(data);
    if (file.length % 2 === 0) fixChecksums(file);
    return refusalsAllowed(() => openSnapshotFile(scratchFile('snapshot.vmsnap', file)));
  },
} satisfies FuzzTarget;
