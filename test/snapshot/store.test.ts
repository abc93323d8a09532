import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmrun } from '../helpers/cli.js';
import { sampleMetadata, writeSyntheticSnapshot } from '../helpers/snapshot-file.js';
import { listSnapshots, removeSnapshot, snapshotsDir } from '../../src/snapshot/store.js';
import { openSnapshotFile } from '../../src/snapshot/snapshot-file.js';

const home = mkdtempSync(join(tmpdir(), 'vmrun-snapstore-'));
const env = { VMRUN_HOME: home, VMRUN_CACHE: join(home, 'cache') };
beforeAll(() => {
  Object.assign(process.env, env);
  mkdirSync(snapshotsDir(), { recursive: true });
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** Metadata with one field replaced (a dotted path), as a hostile file could carry. */
function crafted(path: string, value: unknown): Record<string, unknown> {
  const m = sampleMetadata();
  const keys = path.split('.');
  let o = m as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys.at(-1)!] = value;
  return m;
}

const hostile: [string, unknown][] = [
  ['created', 12345],
  ['created', { toString: 1 }],
  ['vmrunVersion', ['x']],
  ['machine.image', 7],
  ['machine.kernel', { a: 1 }],
  ['machine.cmdline', false],
  ['host', 'x'],
  ['ram', null],
  ['timings.pausedMs', 'slow'],
];

describe('snapshot store with crafted metadata', () => {
  it('open, ls and the CLI show each crafted file as damaged; rm removes it', async () => {
    await writeSyntheticSnapshot(join(snapshotsDir(), 'good.vmsnap'), sampleMetadata());
    for (const [i, [field, value]] of hostile.entries()) {
      await writeSyntheticSnapshot(join(snapshotsDir(), `bad-${i}.vmsnap`), crafted(field, value));
      expect(() => openSnapshotFile(join(snapshotsDir(), `bad-${i}.vmsnap`)), field).toThrow(/the metadata .*(is not|are not|has)/);
    }
    const list = listSnapshots();
    expect(list.map((s) => s.name).sort()).toEqual(['good', ...hostile.map((_, i) => `bad-${i}`)].sort());
    const good = list.find((s) => s.name === 'good');
    expect(good?.error).toBeUndefined();
    expect(good).toMatchObject({ created: '2026-12-03T12:00:00.000Z', cpus: 1 });
    for (const s of list.filter((x) => x.name !== 'good')) {
      expect(s.error, s.name).toMatch(/snapshot .*bad-\d+\.vmsnap: the metadata/);
      expect(s.created).toBeUndefined();
    }

    const ls = await vmrun(['snapshot', 'ls'], { env });
    expect(ls.stderr).toBe('');
    expect(ls.status).toBe(0);
    expect(ls.stdout).toMatch(/^bad-0 .*damaged: snapshot .*bad-0\.vmsnap: the metadata field "created" is not a string/m);

    for (let i = 0; i < hostile.length; i++) {
      expect(removeSnapshot(`bad-${i}`)).toBe(join(snapshotsDir(), `bad-${i}.vmsnap`));
      expect(existsSync(join(snapshotsDir(), `bad-${i}.vmsnap`))).toBe(false);
    }
    expect(listSnapshots().map((s) => s.name)).toEqual(['good']);
  });

  it('vmrun snapshot rm removes a crafted file and exits 0', async () => {
    await writeSyntheticSnapshot(join(snapshotsDir(), 'bad-cli.vmsnap'), crafted('created', 1));
    const rm = await vmrun(['snapshot', 'rm', 'bad-cli'], { env });
    expect(rm.stderr).toBe('');
    expect(rm.status).toBe(0);
    expect(existsSync(join(snapshotsDir(), 'bad-cli.vmsnap'))).toBe(false);
  });
});
