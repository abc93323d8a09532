// Flips one bit of the byte in the middle of a snapshot file's VM_STATE section (on
// arm64: the GIC and the guest counter) and leaves every checksum as it was, the way
// a damaged disk would: `node flip-section-byte.mjs FILE`. Plain JavaScript on the
// built dist/, so that Node for arm64 runs it in the aarch64 L1 (vmrun-boot.test.ts).
import { openSync, readFileSync, writeSync, closeSync } from 'node:fs';

const repo = new URL('../../', import.meta.url);
const { HEADER_SIZE, TABLE_ENTRY_SIZE, SectionKind, decodeHeader, decodeTable } = await import(new URL('dist/snapshot/format.js', repo).href);
const { addon } = await import(new URL('dist/native/addon.js', repo).href);

const path = process.argv[2];
const file = readFileSync(path);
const crc32c = (bytes) => addon().crc32c(bytes);
const header = decodeHeader(file.subarray(0, HEADER_SIZE), file.length, path, crc32c);
const table = file.subarray(header.tableOffset, header.tableOffset + header.sectionCount * TABLE_ENTRY_SIZE);
const section = decodeTable(table, header, path, crc32c).find((e) => e.kind === SectionKind.VmState);
const at = section.offset + Math.floor(section.length / 2);
const fd = openSync(path, 'r+');
writeSync(fd, Buffer.from([file[at] ^ 0x10]), 0, 1, at);
closeSync(fd);
console.error(`flipped byte ${at} of the VM_STATE section [${section.offset}, ${section.offset + section.length}): ${file[at]} -> ${file[at] ^ 0x10}`);
