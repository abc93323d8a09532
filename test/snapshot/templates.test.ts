// The template store's rules, on files: one maker per key at a time (a dead maker's
// lock is taken over), the count limit by least recent use, and gc of templates whose
// image is gone or whose maker died before recording them.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gcTemplates, listTemplates, lockTemplate, MAX_TEMPLATES, recordTemplate, templatePath, templatesDir, findTemplate } from '../../src/snapshot/templates.js';

let home: string;
const saved = process.env.VMRUN_HOME;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'vmrun-templates-'));
  process.env.VMRUN_HOME = home;
});
afterEach(() => {
  if (saved === undefined) delete process.env.VMRUN_HOME;
  else process.env.VMRUN_HOME = saved;
  rmSync(home, { recursive: true, force: true });
});

const keyOf = (n: number): string => createHash('sha256').update(String(n)).digest('hex');

/** A template as a finished run leaves it: its snapshot file, then its record; used `agoS` seconds ago. */
async function makeTemplate(n: number, agoS: number, imageDigest = `sha256:${'a'.repeat(64)}`): Promise<string> {
  const key = keyOf(n);
  mkdirSync(templatesDir(), { recursive: true });
  writeFileSync(templatePath(key), `snapshot ${n}`);
  const when = new Date(Date.now() - agoS * 1000);
  await recordTemplate({ key, image: `img${n}`, imageDigest, kernel: '/k', memoryBytes: 1 << 28, cpus: 1, network: 'user', rootfs: 'initramfs', created: when.toISOString() });
  utimesSync(join(templatesDir(), `${key}.json`), when, when);
  return key;
}

describe('template store', () => {
  it('lets one run make a template at a time, and takes over the lock of a maker that died', () => {
    const key = keyOf(1);
    const release = lockTemplate(key);
    expect(release).toBeTypeOf('function');
    expect(lockTemplate(key)).toBeUndefined();
    release!();
    const again = lockTemplate(key);
    expect(again).toBeTypeOf('function');
    again!();
    // A lock whose pid is gone (a child that exited) is stale.
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    writeFileSync(join(templatesDir(), `${key}.lock`), `${dead}\n`);
    const takenOver = lockTemplate(key);
    expect(takenOver).toBeTypeOf('function');
    takenOver!();
  });

  it('finds a complete template and marks it used; ids that are not keys are refused', async () => {
    const key = await makeTemplate(1, 3600);
    const before = listTemplates()[0]!.lastUsed;
    const snapshotMtime = statSync(templatePath(key)).mtimeMs;
    expect(findTemplate(key)).toBe(templatePath(key));
    expect(listTemplates()[0]!.lastUsed > before).toBe(true);
    // The snapshot file itself is untouched: its mtime is part of its RAM image's identity.
    expect(statSync(templatePath(key)).mtimeMs).toBe(snapshotMtime);
    expect(findTemplate(keyOf(2))).toBeUndefined();
    expect(() => findTemplate('../../etc/passwd')).toThrow(/not a template id/);
  });

  it(`keeps at most ${MAX_TEMPLATES}, dropping the least recently used`, async () => {
    const keys: string[] = [];
    for (let i = 0; i < MAX_TEMPLATES + 2; i++) keys.push(await makeTemplate(i, 1000 - i)); // later ones are newer
    const left = listTemplates().map((t) => t.key);
    expect(left).toHaveLength(MAX_TEMPLATES);
    expect(left).not.toContain(keys[0]);
    expect(left).not.toContain(keys[1]);
    expect(left[0]).toBe(keys[keys.length - 1]);
    expect(existsSync(templatePath(keys[0]!))).toBe(false);
  });

  it('gc removes templates of images no longer in the store, and unrecorded ones whose maker is gone', async () => {
    const keep = await makeTemplate(1, 10, `sha256:${'b'.repeat(64)}`);
    const gone = await makeTemplate(2, 10, `sha256:${'c'.repeat(64)}`);
    const orphan = keyOf(3);
    writeFileSync(templatePath(orphan), 'half made');
    const inProgress = keyOf(4);
    writeFileSync(templatePath(inProgress), 'being made');
    const release = lockTemplate(inProgress);
    const removed = gcTemplates((d) => d === `sha256:${'b'.repeat(64)}`);
    expect(removed.sort()).toEqual([gone, orphan].sort());
    expect(listTemplates().map((t) => t.key)).toEqual([keep]);
    expect(existsSync(templatePath(inProgress))).toBe(true);
    release!();
  });
});
