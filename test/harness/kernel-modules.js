// @ts-check
/**
 * Which kernel modules L1 must insmod, in which order: the dependency closure of a
 * few root modules, read from each module's own .modinfo with modinfo(8), since a
 * kernel package extracted without installing it has no modules.dep. Modules may be
 * compressed (Debian's 6.12 kernels ship .ko.xz); readModule gives their plain ELF
 * bytes, which is what busybox's insmod in L1 loads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { basename, join } from 'node:path';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool, runToolBytes } from './host-tools.js';

/**
 * A module to load: its canonical name (dashes as underscores) and its .ko file.
 * @typedef {{ name: string, file: string }} KernelModule
 */

/**
 * The modules that `roots` need, each after its dependencies, roots last; modules
 * built into the kernel are left out.
 * @param {string} modulesDir lib/modules/<release> of an extracted kernel package
 * @param {string[]} roots module names, e.g. ['kvm_amd', '9p']
 * @returns {KernelModule[]}
 */
export function moduleLoadOrder(modulesDir, roots) {
  const modinfo = requireCommand('modinfo');
  const files = indexModuleFiles(join(modulesDir, 'kernel'));
  const builtin = builtinModules(modulesDir);
  /** @type {KernelModule[]} */
  const order = [];
  const done = new Set();
  const visiting = new Set();
  /** @param {string} raw @param {string} neededBy */
  const visit = (raw, neededBy) => {
    const name = canonicalName(raw);
    if (done.has(name) || builtin.has(name)) return;
    if (visiting.has(name)) throw new HarnessError(`kernel module dependency cycle through ${name}`);
    const file = files.get(name);
    if (!file) throw new HarnessError(`kernel module ${name} (needed by ${neededBy}) is not in ${modulesDir}`);
    visiting.add(name);
    const depends = runTool(modinfo, ['-F', 'depends', file]).trim();
    for (const dep of depends.split(',').filter(Boolean)) visit(dep, name);
    visiting.delete(name);
    done.add(name);
    order.push({ name, file });
  };
  for (const root of roots) visit(root, 'the harness');
  return order;
}

/** @param {string} name */
function canonicalName(name) {
  return name.replaceAll('-', '_');
}

/** A module file's name: NAME.ko, or compressed as NAME.ko.xz / NAME.ko.gz. */
const MODULE_FILE = /^(.+)\.ko(\.xz|\.gz)?$/;

/**
 * Every module file under `dir`, by canonical module name.
 * @param {string} dir
 * @returns {Map<string, string>}
 */
function indexModuleFiles(dir) {
  const index = new Map();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const name = entry.isFile() ? MODULE_FILE.exec(entry.name)?.[1] : undefined;
    if (name) index.set(canonicalName(name), join(entry.parentPath ?? entry.path, entry.name));
  }
  if (index.size === 0) throw new HarnessError(`no kernel modules (.ko, .ko.xz, .ko.gz) under ${dir}`);
  return index;
}

/**
 * A module's plain ELF bytes, decompressed if its file is.
 * @param {string} file
 * @returns {Buffer}
 */
export function readModule(file) {
  if (file.endsWith('.ko.gz')) return gunzipSync(readFileSync(file));
  if (file.endsWith('.ko.xz')) return runToolBytes(requireCommand('xz'), ['-dc', file]);
  return readFileSync(file);
}

/**
 * Names of the modules compiled into the kernel (modules.builtin).
 * @param {string} modulesDir
 * @returns {Set<string>}
 */
function builtinModules(modulesDir) {
  const text = readFileSync(join(modulesDir, 'modules.builtin'), 'utf8');
  return new Set(text.split('\n').filter(Boolean).map((line) => canonicalName(basename(line, '.ko'))));
}
