#!/usr/bin/env node
// Benchmark: pull + export of a ~100 MB multi-layer image from a loopback
// docker-registry, vmrun (`vmrun pull` then `vmrun export`) side by side with the
// anchor `skopeo copy` to an OCI layout plus `umoci unpack --rootless`. Reports
// wall times (median of N runs), throughput and the anchor/vmrun ratio (>1 means
// vmrun is faster). Run: `node bench/oci.js` (after `npm run build:ts`), or via
// `npm run bench`, which calls main().
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importTs } from './oci/import-ts.js';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Deterministic pseudo-random bytes (xorshift), incompressible like binaries and media. */
function noise(size, seed) {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  return buf;
}

/** Compressible text, like source trees and config files. */
function text(size, seed) {
  const words = ['vmrun', 'snapshot', 'restore', 'kernel', 'image', 'layer', 'registry', 'digest', 'config', 'rootfs', 'virtio', 'memory'];
  let s = '';
  let i = seed;
  while (s.length < size) s += `${words[i++ % words.length]}${i % 7 === 0 ? '\n' : ' '}${i % 13 === 0 ? i : ''}`;
  return Buffer.from(s.slice(0, size));
}

/** The bench image: 4 gzip layers, ~100 MB uncompressed, many small files and some large ones. */
async function buildBenchImage(builder, dir) {
  const busybox = await readFile('/bin/busybox');
  const l1 = [];
  for (let i = 0; i < 40; i++) l1.push({ name: `opt/data/blob-${i}.bin`, content: noise(1 << 20, i + 1) });
  for (let i = 0; i < 10; i++) l1.push({ name: `usr/bin/tool-${i}`, content: busybox, mode: 0o755 });
  const l2 = [];
  for (let i = 0; i < 3000; i++) l2.push({ name: `usr/share/doc/pkg-${i % 100}/file-${i}.txt`, content: text(8 << 10, i) });
  const l3 = [];
  for (let i = 0; i < 10; i++) l3.push({ name: `opt/data/.wh.blob-${i}.bin`, content: '' });
  for (let i = 0; i < 200; i++) l3.push({ name: `usr/lib/lib${i}.so`, content: noise(40 << 10, 1000 + i) });
  for (let i = 0; i < 100; i++) l3.push({ name: `bin/applet-${i}`, type: 'symlink', linkname: '/usr/bin/tool-0' });
  const l4 = [];
  for (let i = 0; i < 15; i++) l4.push({ name: `srv/assets/asset-${i}.bin`, content: noise(1 << 20, 5000 + i) });
  for (let i = 0; i < 500; i++) l4.push({ name: `srv/www/page-${i}.html`, content: text(4 << 10, 9000 + i) });
  for (let i = 0; i < 50; i++) l4.push({ name: `srv/www/alias-${i}.html`, type: 'link', linkname: `srv/www/page-${i}.html` });
  const layers = [
    await builder.buildLayer(l1, 'gzip'),
    await builder.buildLayer(l2, 'gzip'),
    await builder.buildLayer(l3, 'gzip'),
    // gzip only: Debian's umoci 0.4.7 (the anchor) cannot unpack zstd layers.
    await builder.buildLayer(l4, 'gzip'),
  ];
  await builder.writeOciLayout(dir, { v1: { layers, config: { Cmd: ['/bin/sh'] } } });
  let uncompressed = 0;
  for (const l of [l1, l2, l3, l4]) for (const e of l) uncompressed += e.content ? Buffer.byteLength(e.content) : 0;
  return { compressed: layers.reduce((a, l) => a + l.blob.length, 0), uncompressed };
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs the benchmark and prints a report; returns the figures. */
export async function main({ runs = Number(process.env.BENCH_RUNS ?? 3) } = {}) {
  for (const bin of ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/umoci']) {
    if (!existsSync(bin)) throw new Error(`bench/oci.js needs ${bin} (apt-get install docker-registry skopeo umoci)`);
  }
  if (!existsSync(join(repo, 'dist/commands/pull.js'))) await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo }).catch(() => {});
  const registryHelper = await importTs(join(repo, 'test/helpers/registry.ts'));
  const builder = await importTs(join(repo, 'test/oci/image-builder.ts'));
  const work = await mkdtemp(join(tmpdir(), 'vmrun-bench-oci-'));
  const registry = await registryHelper.startRegistry();
  try {
    const layout = join(work, 'src-layout');
    const size = await buildBenchImage(builder, layout);
    await registry.push(layout, 'v1', 'bench/image', 'v1');
    const ref = `${registry.host}/bench/image:v1`;
    const vmrunTimes = [];
    const anchorTimes = [];
    for (let i = 0; i < runs; i++) {
      const home = join(work, `home-${i}`);
      const env = { ...process.env, VMRUN_HOME: home };
      const tarPath = join(work, `rootfs-${i}.tar`);
      vmrunTimes.push(
        await timed(async () => {
          await run('node', [join(repo, 'bin/run.js'), 'pull', '-q', ref], { env, cwd: repo });
          await run('node', [join(repo, 'bin/run.js'), 'export', ref, '-o', tarPath], { env, cwd: repo });
        }),
      );
      const tarSize = (await stat(tarPath)).size;
      if (tarSize < size.uncompressed * 0.8) throw new Error(`vmrun export wrote ${tarSize} bytes, expected about ${size.uncompressed}`);
      await rm(home, { recursive: true, force: true });
      await rm(tarPath, { force: true });

      const ociDir = join(work, `anchor-${i}`);
      const bundle = join(work, `bundle-${i}`);
      anchorTimes.push(
        await timed(async () => {
          await run('skopeo', ['copy', '--insecure-policy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${ociDir}:v1`]);
          await run('umoci', ['unpack', '--rootless', '--image', `${ociDir}:v1`, bundle]);
        }),
      );
      await rm(ociDir, { recursive: true, force: true });
      await rm(bundle, { recursive: true, force: true });
    }
    const v = median(vmrunTimes);
    const a = median(anchorTimes);
    const mb = (n) => n / 1e6;
    const result = {
      bench: 'oci-pull-export',
      image: { layers: 4, compressedMB: +mb(size.compressed).toFixed(1), uncompressedMB: +mb(size.uncompressed).toFixed(1) },
      runs,
      vmrun: { seconds: +v.toFixed(3), uncompressedMBps: +(mb(size.uncompressed) / v).toFixed(1), all: vmrunTimes.map((t) => +t.toFixed(3)) },
      anchor: { what: 'skopeo copy + umoci unpack --rootless', seconds: +a.toFixed(3), uncompressedMBps: +(mb(size.uncompressed) / a).toFixed(1), all: anchorTimes.map((t) => +t.toFixed(3)) },
      ratio: +(a / v).toFixed(2),
    };
    console.log(
      `oci pull+export, ${result.image.uncompressedMB} MB image (${result.image.compressedMB} MB compressed, 4 layers), median of ${runs}:\n` +
        `  vmrun pull + export:                  ${result.vmrun.seconds} s  (${result.vmrun.uncompressedMBps} MB/s)\n` +
        `  skopeo copy + umoci unpack --rootless: ${result.anchor.seconds} s  (${result.anchor.uncompressedMBps} MB/s)\n` +
        `  ratio (anchor / vmrun): ${result.ratio}x ${result.ratio > 1 ? '(vmrun faster)' : '(vmrun slower)'}`,
    );
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
