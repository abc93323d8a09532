/** Writes `docker save`-style archives (legacy layout: manifest.json, <id>/layer.tar, <hex>.json) for tests. */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { makeTar, type LayerEntrySpec } from './image-builder.js';

/** Builds a docker-save tarball with one image; the last layer is repeated via a symlink member, as docker does for duplicates. */
export async function writeDockerSaveArchive(path: string, opts: { tags: string[]; layers: LayerEntrySpec[][]; gzip?: boolean; cmd?: string[] }): Promise<{ configDigest: string }> {
  const layerTars = await Promise.all(opts.layers.map((l) => makeTar(l)));
  const diffIds = layerTars.map((t) => `sha256:${createHash('sha256').update(t).digest('hex')}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: opts.cmd ?? ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [...diffIds, diffIds[diffIds.length - 1]] } }));
  const configHex = createHash('sha256').update(config).digest('hex');
  const layerNames = layerTars.map((_, i) => `layer${i}/layer.tar`);
  const members: LayerEntrySpec[] = [{ name: `${configHex}.json`, content: config }];
  layerTars.forEach((t, i) => members.push({ name: `layer${i}/`, type: 'directory' }, { name: layerNames[i]!, content: t }));
  members.push({ name: 'dup/', type: 'directory' }, { name: 'dup/layer.tar', type: 'symlink', linkname: `../${layerNames[layerNames.length - 1]}` });
  members.push({ name: 'manifest.json', content: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: opts.tags, Layers: [...layerNames, 'dup/layer.tar'] }]) });
  const archive = await makeTar(members);
  await writeFile(path, opts.gzip ? gzipSync(archive) : archive);
  return { configDigest: `sha256:${configHex}` };
}
