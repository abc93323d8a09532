// Where the e2e benchmarks run and with what: real guests need a KVM that runs them
// natively, so on a host without one (this project's PVM-backed machines) a bench
// re-runs itself inside the nested-KVM harness, after building on the host what is slow
// to build in L1 (the guest kernel, vmrun-init). Inside, a private vmrun home, cache
// and runtime dir, in L1's own tmpfs /run (no unix sockets on 9p paths).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeGuests } from '../../test/harness/native-guests.js';

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IN_L1 = process.env.VMRUN_NESTED_L1 === '1';
/** A whole bench file in the harness takes 5-10 min; 30 min means it is stuck. */
const HARNESS_TIMEOUT_S = 1800;
/**
 * L1's CPUs idle this long: the bench waits for something that never comes. The
 * harness then reports the stall (vCPU registers, L1's backtraces) as the e2e suite's
 * runner has it do, instead of holding the machine until HARNESS_TIMEOUT_S.
 */
const HARNESS_IDLE_TIMEOUT_S = 300;

/** Whether this process runs inside the nested-KVM harness's L1. */
export const inNestedL1 = () => IN_L1;

/**
 * Returns when guests can run here; otherwise says why on stderr, re-runs `script`
 * with the same arguments through test/harness/nested-kvm and exits with its status.
 * With `{ smallGuests: true }` (benchmarks of the purpose-built guests, which also run
 * on a PVM-backed KVM) any /dev/kvm will do, and only a host without one re-runs.
 */
export function runWhereGuestsRun(script, opts = {}) {
  if (IN_L1) return;
  if (opts.smallGuests && existsSync('/dev/kvm')) return;
  const verdict = opts.smallGuests ? { nativeGuests: false, reason: 'it has no /dev/kvm' } : nativeGuests();
  if (verdict.nativeGuests) return;
  const name = relative(ROOT, script);
  process.stderr.write(
    `${name}: this host's KVM cannot run ${opts.smallGuests ? 'guests' : 'Linux guests natively'} (${verdict.reason}); ` +
      're-running inside test/harness/nested-kvm (an L1 under QEMU TCG with nested KVM: absolute times there are far above a hardware host\'s, so compare the ratios)\n',
  );
  buildGuestInitOnHost();
  const env = { ...process.env, VMRUN_GUEST_KERNEL: buildGuestKernelOnHost() };
  // A bound on the whole run: L1 has been seen to stall (no progress, QEMU busy).
  const harness = ['--timeout', String(HARNESS_TIMEOUT_S), '--idle-timeout', String(HARNESS_IDLE_TIMEOUT_S), '--', process.execPath, script, ...process.argv.slice(2)];
  const r = spawnSync(join(ROOT, 'test', 'harness', 'nested-kvm'), harness, { stdio: 'inherit', env });
  process.exit(r.status ?? 125);
}

/**
 * Runs `node script` (the aarch64 L1's Node for arm64, first on its PATH) in one
 * aarch64 harness L1 with `env` added to this process's environment, bounded like
 * the x86 re-runs (`timeoutS`, default the same 30 min), output streamed; returns its
 * exit status (the harness's: 123 for a stalled L1, 124 for the timeout).
 * @param {string} script
 * @param {NodeJS.ProcessEnv} env
 * @param {number} [timeoutS]
 * @returns {number}
 */
export function runInAarch64L1(script, env, timeoutS = HARNESS_TIMEOUT_S) {
  const harness = ['--arch', 'aarch64', '--timeout', String(timeoutS), '--idle-timeout', String(HARNESS_IDLE_TIMEOUT_S), '--', 'node', script, ...process.argv.slice(2)];
  const r = spawnSync(join(ROOT, 'test', 'harness', 'nested-kvm'), harness, { stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status ?? 125;
}

/** guest/kernel/build.sh (returns at once when cached): the bzImage's path. */
function buildGuestKernelOnHost() {
  if (process.env.VMRUN_GUEST_KERNEL) return process.env.VMRUN_GUEST_KERNEL;
  const r = spawnSync(join(ROOT, 'guest', 'kernel', 'build.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const path = /^bzImage: (.+)$/m.exec(r.stdout ?? '')?.[1];
  if (r.status !== 0 || !path) throw new Error(`guest/kernel/build.sh failed (status ${r.status})`);
  return path;
}

/** make -C guest/init (vmrun-init, found by vmrun in guest/init/out). */
function buildGuestInitOnHost() {
  const r = spawnSync('make', ['-s', '-C', join(ROOT, 'guest', 'init')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('make -C guest/init failed');
  return join(ROOT, 'guest', 'init', 'out', 'vmrun-init');
}

/**
 * The guest kernel both sides boot: the bzImage (QEMU's microvm loads bzImages) and
 * the vmlinux beside it (vmrun's default).
 */
export function guestKernels() {
  const cacheRoot = process.env.VMRUN_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'vmrun');
  const bzImage = process.env.VMRUN_GUEST_KERNEL ?? join(cacheRoot, 'kernel', 'latest', 'bzImage');
  const vmlinux = join(dirname(bzImage), 'vmlinux');
  for (const path of [bzImage, vmlinux]) {
    if (!existsSync(path)) throw new Error(`guest kernel ${path} is missing: run guest/kernel/build.sh`);
  }
  return { bzImage, vmlinux };
}

/**
 * A private vmrun home, cache and runtime dir for this bench process, set in
 * process.env (for the library) and returned (for the CLI's children), with the
 * cleanup that stops the background VMs still running there and removes them.
 */
export function privateVmrunState() {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const parent = runtime && isAbsolute(runtime) && existsSync(runtime) ? runtime : tmpdir();
  const root = mkdtempSync(join(parent, 'vmrun-bench-'));
  const vars = { VMRUN_HOME: join(root, 'home'), VMRUN_CACHE: join(root, 'cache'), VMRUN_RUNTIME_DIR: join(root, 'runtime') };
  mkdirSync(vars.VMRUN_RUNTIME_DIR, { mode: 0o700 });
  chmodSync(vars.VMRUN_RUNTIME_DIR, 0o700);
  Object.assign(process.env, vars);
  const env = { ...process.env };
  const vmrun = (...args) => spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], { env, encoding: 'utf8', timeout: 120_000 });
  const cleanup = () => {
    for (const id of (vmrun('ps', '-q').stdout ?? '').split('\n').filter(Boolean)) vmrun('stop', id);
    rmSync(root, { recursive: true, force: true });
  };
  return { root, env, cleanup };
}
