/**
 * Writes the seed corpora under fuzz/corpus/ (committed; rerun after a format change):
 *   npx vite-node fuzz/make-seeds.ts
 * Small, valid inputs of each parser, built with the same helpers the tests use.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstd } from 'zstd-napi';
import { writeDockerSaveArchive } from '../test/oci/docker-archive.js';
import { makeTar } from '../test/oci/image-builder.js';
import { sampleMetadata, writeSyntheticSnapshot } from '../test/helpers/snapshot-file.js';

const corpus = join(import.meta.dirname, 'corpus');
const put = (target: string, name: string, bytes: Uint8Array | string) => {
  mkdirSync(join(corpus, target), { recursive: true });
  writeFileSync(join(corpus, target, name), bytes);
};
const hex = 'b'.repeat(64);

for (const [i, r] of ['alpine', 'ghcr.io/o/n:tag', `127.0.0.1:5000/a/b@sha256:${hex}`, '[::1]:5000/x/y:v1.2-rc_3', 'docker.io/library/busybox:latest'].entries()) put('reference', `seed-${i}`, r);

for (const [i, h] of [
  'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
  'Basic realm="a \\"b\\"", Bearer realm=https://x/t, error=invalid_token',
  'Bearer realm="http://127.0.0.1:5000/token",scope="repository:a:pull,push"',
].entries())
  put('www-authenticate', `seed-${i}`, h);

const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${hex}`, size: 10 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size: 100 }] };
const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: manifest.mediaType, digest: `sha256:${hex}`, size: 500, platform: { os: 'linux', architecture: 'amd64' } }, { mediaType: manifest.mediaType, digest: `sha256:${hex}`, size: 500, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }] };
const config = { architecture: 'amd64', os: 'linux', config: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], Env: ['PATH=/bin'], WorkingDir: '/', User: '0:0' }, rootfs: { type: 'layers', diff_ids: [`sha256:${hex}`] } };
put('manifest', 'seed-manifest', Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(manifest))]));
put('manifest', 'seed-index', Buffer.concat([Buffer.from([2]), Buffer.from(JSON.stringify(index))]));
put('manifest', 'seed-config', Buffer.concat([Buffer.from([0]), Buffer.from(JSON.stringify(config))]));

const layer = await makeTar([
  { name: 'etc/', type: 'directory' },
  { name: 'etc/hostname', content: 'fuzz\n' },
  { name: 'bin/sh', content: '#!x', mode: 0o755 },
  { name: 'bin/ash', type: 'link', linkname: 'bin/sh' },
  { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
  { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
  { name: 'etc/.wh.motd', content: '' },
  { name: 'var/.wh..wh..opq', content: '' },
]);
put('tar-layer', 'seed-plain.tar', layer);
put('tar-layer', 'seed.tar.gz', gzipSync(layer));
put('tar-layer', 'seed.tar.zst', zstd(layer));

const scratch = join(tmpdir(), `vmrun-seeds-${process.pid}`);
mkdirSync(scratch, { recursive: true });
await writeSyntheticSnapshot(join(scratch, 's.vmsnap'), sampleMetadata());
put('snapshot-file', 'seed.vmsnap', readFileSync(join(scratch, 's.vmsnap')));
await writeDockerSaveArchive(join(scratch, 'a.tar'), { tags: ['fuzz:1'], layers: [[{ name: 'a', content: 'a' }], [{ name: 'b/', type: 'directory' }]] });
put('docker-archive', 'seed.tar', readFileSync(join(scratch, 'a.tar')));
rmSync(scratch, { recursive: true, force: true });
