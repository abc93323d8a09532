// @ts-check
/**
 * The Debian tools the harness drives (apt-get, apt-cache, dpkg-query, dpkg-deb,
 * modinfo, the arm64 L1's QEMU; the x86 L1's is staged, x86-qemu.js): finding them, running them with a bound on time, and telling the
 * user which package to install when one is missing.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { HarnessError } from './harness-error.js';

/** The Debian package that provides each command the harness needs. */
const PACKAGE_OF_COMMAND = {
  'qemu-system-aarch64': 'qemu-system-arm',
  ldd: 'libc-bin',
  cc: 'gcc',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-query': 'dpkg',
  'dpkg-deb': 'dpkg',
  modinfo: 'kmod',
  cpio: 'cpio',
  xz: 'xz-utils',
  npm: 'npm',
  tar: 'tar',
};

/**
 * The absolute path of `command` on PATH, or a HarnessError naming the Debian package
 * that provides it.
 * @param {keyof typeof PACKAGE_OF_COMMAND} command
 * @returns {string}
 */
export function requireCommand(command) {
  const path = findCommand(command);
  if (!path) throw missingPackage(PACKAGE_OF_COMMAND[command], `${command} not found on PATH`);
  return path;
}

/**
 * The absolute path of `command` on PATH (or in /usr/sbin, /sbin), or undefined.
 * @param {string} command
 * @returns {string | undefined}
 */
export function findCommand(command) {
  // /usr/sbin and /sbin hold modinfo, and are often missing from a user's PATH.
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * A HarnessError telling the user to install `pkg`.
 * @param {string} pkg
 * @param {string} what
 */
export function missingPackage(pkg, what) {
  return new HarnessError(`${what}; install it with: apt-get install -y ${pkg}`);
}

/**
 * Runs a tool to completion (bounded by `timeoutMs`) and returns its stdout; a
 * HarnessError with its stderr if it fails.
 * @param {string} file
 * @param {string[]} args
 * @param {{ cwd?: string, timeoutMs?: number, input?: string }} [options]
 * @returns {string}
 */
export function runTool(file, args, options = {}) {
  return runToolBytes(file, args, options).toString('utf8');
}

/**
 * runTool for a tool whose stdout is binary (a decompressor's): the raw bytes.
 * @param {string} file
 * @param {string[]} args
 * @param {{ cwd?: string, timeoutMs?: number, input?: string }} [options]
 * @returns {Buffer}
 */
export function runToolBytes(file, args, options = {}) {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const result = spawnSync(file, args, {
    cwd: options.cwd,
    input: options.input,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
  });
  const commandLine = [file, ...args].join(' ');
  if (result.error) {
    const reason = /** @type {NodeJS.ErrnoException} */ (result.error).code === 'ETIMEDOUT'
      ? `did not finish in ${timeoutMs / 1000} s`
      : result.error.message;
    throw new HarnessError(`${commandLine}: ${reason}`, { cause: result.error });
  }
  if (result.status !== 0) {
    throw new HarnessError(`${commandLine} failed (exit ${result.status ?? result.signal})`, {
      detail: result.stderr.toString('utf8').trim(),
    });
  }
  return result.stdout;
}

/**
 * The installed version of a Debian package, or undefined when it is not installed.
 * @param {string} pkg
 * @returns {string | undefined}
 */
export function installedVersion(pkg) {
  const result = spawnSync(requireCommand('dpkg-query'), ['-W', '-f=${Status}\t${Version}', pkg], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.status !== 0) return undefined;
  const [status, version] = result.stdout.split('\t');
  return status?.endsWith(' installed') ? version : undefined;
}
