import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { ImageStore, inspectImage, listImages, parsePlatform, pullImage, removeImages, resolveImage } from '../../src/oci/index.js';
import { registryUnavailableReason, startRegistry, type LoopbackRegistry } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { buildLayer, writeOciLayout, type BuiltLayer } from './image-builder.js';
import { collectRootfs, fixture, tempDir, useTempHome } from './test-env.js';

const unavailable = registryUnavailableReason();
if (unavailable) console.warn(`registry tests cannot run: ${unavailable}`);

describe.skipIf(unavailable)('pulling from a real registry on loopback', () => {
  let registry: LoopbackRegistry;
  let store: ImageStore;
  let home: string;
  let cleanup: () => Promise<void>;
  let work: string;
  let base: BuiltLayer;
  let app: BuiltLayer;
  let big: BuiltLayer;

  beforeAll(async () => {
    ({ store, home, cleanup } = await useTempHome());
    work = await tempDir();
    registry = await startRegistry();
    base = await buildLayer(
      [
        { name: 'bin/busybox', content: await readFile('/bin/busybox'), mode: 0o755 },
        { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
        { name: 'etc/os-release', content: await fixture('basic/etc/os-release') },
        { name: 'etc/motd', content: await fixture('basic/etc/motd') },
      ],
      'gzip',
    );
    app = await buildLayer(
      [
        { name: 'etc/.wh.motd', content: '' },
        { name: 'app/run.sh', content: await fixture('basic/app/run.sh'), mode: 0o755 },
      ],
      'zstd',
    );
    // Incompressible bytes so that a cut connection leaves a real partial download.
    const noise = Buffer.alloc(3 << 20);
    for (let i = 0; i < noise.length; i += 4) noise.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
    big = await buildLayer([{ name: 'data/blob.bin', content: noise }], 'gzip');
    const layout = join(work, 'layout');
    await writeOciLayout(layout, {
      v1: {
        layers: [base, app],
        config: { Entrypoint: ['/app/run.sh'], Cmd: ['--serve'], Env: ['PATH=/bin', 'MODE=test'], WorkingDir: '/app', User: '1000:1000', ExposedPorts: { '8080/tcp': {} } },
      },
      shared: { layers: [base] },
      big: { layers: [base, big] },
      multi: {
        platforms: [
          { layers: [base], config: { architecture: 'amd64', Cmd: ['amd64'] } },
          { layers: [app], config: { architecture: 'arm64', variant: 'v8', Cmd: ['arm64'] } },
        ],
      },
    });
    await registry.push(layout, 'v1', 'test/app', 'v1');
    await registry.push(layout, 'shared', 'test/shared', 'v1');
    await registry.push(layout, 'big', 'test/big', 'v1');
    await registry.push(layout, 'multi', 'test/multi', 'v1', { all: true });
  });

  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls a multi-layer image (gzip + zstd) and keeps its config', async () => {
    const image = await pullImage(store, `${registry.host}/test/app:v1`);
    expect(image.record.name).toBe(`${registry.host}/test/app:v1`);
    expect(image.manifest.layers.map((l) => l.digest)).toEqual([base.digest, app.digest]);
    for (const l of [base, app]) expect(await store.hasBlob(l.digest as never, l.blob.length)).toBe(true);
    const info = await inspectImage(store, `${registry.host}/test/app:v1`);
    expect(info.config).toMatchObject({ entrypoint: ['/app/run.sh'], cmd: ['--serve'], env: ['PATH=/bin', 'MODE=test'], workingDir: '/app', user: '1000:1000', exposedPorts: ['8080/tcp'] });
    expect(info.layers.map((l) => l.diffId)).toEqual([base.diffId, app.diffId]);
    expect(info.size).toBe(base.blob.length + app.blob.length + image.manifest.config.size);
    const { byPath } = await collectRootfs(store, image);
    expect(byPath.has('etc/motd')).toBe(false);
    expect(byPath.get('bin/sh')).toMatchObject({ type: 'symlink', linkname: 'busybox' });
    expect(byPath.get('app/run.sh')?.content?.toString()).toContain('hello from the vmrun test image');
    const listed = await listImages(store);
    expect(listed.find((i) => i.name === image.record.name)).toMatchObject({ tag: 'v1', id: image.manifest.config.digest, platform: 'linux/amd64' });
  });

  it('pulls by digest, and finds the stored image by ID prefix', async () => {
    const byTag = await resolveImage(store, `${registry.host}/test/app:v1`);
    const pinned = await pullImage(store, `${registry.host}/test/app@${byTag.record.digest}`);
    expect(pinned.record.digest).toBe(byTag.record.digest);
    const byId = await resolveImage(store, byTag.manifest.config.digest.slice(7, 19));
    expect(byId.manifest.config.digest).toBe(byTag.manifest.config.digest);
  });

  it('selects a platform from an index, and lists what exists when it is missing', async () => {
    const arm = await pullImage(store, `${registry.host}/test/multi:v1`, { platform: parsePlatform('linux/arm64') });
    expect(arm.config.config.Cmd).toEqual(['arm64']);
    expect(arm.record.indexDigest).toMatch(/^sha256:/);
    const amd = await pullImage(store, `${registry.host}/test/multi:v1`, { platform: parsePlatform('linux/amd64') });
    expect(amd.config.config.Cmd).toEqual(['amd64']);
    const err = await pullImage(store, `${registry.host}/test/multi:v1`, { platform: parsePlatform('linux/riscv64') }).catch((e: unknown) => e);
    expect(isVmrunError(err, 'not-found')).toBe(true);
    expect((err as Error).message).toMatch(/no image for platform linux\/riscv64; it offers: linux\/amd64, linux\/arm64/);
  });

  it('reports a missing tag and a missing repository as not found', async () => {
    const err = await pullImage(store, `${registry.host}/test/app:nope`).catch((e: unknown) => e);
    expect(isVmrunError(err, 'not-found')).toBe(true);
    expect((err as Error).message).toMatch(/test\/app:nope.*not found/);
  });

  it('stores shared layers once and garbage-collects only unreferenced blobs on rmi', async () => {
    await pullImage(store, `${registry.host}/test/shared:v1`);
    const app1 = await pullImage(store, `${registry.host}/test/app:v1`);
    await removeImages(store, [`${registry.host}/test/app:v1`, `${registry.host}/test/app@${app1.record.digest}`]);
    // The base layer is still used by test/shared and test/multi; the zstd app layer only by multi's arm64 image.
    expect(await store.hasBlob(base.digest as never)).toBe(true);
    const remaining = (await listImages(store)).map((i) => i.name);
    expect(remaining).not.toContain(`${registry.host}/test/app:v1`);
    await removeImages(store, remaining);
    const blobs = await readdir(join(home, 'images', 'blobs', 'sha256'));
    expect(blobs).toEqual([]);
    expect(await listImages(store)).toEqual([]);
  });

  it('survives two concurrent pulls of the same image', async () => {
    const other = await ImageStore.open(home);
    const [a, b] = await Promise.all([pullImage(store, `${registry.host}/test/big:v1`), pullImage(other, `${registry.host}/test/big:v1`)]);
    expect(a.record.digest).toBe(b.record.digest);
    expect(await store.hasBlob(big.digest as never, big.blob.length)).toBe(true);
    const { byPath } = await collectRootfs(store, a);
    expect(byPath.get('data/blob.bin')?.size).toBe(3 << 20);
    expect(await readdir(store.tmpDir())).toEqual([]);
    await removeImages(store, [`${registry.host}/test/big:v1`]);
  });

  describe('through a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await startFaultProxy(registry.host);
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it('rejects a blob whose bytes do not match its digest and stores nothing', async () => {
      proxy.setFault((req) => (req.url?.includes(`/blobs/${app.digest}`) ? { kind: 'corrupt' } : undefined));
      const err = await pullImage(store, `${proxy.host}/test/app:v1`, { retryBaseMs: 1 }).catch((e: unknown) => e);
      expect(isVmrunError(err, 'digest')).toBe(true);
      expect((err as Error).message).toMatch(new RegExp(`expected ${app.digest}`));
      expect(await store.hasBlob(app.digest as never)).toBe(false);
      expect(await store.getImage(`${proxy.host}/test/app:v1`)).toBeUndefined();
      expect((await readdir(store.tmpDir())).filter((f) => f.endsWith('.partial'))).toEqual([]);
    });

    it('resumes a cut download with a Range request', async () => {
      proxy.seen.length = 0;
      let cuts = 0;
      proxy.setFault((req) => (req.url?.includes(`/blobs/${big.digest}`) && cuts++ === 0 ? { kind: 'cut', afterBytes: 1 << 20 } : undefined));
      const image = await pullImage(store, `${proxy.host}/test/big:v1`, { retryBaseMs: 1 });
      expect(image.manifest.layers[1]!.digest).toBe(big.digest);
      const blobGets = proxy.seen.filter((r) => r.url.includes(`/blobs/${big.digest}`));
      expect(blobGets.length).toBe(2);
      expect(blobGets[1]!.range).toMatch(/^bytes=\d+-$/);
      expect(Number(/=(\d+)-/.exec(blobGets[1]!.range!)![1])).toBeGreaterThan(0);
      expect(await store.hasBlob(big.digest as never, big.blob.length)).toBe(true);
    });

    it('retries after 429 Too Many Requests', async () => {
      proxy.seen.length = 0;
      let n = 0;
      proxy.setFault((req) => (req.url?.includes('/manifests/') && n++ < 2 ? { kind: 'status', status: 429 } : undefined));
      const image = await pullImage(store, `${proxy.host}/test/shared:v1`, { retryBaseMs: 1 });
      expect(image.manifest.layers).toHaveLength(1);
      expect(proxy.seen.filter((r) => r.url.includes('/manifests/')).length).toBeGreaterThanOrEqual(3);
    });

    it('gets an anonymous bearer token from the WWW-Authenticate realm and follows blob redirects', async () => {
      proxy.seen.length = 0;
      proxy.requireBearer('anon-token-123');
      proxy.setFault((req) => (req.url?.startsWith('/v2/') && req.url.includes('/blobs/') ? { kind: 'redirect' } : undefined));
      try {
        await removeImages(store, (await listImages(store)).map((i) => i.name));
        const image = await pullImage(store, `${proxy.host}/test/shared:v1`);
        expect(image.manifest.layers[0]!.digest).toBe(base.digest);
        const tokenReq = proxy.seen.find((r) => r.url.startsWith('/token'));
        expect(tokenReq?.url).toContain('service=fault-proxy');
        expect(decodeURIComponent(tokenReq!.url)).toContain('scope=repository:test/shared:pull');
        expect(proxy.seen.filter((r) => r.url.startsWith('/storage/v2/')).length).toBeGreaterThanOrEqual(2);
        expect(await store.hasBlob(base.digest as never, base.blob.length)).toBe(true);
      } finally {
        proxy.requireBearer(undefined);
      }
    });

    it('gives up on persistent 5xx with the status in the error', async () => {
      proxy.setFault((req) => (req.url?.includes('/manifests/') ? { kind: 'status', status: 503 } : undefined));
      const err = await pullImage(store, `${proxy.host}/test/shared:v1`, { retryBaseMs: 1, maxAttempts: 3 }).catch((e: unknown) => e);
      expect(isVmrunError(err, 'registry')).toBe(true);
      expect((err as Error).message).toMatch(/HTTP 503/);
    });
  });
});

