/**
 * Templates: snapshots of a guest booted to the point where its agent waits for a
 * workload, one per (image, kernel, init, memory, cpus, command line, network,
 * root filesystem) combination, kept in $VMRUN_HOME/templates. `vmrun run` restores
 * one instead of booting (src/run/template-run.ts); this file owns the files:
 * `<key>.vmsnap` (a snapshot), `<key>.json` (what it was made from), `<key>.lock`
 * (held by the run that is making it, so concurrent first runs make one, not two).
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { vmrunHome } from '../host/paths.js';
import { processAlive } from '../host/process-alive.js';
import { writeFileAtomic } from '../host/atomic-file.js';
import { VmrunError } from '../errors.js';
import { openSnapshot } from './snapshot.js';
import type { OpenedSnapshot } from './snapshot-file.js';

/** Templates kept at most; the least recently used go first (`vmrun run` makes new ones freely). */
export const MAX_TEMPLATES = 16;
/** A lock whose holder died, or that is older than this, is taken over. */
const STALE_LOCK_MS = 10 * 60_000;
const KEY = /^[0-9a-f]{64}$/;

/** What a template was made from (its `.json`). */
export interface TemplateRecord {
  key: string;
  image: string;
  imageDigest: string;
  kernel: string;
  memoryBytes: number;
  cpus: number;
  network: string;
  rootfs: string;
  created: string;
}

/** One line of `vmrun template ls`. */
export interface TemplateListing extends TemplateRecord {
  path: string;
  bytes: number;
  /** When a run last restored it (or made it): its record's mtime. */
  lastUsed: string;
}

export function templatesDir(home: string = vmrunHome()): string {
  return join(home, 'templates');
}

export function templatePath(key: string): string {
  return join(templatesDir(), `${checkKey(key)}.vmsnap`);
}

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new VmrunError('usage', `"${key}" is not a template id (64 hex digits; see vmrun template ls)`);
  return key;
}

function recordPath(key: string): string {
  return join(templatesDir(), `${checkKey(key)}.json`);
}

/**
 * The template for `key`, if one is complete; marks it used (for the LRU rule) on its
 * record: the snapshot file's own mtime is part of its RAM image's identity.
 */
export function findTemplate(key: string): string | undefined {
  const path = templatePath(key);
  if (!existsSync(path)) return undefined;
  const now = new Date();
  try {
    utimesSync(recordPath(key), now, now);
  } catch {
    return undefined; // not recorded yet (being made), or removed under us
  }
  return path;
}

/**
 * Takes the right to make the template for `key`: returns the release, or undefined
 * when another live process is making it (that run then boots without saving).
 */
export function lockTemplate(key: string): (() => void) | undefined {
  const dir = templatesDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, `${checkKey(key)}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => unlinkSync(lock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!lockIsStale(lock)) return undefined;
      try {
        unlinkSync(lock);
      } catch {
        /* another process took it over first */
      }
    }
  }
  return undefined;
}

function lockIsStale(lock: string): boolean {
  try {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    return !processAlive(pid) || Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS;
  } catch {
    return true;
  }
}

/** Records what a just-saved template was made from, then applies the count limit. */
export async function recordTemplate(record: TemplateRecord): Promise<void> {
  await writeFileAtomic(recordPath(record.key), JSON.stringify(record, null, 2) + '\n');
  const all = listTemplates();
  for (const t of all.slice(MAX_TEMPLATES)) removeTemplateFiles(t.key);
}

/** Every complete template, most recently used first. */
export function listTemplates(): TemplateListing[] {
  const dir = templatesDir();
  if (!existsSync(dir)) return [];
  const out: TemplateListing[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.vmsnap') || !KEY.test(f.slice(0, -7))) continue;
    const key = f.slice(0, -7);
    const path = join(dir, f);
    let record: TemplateRecord;
    let used: Date;
    try {
      record = JSON.parse(readFileSync(recordPath(key), 'utf8')) as TemplateRecord;
      used = statSync(recordPath(key)).mtime;
    } catch {
      continue; // being made (its record comes last), or damaged: gc removes it
    }
    const st = statSync(path, { throwIfNoEntry: false });
    if (st) out.push({ ...record, key, path, bytes: st.size, lastUsed: used.toISOString() });
  }
  return out.sort((a, b) => b.lastUsed.localeCompare(a.lastUsed));
}

/** Removes one template's files; returns whether it existed. */
export function removeTemplateFiles(key: string): boolean {
  let existed = false;
  for (const suffix of ['.vmsnap', '.json']) {
    try {
      unlinkSync(join(templatesDir(), `${checkKey(key)}${suffix}`));
      existed = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return existed;
}

/**
 * Removes templates whose image is no longer in the store (`keepImage` says), and
 * snapshot files without a record whose maker is gone. Returns the keys removed.
 */
export function gcTemplates(keepImage: (digest: string) => boolean): string[] {
  const removed: string[] = [];
  for (const t of listTemplates()) if (!keepImage(t.imageDigest) && removeTemplateFiles(t.key)) removed.push(t.key);
  const dir = templatesDir();
  if (!existsSync(dir)) return removed;
  for (const f of readdirSync(dir)) {
    const key = f.slice(0, 64);
    if (!f.endsWith('.vmsnap') || !KEY.test(key) || existsSync(join(dir, `${key}.json`)) || existsSync(join(dir, `${key}.lock`))) continue;
    if (removeTemplateFiles(key)) removed.push(key);
  }
  return removed;
}

/** The opened snapshots of every template (their RAM images are kept when snapshots are pruned). */
export function templateSnapshots(): OpenedSnapshot[] {
  const out: OpenedSnapshot[] = [];
  for (const t of listTemplates()) {
    try {
      out.push(openSnapshot(t.path).opened);
    } catch {
      /* a damaged template keeps no RAM image */
    }
  }
  return out;
}
