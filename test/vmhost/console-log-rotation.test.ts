import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmRegistry } from '../../src/vmhost/registry.js';
import { RotatingLog } from '../../src/vmhost/rotating-log.js';
import { copyConsoleLog } from '../../src/vmhost/console-log.js';

// A background VM's console log is capped: console.log rotates to console.log.1 at a
// size bound, so a chatty guest costs at most twice the bound, and `vmrun logs` (with
// or without -f) reads across the rotation.
const root = mkdtempSync(join(tmpdir(), 'vmrun-log-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const registry = VmRegistry.at(root);
let next = 0;

function newVm(): { id: string; files: { current: string; previous: string } } {
  const id = (0xa00000000000 + next++).toString(16);
  const paths = registry.paths(id);
  mkdirSync(paths.dir, { recursive: true });
  writeFileSync(paths.record, JSON.stringify({ id, origin: 'boot', created: new Date().toISOString(), state: 'running' }));
  return { id, files: { current: paths.consoleLog, previous: paths.consoleLogPrevious } };
}

const line = (i: number) => Buffer.from(`line ${String(i).padStart(4, '0')} ${'.'.repeat(20)}\n`); // 31 bytes

async function readLogs(id: string, follow = false): Promise<string> {
  let out = '';
  await copyConsoleLog(registry, id, async (chunk) => void (out += chunk.toString()), { follow });
  return out;
}

describe('console log rotation', () => {
  it('keeps the two files under the cap, holding the newest output', async () => {
    const { id, files } = newVm();
    const log = new RotatingLog(files, 100);
    let all = '';
    for (let i = 0; i < 50; i++) {
      log.write(line(i));
      all += line(i).toString();
    }
    log.close();
    expect(statSync(files.current).size).toBeLessThanOrEqual(100);
    expect(statSync(files.previous).size).toBeLessThanOrEqual(100);
    const kept = readFileSync(files.previous, 'utf8') + readFileSync(files.current, 'utf8');
    expect(kept.length).toBeGreaterThan(100);
    expect(all.endsWith(kept)).toBe(true);
    // vmrun logs prints the same: the rotated part first.
    writeFileSync(registry.paths(id).record, JSON.stringify({ id, origin: 'boot', created: new Date().toISOString(), state: 'exited' }));
    expect(await readLogs(id)).toBe(kept);
  });

  it('logs -f follows the log across rotations and misses nothing', async () => {
    const { id, files } = newVm();
    writeFileSync(registry.paths(id).record, JSON.stringify({ id, origin: 'boot', created: new Date().toISOString(), state: 'starting' }));
    const log = new RotatingLog(files, 64); // every second line rotates
    let all = '';
    log.write(line(0));
    all += line(0).toString();
    const followed = readLogs(id, true);
    for (let i = 1; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 300)); // one rotation per look of the follower
      log.write(line(i));
      all += line(i).toString();
    }
    log.close();
    writeFileSync(registry.paths(id).record, JSON.stringify({ id, origin: 'boot', created: new Date().toISOString(), state: 'exited' }));
    expect(await followed).toBe(all);
  });

  it('a log that cannot be written reports once and stops, without throwing', () => {
    const { files } = newVm();
    const errors: string[] = [];
    const log = new RotatingLog({ current: files.current, previous: join(root, 'no-such-dir', 'x') }, 40, (e) => errors.push(e.message));
    for (let i = 0; i < 5; i++) log.write(line(i));
    log.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/ENOENT/);
  });
});
