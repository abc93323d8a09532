// Expands a snapshot's RAM image in this (separate) process through the built library:
//   node ensure-ram-image-child.mjs SNAPSHOT
// prints {"path", "built", "ino"} (VMRUN_CACHE from the environment).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist');
const { ensureRamImage } = await import(join(dist, 'snapshot', 'ram-image.js'));
const { openSnapshotFile } = await import(join(dist, 'snapshot', 'snapshot-file.js'));
const { path, built } = await ensureRamImage(openSnapshotFile(process.argv[2]));
process.stdout.write(JSON.stringify({ path, built, ino: statSync(path).ino }));
