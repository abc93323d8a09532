// @ts-check
/**
 * Which kernel modules L1 must insmod, in which order: the dependency closure of a
 * few root modules, read from each module's own .modinfo with modinfo(8), since a
 * kernel package extracted without installing it has no modules.dep.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HarnessError } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';

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

/**
 * Every .ko under `dir`, by canonical module name.
 * @param {string} dir
 * @returns {Map<string, string>}
 */
function indexModuleFiles(dir) {
  const index = new Map();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ko')) {
      index.set(canonicalName(basename(entry.name, '.ko')), join(entry.parentPath ?? entry.path, entry.name));
    }
  }
  if (index.size === 0) {
    throw new HarnessError(`no uncompressed .ko modules under ${dir} (compressed modules are not supported)`);
  }
  return index;
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
