// Builds guest/init (make is incremental) so tests can run the real vmrun-init parsers.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');

/** The path of a freshly built vmrun-init. */
export function buildGuestInit(): string {
  const r = spawnSync('make', ['-s', '-C', join(repo, 'guest/init')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C guest/init failed:\n${r.stdout}${r.stderr}`);
  return join(repo, 'guest/init/out/vmrun-init');
}

/** Runs vmrun-init in one of its host modes. */
export function runGuestInit(init: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(init, args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
