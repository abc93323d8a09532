/**
 * What `vmrun run IMAGE [CMD...]` runs, resolved from the image config and the flags
 * by docker's rules (moby's config merge and CreateDaemonEnvironment, the docker CLI's
 * -e/--env-file handling).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { VmrunError } from '../errors.js';
import type { GuestRunConfig } from '../initramfs/run-config.js';
import type { ImageConfig } from '../oci/manifest.js';

/** docker's PATH when neither the image nor the flags set one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The flags of `vmrun run` that decide what runs. */
export interface RunFlags {
  /** CMD arguments after the image name; non-empty replaces the image's Cmd. */
  command?: string[];
  /** --entrypoint: replaces the image's Entrypoint and drops its Cmd ("" clears it). */
  entrypoint?: string;
  /** -e/--env, in order: KEY=VAL, or KEY to take the host's value (unset if absent). */
  env?: string[];
  /** --env-file paths, read before -e (docker's order). */
  envFiles?: string[];
  /** -w/--workdir (absolute). */
  workdir?: string;
  /** -u/--user: name|uid[:group|gid]. */
  user?: string;
  /** --group-add. */
  groupAdd?: string[];
  /** -h/--hostname; default: a random 12-hex-digit id, like a container id prefix. */
  hostname?: string;
  /** -t. */
  tty?: boolean;
  /** -i. */
  interactive?: boolean;
  rows?: number;
  cols?: number;
}

/** The resolved run: exactly what the guest init receives. */
export type RunSpec = GuestRunConfig;

/** A short random id for the default hostname (docker uses the container id's first 12 hex digits). */
export function shortId(): string {
  return randomBytes(6).toString('hex');
}

/**
 * Applies `overrides` to `base` by docker's ReplaceOrAppendEnvValues: KEY=VAL replaces
 * KEY in place or appends it; a bare KEY removes it.
 */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  const keyOf = (kv: string) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? kv : kv.slice(0, eq);
  };
  for (const kv of overrides) {
    const key = keyOf(kv);
    const at = out.findIndex((e) => keyOf(e) === key);
    if (!kv.includes('=')) {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) {
      out[at] = kv;
    } else {
      out.push(kv);
    }
  }
  return out;
}

/** A -e value as the docker CLI passes it on: KEY=VAL as is, KEY with the host's value or bare (unset). */
function resolveEnvFlag(value: string, what: string, hostEnv: NodeJS.ProcessEnv): string {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  if (key === '') throw new VmrunError('usage', `${what} "${value}": the variable name is empty`);
  if (eq >= 0) return value;
  const hostValue = hostEnv[key];
  return hostValue === undefined ? key : `${key}=${hostValue}`;
}

/**
 * The KEY=VAL lines of a docker env file: blank lines and lines starting with # are
 * skipped, leading whitespace is trimmed, values are literal (no quote processing),
 * and a line with only KEY takes the host's value.
 */
export function parseEnvFile(text: string, path: string, hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (/\s/.test(key)) throw new VmrunError('usage', `env file ${path} line ${i + 1}: variable "${key}" contains whitespace`);
    out.push(resolveEnvFlag(line, `env file ${path} line ${i + 1}`, hostEnv));
  });
  return out;
}

function readEnvFile(path: string, hostEnv: NodeJS.ProcessEnv): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new VmrunError('not-found', `env file ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  return parseEnvFile(text, path, hostEnv);
}

function checkHostname(name: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(name)) {
    throw new VmrunError('usage', `hostname "${name}" is not 1-63 letters, digits, dots and hyphens starting with a letter or digit`);
  }
  return name;
}

/**
 * Resolves what runs: argv = Entrypoint + Cmd, where --entrypoint replaces the
 * Entrypoint and drops the image's Cmd, and CMD arguments replace Cmd; env = PATH,
 * HOSTNAME (and TERM with -t), then the image's Env, then --env-file and -e; workdir =
 * -w, the image's WorkingDir, or /; user = -u, the image's User, or root.
 */
export function resolveRunSpec(
  image: ImageConfig['config'],
  flags: RunFlags,
  hostEnv: NodeJS.ProcessEnv = process.env,
): RunSpec {
  const userCmd = flags.command && flags.command.length > 0 ? flags.command : undefined;
  let entrypoint: string[];
  let cmd: string[];
  if (flags.entrypoint === undefined) {
    entrypoint = image.Entrypoint ?? [];
    cmd = userCmd ?? image.Cmd ?? [];
  } else {
    entrypoint = flags.entrypoint === '' ? [] : [flags.entrypoint];
    cmd = userCmd ?? [];
  }
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new VmrunError('usage', 'no command specified: the image has no Entrypoint or Cmd (or --entrypoint cleared them); give a command after the image name');
  }

  const hostname = checkHostname(flags.hostname ?? shortId());
  const tty = flags.tty ?? false;
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, ...(tty ? ['TERM=xterm'] : [])];
  const fromFiles = (flags.envFiles ?? []).flatMap((f) => readEnvFile(f, hostEnv));
  const fromFlags = (flags.env ?? []).map((e) => resolveEnvFlag(e, '-e', hostEnv));
  const env = mergeEnv(mergeEnv(base, image.Env ?? []), [...fromFiles, ...fromFlags]);

  let workdir = '/';
  if (flags.workdir !== undefined) {
    if (!flags.workdir.startsWith('/')) throw new VmrunError('usage', `the working directory "${flags.workdir}" is invalid, it needs to be an absolute path`);
    workdir = flags.workdir;
  } else if (image.WorkingDir) {
    if (!image.WorkingDir.startsWith('/')) throw new VmrunError('image', `the image's WorkingDir "${image.WorkingDir}" is not an absolute path`);
    workdir = image.WorkingDir;
  }

  return {
    argv,
    env,
    workdir,
    user: flags.user ?? image.User ?? '',
    groupAdd: flags.groupAdd ?? [],
    hostname,
    tty,
    interactive: flags.interactive ?? false,
    ...(flags.rows !== undefined ? { rows: flags.rows } : {}),
    ...(flags.cols !== undefined ? { cols: flags.cols } : {}),
  };
}
