import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore, loadDockerArchive, resolveImage } from '../../src/oci/index.js';
import { registryUnavailableReason, startRegistry, type LoopbackRegistry } from '../helpers/registry.js';
import { writeDockerSaveArchive } from './docker-archive.js';
import { buildLayer, writeOciLayout } from './image-builder.js';
import { collectRootfs, fixture, tempDir, useTempHome } from './test-env.js';

const exec = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const unavailable = registryUnavailableReason();
if (unavailable) console.warn(`CLI registry tests cannot run: ${unavailable}`);

let home: string;
let cleanup: () => Promise<void>;
let work: string;

/** Runs the built CLI as a user would; never throws, returns code and output. */
async function vmrun(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec('node', [join(repo, 'bin/run.js'), ...args], { env: { ...process.env, VMRUN_HOME: home }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

beforeAll(async () => {
  ({ home, cleanup } = await useTempHome());
  work = await tempDir();
  // The CLI runs from dist/ (oclif loads dist/commands): compile it as `npm run build:ts` does.
  await exec('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo, timeout: 120_000 }).catch(() => {});
  if (!existsSync(join(repo, 'dist/commands/pull.js'))) throw new Error('tsc did not produce dist/commands/pull.js');
}, 150_000);
afterAll(async () => {
  await cleanup?.();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('vmrun image commands', () => {
  it.each(['pull', 'images', 'inspect', 'rmi', 'load', 'export'])('%s --help shows examples', async (cmd) => {
    const r = await vmrun(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/EXAMPLES/);
    expect(r.stdout).toContain(`vmrun ${cmd}`);
  });

  it('rejects a malformed reference with one line and exit 125', async () => {
    const r = await vmrun('pull', 'Not A/Valid::Ref');
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^vmrun: image reference "Not A\/Valid::Ref"/);
  });

  it('reports an image that is not in the store', async () => {
    const r = await vmrun('inspect', 'nosuchimage:1');
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/vmrun: image nosuchimage:1 is not in the store .*vmrun pull nosuchimage:1/);
  });

  it('loads a docker save archive (a duplicate layer given as a symlink member)', async () => {
    const archive = join(work, 'saved.tar');
    const { configDigest } = await writeDockerSaveArchive(archive, {
      tags: ['example/saved:1.0'],
      layers: [[{ name: 'etc/motd', content: await fixture('basic/etc/motd') }], [{ name: 'etc/extra', content: 'extra' }]],
    });
    const r = await vmrun('load', '-i', archive);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Loaded image: docker.io/example/saved:1.0');
    const images = JSON.parse((await vmrun('images', '--json')).stdout) as { name: string; id: string }[];
    expect(images.find((i) => i.name === 'docker.io/example/saved:1.0')?.id).toBe(configDigest);
    const tarOut = join(work, 'saved-rootfs.tar');
    expect((await vmrun('export', 'example/saved:1.0', '-o', tarOut)).code).toBe(0);
    const { stdout } = await exec('tar', ['-tf', tarOut]);
    expect(stdout.split('\n').sort()).toEqual(expect.arrayContaining(['etc/', 'etc/motd', 'etc/extra']));
  });

  it('loads a gzipped archive through the library', async () => {
    const archive = join(work, 'saved.tar.gz');
    await writeDockerSaveArchive(archive, { tags: ['example/gz:2'], gzip: true, layers: [[{ name: 'hello', content: 'world' }]] });
    // A store of its own, in the work dir: the CLI tests' VMRUN_HOME stays as it is.
    const store = await ImageStore.open(join(work, 'gz-store'));
    const [img] = await loadDockerArchive(store, archive);
    const { byPath } = await collectRootfs(store, await resolveImage(store, img!.record.name));
    expect(byPath.get('hello')?.content?.toString()).toBe('world');
  });

  it('refuses a file that is not a docker save archive', async () => {
    const bogus = join(work, 'bogus.tar');
    await exec('tar', ['-cf', bogus, '-C', join(repo, 'fixtures/images/basic'), 'etc']);
    const r = await vmrun('load', '-i', bogus);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/not a docker save archive \(no manifest.json\)/);
  });

  describe.skipIf(unavailable)('with a loopback registry', () => {
    let registry: LoopbackRegistry;
    beforeAll(async () => {
      registry = await startRegistry();
      const layout = join(work, 'layout');
      const layer = await buildLayer([
        { name: 'bin/busybox', content: await readFile('/bin/busybox'), mode: 0o755 },
        { name: 'etc/os-release', content: await fixture('basic/etc/os-release') },
      ]);
      await writeOciLayout(layout, { v1: { layers: [layer], config: { Cmd: ['/bin/busybox', 'sh'], Env: ['PATH=/bin'], WorkingDir: '/' } } });
      await registry.push(layout, 'v1', 'cli/test', 'v1');
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('pull, images, inspect, export and rmi work as a user runs them', async () => {
      const ref = `${registry.host}/cli/test:v1`;
      const pulled = await vmrun('pull', ref);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(pulled.stdout).toMatch(/^Digest: sha256:[a-f0-9]{64}$/m);
      expect(pulled.stderr).toMatch(/layer 1\/1 [a-f0-9]{12}: done/); // not a terminal: quiet lines
      expect((await vmrun('pull', '-q', ref)).stdout.trim()).toBe(ref);

      const table = await vmrun('images');
      expect(table.stdout).toMatch(new RegExp(`${registry.host}/cli/test\\s+v1\\s+[a-f0-9]{12}\\s+linux/amd64`));

      const info = JSON.parse((await vmrun('inspect', ref)).stdout) as { config: { cmd: string[]; env: string[] }; layers: unknown[] };
      expect(info.config.cmd).toEqual(['/bin/busybox', 'sh']);
      expect(info.layers).toHaveLength(1);

      const out = join(work, 'cli-rootfs.tar');
      const exported = await vmrun('export', ref, '-o', out);
      expect(exported.code, exported.stderr).toBe(0);
      const { stdout } = await exec('tar', ['-xOf', out, 'etc/os-release']);
      expect(stdout).toContain('vmrun test image');

      const removed = await vmrun('rmi', ref);
      expect(removed.stdout).toContain(`Untagged: ${ref}`);
      expect(removed.stdout).toMatch(/Deleted [1-9]\d* blobs?/);
      expect((await vmrun('images', '--json')).stdout).not.toContain('cli/test');
    });
  });
});