describe.skipIf(unavailable)('a registry with htpasswd basic auth', () => {
  let registry: LoopbackRegistry;
  let store: ImageStore;
  let cleanup: () => Promise<void>;
  let work: string | undefined;
  const saved = process.env.VMRUN_REGISTRY_AUTH;
  const savedDocker = process.env.DOCKER_CONFIG;

  beforeAll(async () => {
    ({ store, cleanup } = await useTempHome());
    work = await tempDir();
    // An empty docker config dir so the developer's own ~/.docker is not consulted.
    process.env.DOCKER_CONFIG = work;
    registry = await startRegistry({ auth: { username: 'alice', password: 's3cret' } });
    const layout = join(work, 'layout');
    await writeOciLayout(layout, { v1: { layers: [await buildLayer([{ name: 'secret', content: 'classified' }])] } });
    await registry.push(layout, 'v1', 'private/img', 'v1');
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.VMRUN_REGISTRY_AUTH;
    else process.env.VMRUN_REGISTRY_AUTH = saved;
    if (savedDocker === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = savedDocker;
    await registry?.stop();
    await cleanup?.();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('fails without credentials, naming the registry and how to log in', async () => {
    delete process.env.VMRUN_REGISTRY_AUTH;
    const err = await pullImage(store, `${registry.host}/private/img:v1`).catch((e: unknown) => e);
    expect(isVmrunError(err, 'registry')).toBe(true);
    expect((err as Error).message).toMatch(/authentication failed.*VMRUN_REGISTRY_AUTH/);
  });

  it('fails with a wrong password, naming the user', async () => {
    process.env.VMRUN_REGISTRY_AUTH = JSON.stringify({ [registry.host]: { username: 'alice', password: 'wrong' } });
    const err = await pullImage(store, `${registry.host}/private/img:v1`).catch((e: unknown) => e);
    expect(isVmrunError(err, 'registry')).toBe(true);
    expect((err as Error).message).toMatch(/authentication failed/);
  });

  it('pulls with credentials from VMRUN_REGISTRY_AUTH', async () => {
    process.env.VMRUN_REGISTRY_AUTH = JSON.stringify({ [registry.host]: { username: 'alice', password: 's3cret' } });
    const image = await pullImage(store, `${registry.host}/private/img:v1`);
    const { byPath } = await collectRootfs(store, image);
    expect(byPath.get('secret')?.content?.toString()).toBe('classified');
  });

  it('pulls with credentials from docker config.json auths', async () => {
    delete process.env.VMRUN_REGISTRY_AUTH;
    await writeFile(join(process.env.DOCKER_CONFIG!, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
    await removeImages(store, [`${registry.host}/private/img:v1`]);
    const image = await pullImage(store, `${registry.host}/private/img:v1`);
    expect(image.manifest.layers).toHaveLength(1);
  });
});
