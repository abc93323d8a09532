// -v and --mount as the CLI takes them: docker's forms parsed, bad ones and bad host
// directories refused with one line and exit 125 before any image is pulled, and a
// Hermit kernel refused volumes (no KVM needed: all of it happens before a VM exists).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine, parseMountFlag, parseVolumeFlag } from '../../src/index.js';
import { checkVolumes } from '../../src/machine/volumes.js';
import { isVmrunError } from '../../src/errors.js';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, hermitKernel } from '../hermit/hermit-fixtures.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vmrun-volume-flags-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('-v HOSTDIR:GUESTDIR[:ro] and --mount type=bind', () => {
  it('parses docker\'s forms', () => {
    expect(parseVolumeFlag('/srv/a:/a')).toEqual({ hostDir: '/srv/a', guestDir: '/a', readOnly: false });
    expect(parseVolumeFlag('/srv/a:/a/:ro')).toEqual({ hostDir: '/srv/a', guestDir: '/a', readOnly: true });
    expect(parseVolumeFlag('/srv/a:/x//y/../b:rw')).toEqual({ hostDir: '/srv/a', guestDir: '/x/b', readOnly: false });
    expect(parseMountFlag('type=bind,src=/srv/a,dst=/a')).toEqual({ hostDir: '/srv/a', guestDir: '/a', readOnly: false });
    expect(parseMountFlag('type=bind,source=/srv/a,target=/a,readonly')).toEqual({ hostDir: '/srv/a', guestDir: '/a', readOnly: true });
    expect(parseMountFlag('destination=/a,readonly=false,type=bind,src=/srv/a')).toEqual({ hostDir: '/srv/a', guestDir: '/a', readOnly: false });
    expect(parseMountFlag('type=bind,src=/srv/a,dst=/a,ro=1')).toEqual({ hostDir: '/srv/a', guestDir: '/a', readOnly: true });
  });

  it('refuses what it cannot mean, naming the flag', () => {
    const refusals: [() => unknown, string][] = [
      [() => parseVolumeFlag('data:/a'), '-v "data:/a": the host directory "data" is not an absolute path (named volumes are not supported)'],
      [() => parseVolumeFlag('/srv/a'), '-v "/srv/a" is not HOSTDIR:GUESTDIR[:ro]'],
      [() => parseVolumeFlag('/srv/a:/a:z'), '-v "/srv/a:/a:z": unknown option "z" (ro or rw)'],
      [() => parseVolumeFlag('/srv/a:rel'), '-v "/srv/a:rel": the guest path "rel" is not absolute'],
      [() => parseVolumeFlag('/srv/a:/'), '-v "/srv/a:/": a volume cannot be mounted on the guest\'s /'],
      [() => parseVolumeFlag('/a:/b:/c:ro'), '-v "/a:/b:/c:ro" is not HOSTDIR:GUESTDIR[:ro]'],
      [() => parseMountFlag('type=volume,src=x,dst=/a'), '--mount "type=volume,src=x,dst=/a": only type=bind is supported'],
      [() => parseMountFlag('type=bind,dst=/a'), '--mount "type=bind,dst=/a": src= is missing'],
      [() => parseMountFlag('type=bind,src=/a'), '--mount "type=bind,src=/a": dst= is missing'],
      [() => parseMountFlag('type=bind,src=/a,dst=/b,bind-propagation=shared'), '--mount "type=bind,src=/a,dst=/b,bind-propagation=shared": unknown field "bind-propagation" (type, src, dst, readonly)'],
      [() => parseMountFlag('type=bind,src=/a,dst=/b,readonly=maybe'), '--mount "type=bind,src=/a,dst=/b,readonly=maybe": readonly=maybe is not true or false'],
    ];
    for (const [f, message] of refusals) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isVmrunError(err, 'usage'), message).toBe(true);
      expect((err as Error).message).toBe(message);
    }
  });

  it('checks the host directories and resolves symlinks; two volumes on one guest path are refused', () => {
    const dir = join(work, 'real');
    mkdirSync(dir);
    symlinkSync(dir, join(work, 'link'));
    expect(checkVolumes([{ hostDir: join(work, 'link'), guestDir: '/a' }])).toEqual([{ hostDir: dir, guestDir: '/a', readOnly: false }]);
    expect(() => checkVolumes([{ hostDir: dir, guestDir: '/a' }, { hostDir: dir, guestDir: '/a/', readOnly: true }])).toThrow('two volumes are mounted at /a in the guest');
  });

  it('a relative, missing or non-directory HOSTDIR: one line, exit 125, nothing pulled', async () => {
    const env = { VMRUN_HOME: join(work, 'home'), VMRUN_CACHE: join(work, 'cache') };
    const file = join(work, 'file');
    writeFileSync(file, 'x');
    const missing = join(work, 'missing');
    const cases: [string[], string][] = [
      [['-v', 'rel:/a'], 'vmrun: -v "rel:/a": the host directory "rel" is not an absolute path (named volumes are not supported)'],
      [['-v', `${missing}:/a`], `vmrun: volume ${missing} does not exist (vmrun does not create host directories)`],
      [['-v', `${file}:/a:ro`], `vmrun: volume ${file} is not a directory`],
      [['--mount', `type=tmpfs,dst=/a`], 'vmrun: --mount "type=tmpfs,dst=/a": only type=bind is supported'],
    ];
    for (const [flags, message] of cases) {
      // The image does not exist either: the volume is judged first.
      const r = await vmrun(['run', '-q', ...flags, 'oci:/nonexistent-layout:v1', 'true'], { env });
      expect(r.status).toBe(125);
      expect(r.stderr.trim().split('\n')).toEqual([message]);
    }
  });

  it('a Hermit kernel is refused volumes before a VM exists', () => {
    buildHermitKernels();
    let err: unknown;
    try {
      Machine.boot({ kernel: hermitKernel('minimal'), volumes: [{ hostDir: work, guestDir: '/data' }] });
    } catch (e) {
      err = e;
    }
    expect(isVmrunError(err, 'usage')).toBe(true);
    expect((err as Error).message).toBe(`volumes are for Linux guests; ${hermitKernel('minimal')} is a Hermit kernel`);
  });
});
