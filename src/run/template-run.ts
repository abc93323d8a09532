/**
 * Warm starts: which runs can start from a template, the template's key, and making
 * one from a freshly booted guest whose agent just answered (before any workload).
 * The files themselves are src/snapshot/templates.ts's.
 */
import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { DEFAULT_MEMORY, type Machine } from '../machine/machine.js';
import { parseSize } from '../units.js';
import { openSnapshot } from '../snapshot/snapshot.js';
import { ensureRamImage } from '../snapshot/ram-image.js';
import { lockTemplate, recordTemplate, removeTemplateFiles, templatePath } from '../snapshot/templates.js';
import { pruneUnusedRamImages } from '../snapshot/store.js';
import type { PreparedRun, RunImageOptions } from './run-image.js';

/** Bumped when what a template holds changes meaning (its guest set-up, the agent's protocol). */
const TEMPLATE_FORMAT = 1;

/** Why a run boots cold instead of using a template (undefined: it can use one). */
export function templateRefusal(run: PreparedRun, opts: RunImageOptions & { cold?: boolean }): string | undefined {
  if (opts.cold) return '--cold';
  if (!run.guestAgent) return 'no guest agent';
  if (opts.disks?.length) return '--disk (disks are attached at boot)';
  if (opts.volumes?.length) return '-v/--mount (volumes are attached at boot: a template would hold one run\'s host directories)';
  if (opts.debug) return '--debug (the kernel\'s boot messages are wanted)';
  return undefined;
}

/** A file as a template key sees it: a rebuilt kernel or init is a new file. */
function fileIdentity(path: string): string {
  const st = statSync(path);
  return `${realpathSync(path)}:${st.size}:${st.mtimeMs}:${st.ino}`;
}

/** The template key of a prepared run: everything its guest's boot depends on. */
export function templateKey(run: PreparedRun): string {
  const b = run.boot;
  const facts = {
    format: TEMPLATE_FORMAT,
    image: run.image.record.digest,
    kernel: fileIdentity(b.kernel),
    init: run.guestInit ? fileIdentity(run.guestInit) : '',
    // The first initrd is the image's (or, with a block root, init's alone); the second is per run.
    initrd: b.initrd?.length ? fileIdentity(b.initrd[0]!) : '',
    disks: (b.disks ?? []).map((d) => `${fileIdentity(d.path)}:${d.readOnly ? 'ro' : 'rw'}:${d.serial ?? ''}`),
    cmdline: b.cmdline ?? '',
    memory: typeof b.memory === 'number' ? b.memory : parseSize(b.memory ?? DEFAULT_MEMORY, '--memory'),
    cpus: b.cpus ?? 1,
    network: { mode: b.network?.mode ?? 'user', dns: b.network?.dns ?? '' },
  };
  return createHash('sha256').update(JSON.stringify(facts)).digest('hex');
}

/**
 * Saves `machine` (booted, its agent waiting for a workload) as the template `key`,
 * unless another run is making it right now. The machine runs on. Says whether this
 * run made it, and why not when it tried and failed.
 */
export async function saveTemplate(machine: Machine, key: string, run: PreparedRun, imageRef: string): Promise<{ saved: boolean; error?: string }> {
  const release = lockTemplate(key);
  if (!release) return { saved: false };
  try {
    await makeTemplate(machine, key, run, imageRef);
    return { saved: true };
  } catch (e) {
    // A template is an optimisation: failing to make one (disk full...) costs this run
    // nothing but the attempt, and leaves no half-made template behind.
    removeTemplateFiles(key);
    return { saved: false, error: (e as Error).message };
  } finally {
    release();
  }
}

async function makeTemplate(machine: Machine, key: string, run: PreparedRun, imageRef: string): Promise<void> {
  const path = templatePath(key);
  const saved = await machine.snapshot(path);
  // Expanded now, so that the first warm start does not pay for it.
  await ensureRamImage(openSnapshot(path).opened);
  const m = saved.metadata.machine;
  await recordTemplate({
    key,
    image: imageRef,
    imageDigest: run.image.record.digest,
    kernel: run.boot.kernel,
    memoryBytes: m.memoryBytes,
    cpus: m.cpus,
    network: run.boot.network?.mode ?? 'user',
    rootfs: run.rootfs,
    created: new Date().toISOString(),
  });
  pruneUnusedRamImages();
}
