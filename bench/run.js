#!/usr/bin/env node
// npm run bench: runs every benchmark file and prints their JSON lines. Each
// benchmark measures vmrun against an anchor in the same run and reports the ratio,
// so figures from different machines compare.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const benches = ['boot.js', 'snapshot.js', 'fork.js', 'hermit.js', 'vsock.js', 'oci.js', 'agent.js', 'run.e2e.js', 'network.e2e.js', 'hermit.e2e.js', 'blockfs.e2e.js', 'volumes.e2e.js', 'arm64.e2e.js'];
let failed = 0;
for (const b of benches) {
  if (only.length && !only.some((o) => b.startsWith(o))) continue;
  const path = join(here, b);
  if (!existsSync(path)) continue;
  console.error(`bench: ${b}`);
  const r = spawnSync(process.execPath, [path], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench: ${b} failed (status ${r.status})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
