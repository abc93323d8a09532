#!/usr/bin/env node
// vsock benchmark (issue 10): guest-to-host stream throughput through the virtio-vsock
// device and its unix socket (the vsock test guest sends 4 KiB blocks, zero-copy, to a
// host listener at <socket>_<port>), against the same bytes written through a plain
// unix socket between two ends in this process, measured in the same run.
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, report, round } from './stats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { Machine } = await import(join(root, 'dist', 'index.js'));
const guest = join(root, 'fixtures', 'guests', 'out', 'vsock.elf');
const BLOCKS = 512; // 2 MiB
const BYTES = BLOCKS * 4096;
// Unix sockets need a real filesystem (in the nested harness /tmp is 9p).
const dir = mkdtempSync(join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'vmrun-bench-vsock-'));

/** Listens at `path`, resolves with ms from the first to the last of `bytes` bytes received. */
function sink(path, bytes) {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      let got = 0;
      let t0;
      s.on('data', (d) => {
        t0 ??= process.hrtime.bigint();
        got += d.length;
        if (got >= bytes) {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          s.end('thanks\n');
          server.close();
          resolve(ms);
        }
      });
      s.on('error', reject);
    });
    server.listen(path);
  });
}

async function throughVsock(i) {
  const socketPath = join(dir, `vm${i}.sock`);
  const received = sink(`${socketPath}_5000`, BYTES);
  const m = Machine.boot({ kernel: guest, memory: '32M', cmdline: `connect=5000 blocks=${BLOCKS}`, vsock: { cid: 3, socketPath } });
  m.output.resume();
  const ms = await received;
  await m.wait();
  return ms;
}

async function throughUnixSocket(i) {
  const path = join(dir, `anchor${i}.sock`);
  const received = sink(path, BYTES);
  const block = Buffer.alloc(4096, 7);
  const c = connect(path);
  await new Promise((r) => c.once('connect', r));
  for (let k = 0; k < BLOCKS; k++) if (!c.write(block)) await new Promise((r) => c.once('drain', r));
  const ms = await received;
  c.destroy();
  return ms;
}

const vsock = [];
const anchor = [];
for (let i = 0; i < 5; i++) {
  vsock.push(await throughVsock(i));
  anchor.push(await throughUnixSocket(i));
}
rmSync(dir, { recursive: true, force: true });
const mibps = (ms) => BYTES / 2 ** 20 / (ms / 1000);
report({
  bench: 'vsock',
  metric: `guest-to-host stream through virtio-vsock and its unix socket (${BYTES >> 20} MiB in 4 KiB packets, vsock.elf)`,
  value: round(mibps(median(vsock)), 1),
  unit: 'MiB/s',
  anchor: { what: 'the same bytes through a unix socket within this process', value: round(mibps(median(anchor)), 1), unit: 'MiB/s' },
  ratio: round(mibps(median(vsock)) / mibps(median(anchor))),
});
