import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { VmrunError, type VmrunErrorKind } from '../errors.js';
import { VmRegistry, type VmRecord } from './registry.js';
import type { HostSpec } from './host-spec.js';
import type { StartOutcome } from './host-process.js';

/** What `ps` shows about a VM besides its state (name, what it boots). */
export type VmDescription = Omit<VmRecord, 'id' | 'created' | 'state' | 'pid'>;

/**
 * Bound on waiting for the host process to report that the machine started. Node's
 * own start takes 5-20 s on an emulated CPU (the nested harness) under load.
 */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

const HOST_MAIN = fileURLToPath(new URL('./host-main.js', import.meta.url));

/**
 * Starts a machine in a background host process that owns it (vmrun boot -d, run -d,
 * snapshot restore -d): registers the VM, spawns the host in its own session, and
 * waits (bounded) until it reports the machine running. A start failure is thrown
 * as the host reported it (same kind and message as a foreground start) and leaves
 * nothing behind in the registry.
 */
export async function startDetached(
  spec: HostSpec,
  description: VmDescription,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<VmRecord> {
  if (!existsSync(HOST_MAIN)) throw new VmrunError('internal', `the VM host program ${HOST_MAIN} is missing (run npm run build:ts)`);
  const registry = await VmRegistry.open(opts.env);
  const record = await registry.create(description);
  const paths = registry.paths(record.id);
  let child: ReturnType<typeof spawn> | undefined;
  try {
    await writeFile(paths.spec, JSON.stringify(spec), { mode: 0o600 });
    const hostLog = openSync(paths.hostLog, 'a', 0o600);
    try {
      child = spawn(process.execPath, [HOST_MAIN, registry.root, record.id], {
        detached: true,
        stdio: ['ignore', hostLog, hostLog, 'pipe'],
        env: opts.env ?? process.env,
      });
    } finally {
      closeSync(hostLog);
    }
    const outcome = await awaitStartReport(child, child.stdio[3] as Readable, opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    if (!outcome.ok) {
      const tail = outcome.error.kind === 'internal' ? await lastLine(paths.hostLog) : '';
      throw new VmrunError(outcome.error.kind, tail ? `${outcome.error.message} (${tail})` : outcome.error.message);
    }
    (child.stdio[3] as Readable).destroy();
    child.unref();
    return (await registry.read(record.id)) ?? record;
  } catch (e) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await registry.remove(record);
    throw e;
  }
}

/** The host's one-line start report, or a failure if it exits or stays silent past the bound. */
function awaitStartReport(child: ReturnType<typeof spawn>, pipe: Readable, timeoutMs: number): Promise<StartOutcome> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const finish = (outcome: StartOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      pipe.off('data', onData);
      pipe.off('close', onClose);
      resolve(outcome);
    };
    const fail = (kind: VmrunErrorKind, message: string): void => finish({ ok: false, error: { kind, message } });
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      try {
        finish(JSON.parse(text.slice(0, newline)) as StartOutcome);
      } catch {
        fail('internal', 'the VM host process sent a malformed start report');
      }
    };
    // The pipe closes when the host exits; the report may still be in it when 'exit' fires, so judge on close.
    const onClose = (): void => {
      const describe = (): void =>
        fail('internal', `the VM host process ended before the VM started (${child.signalCode ?? `exit ${child.exitCode}`})`);
      if (child.exitCode !== null || child.signalCode !== null) describe();
      else {
        child.once('exit', describe);
        setTimeout(describe, 1000).unref();
      }
    };
    const timer = setTimeout(() => fail('internal', `the VM host process did not report within ${timeoutMs} ms`), timeoutMs);
    pipe.on('data', onData);
    pipe.on('error', () => {});
    pipe.on('close', onClose);
  });
}

async function lastLine(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim()).pop()?.trim().slice(0, 300) ?? '';
}
