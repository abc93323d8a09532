// @ts-check
/**
 * What the harness prints when the watchdog finds L1 stalled, collected before QEMU
 * is killed: how QEMU's threads use the host's CPUs, the last heartbeats, every vCPU's
 * registers (sampled a few times, instruction pointers mapped to kernel symbols), and
 * L1's own view through magic sysrq on its keyboard: backtraces of all CPUs (l),
 * blocked tasks (w) and all tasks (t), as its console prints them. Each source is
 * bounded; one that does not answer is reported as such and the rest still comes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpClient } from './qmp.js';

/** How many times, and how far apart, the vCPUs' registers are sampled. */
const REGISTER_SAMPLES = 3;
const SAMPLE_GAP_MS = 1000;
/** Bytes of code shown at each vCPU's instruction pointer (x86 instructions are at most 15). */
const CODE_BYTES = 16;

/**
 * sysrq keys pressed, in order, with the header line L1's kernel prints for each:
 * console loglevel 8 (show everything), then the dumps.
 */
const SYSRQ_KEYS = [
  { key: '8', what: 'console loglevel 8', header: 'sysrq: Changing Loglevel' },
  { key: 'l', what: 'backtraces of all active CPUs', header: 'sysrq: Show backtrace of all active CPUs' },
  { key: 'w', what: 'blocked tasks', header: 'sysrq: Show Blocked State' },
  { key: 't', what: 'all tasks', header: 'sysrq: Show State' },
];
/** How long one key's header may take to appear (L1 under a loaded host is slow). */
const SYSRQ_KEY_WAIT_MS = 30_000;
/** After the last key, the console counts as done after this much silence... */
const CONSOLE_QUIET_MS = 5000;
/** ...or after this long. */
const CONSOLE_WAIT_MAX_MS = 90_000;
/** Clock ticks per second in /proc/<pid>/stat (USER_HZ on Linux). */
const CLOCK_TICKS_PER_S = 100;

/**
 * @typedef {{ qemuPid: number | undefined, qmpSocket: string, symbols: import('./kernel-symbols.js').KernelSymbols | undefined,
 *   console: import('./l1-console.js').L1Console, heartbeat: string, reason: string }} StallContext
 */

/**
 * Collects the report (about 10-100 s, most of it waiting for sysrq output).
 * @param {StallContext} context
 * @returns {Promise<string>}
 */
export async function collectStallReport(context) {
  const sections = [`=== L1 stall report: ${context.reason} ===`];
  const threadsBefore = qemuThreads(context.qemuPid);
  const threadsAt = performance.now();
  /** @type {QmpClient | undefined} */
  let qmp;
  try {
    qmp = await QmpClient.connect(context.qmpSocket);
  } catch (e) {
    sections.push(`--- QEMU's monitor: could not connect to ${context.qmpSocket}: ${errorText(e)} ---`);
  }
  try {
    /** @type {string[]} */
    const dumps = [];
    let runState = 'unknown';
    if (qmp) {
      runState = await qmp.execute('query-status').then((s) => String(s?.status), (e) => `unknown (${errorText(e)})`);
      for (let i = 0; i < REGISTER_SAMPLES; i++) {
        if (i > 0) await sleep(SAMPLE_GAP_MS);
        dumps.push(await qmp.hmp('info registers -a').catch((e) => `(no answer: ${errorText(e)})`));
      }
    } else {
      await sleep(SAMPLE_GAP_MS);
    }
    sections.push(
      `--- QEMU's threads on the host (CPU use over the last ${((performance.now() - threadsAt) / 1000).toFixed(1)} s) ---`,
      describeThreads(threadsBefore, qemuThreads(context.qemuPid), performance.now() - threadsAt),
      '--- L1 heartbeat ---',
      context.heartbeat,
    );
    if (qmp) {
      sections.push(
        `--- vCPUs (QEMU run state: ${runState}); instruction pointer in ${REGISTER_SAMPLES} samples ${SAMPLE_GAP_MS / 1000} s apart ---`,
        describeInstructionPointers(dumps, context.symbols),
        `--- code at those instruction pointers, as guest memory holds it now ---`,
        await codeAtInstructionPointers(qmp, dumps, context.symbols),
        '--- info registers -a (first sample) ---',
        (dumps[0] ?? '').trimEnd(),
      );
      sections.push(await sysrqDumps(qmp, context.console));
    }
  } finally {
    qmp?.close();
  }
  return sections.join('\n');
}

/**
 * Presses the sysrq keys on L1's keyboard, each once the previous one's header is on
 * the console, and returns what the console printed.
 * @param {QmpClient} qmp
 * @param {import('./l1-console.js').L1Console} l1Console
 */
async function sysrqDumps(qmp, l1Console) {
  const lines = l1Console.capture();
  const started = performance.now();
  /** @type {string[]} */
  const problems = [];
  const waitFor = async (/** @type {(now: number) => boolean} */ done, /** @type {number} */ limitMs) => {
    const from = performance.now();
    while (!done(performance.now()) && performance.now() - from < limitMs) await sleep(250);
    return done(performance.now());
  };
  for (const { key, header } of SYSRQ_KEYS) {
    try {
      await qmp.hmp(`sendkey alt-sysrq-${key}`);
    } catch (e) {
      problems.push(`sendkey alt-sysrq-${key}: ${errorText(e)}`);
      break;
    }
    if (!(await waitFor(() => lines.some((l) => l.includes(header)), SYSRQ_KEY_WAIT_MS))) {
      problems.push(`(no "${header}" from L1 ${SYSRQ_KEY_WAIT_MS / 1000} s after sysrq ${key}: L1 takes no keyboard interrupt; the registers above are what there is)`);
      break;
    }
  }
  // The last dump is long; it is done when the console has gone quiet.
  await waitFor((now) => now - l1Console.lastOutputAtMs >= CONSOLE_QUIET_MS, CONSOLE_WAIT_MAX_MS);
  const waited = ((performance.now() - started) / 1000).toFixed(0);
  const header = `--- L1's console after sysrq ${SYSRQ_KEYS.map(({ key, what }) => `${key} (${what})`).join(', ')}; ${waited} s ---`;
  return [header, ...lines, ...problems].join('\n');
}

/**
 * One line per vCPU: its instruction pointer in each sample, with the kernel symbol,
 * privilege level, interrupt flag and halt state.
 * @param {string[]} dumps `info registers -a` outputs
 * @param {import('./kernel-symbols.js').KernelSymbols | undefined} symbols
 */
export function describeInstructionPointers(dumps, symbols) {
  /** @type {Map<string, string[]>} */
  const byCpu = new Map();
  for (const dump of dumps) {
    for (const cpu of parseRegisterDump(dump)) {
      const line = `${cpu.rip.toString(16).padStart(16, '0')} ${whereIs(cpu, symbols)} (CPL ${cpu.cpl}, IF=${cpu.interruptsOn ? 1 : 0}${cpu.halted ? ', halted' : ''})`;
      byCpu.set(cpu.name, [...(byCpu.get(cpu.name) ?? []), line]);
    }
  }
  if (byCpu.size === 0) return '(no registers could be read)';
  return [...byCpu].map(([name, lines]) => `${name}:\n${lines.map((l) => `  ${l}`).join('\n')}`).join('\n');
}

/**
 * Where an instruction pointer is: user space, a kernel symbol, or kernel code the
 * symbols do not cover (a module's).
 * @param {{ rip: bigint, cpl: number }} cpu
 * @param {import('./kernel-symbols.js').KernelSymbols | undefined} symbols
 */
function whereIs(cpu, symbols) {
  if (cpu.cpl !== 0) return 'user space';
  return symbols?.symbolize(cpu.rip) ?? `kernel${symbols ? ' (a module?)' : ''}`;
}

/**
 * The bytes at each instruction pointer a vCPU was seen at, read through that vCPU's
 * page tables. A vCPU that traps again and again on an instruction that memory no
 * longer holds is running a stale translation of it (QEMU's TCG): the L1 stall of
 * docs/testing.md, where a vCPU loops through exc_int3 at an address whose bytes
 * hold no INT3 (cc).
 * @param {QmpClient} qmp
 * @param {string[]} dumps `info registers -a` outputs
 * @param {import('./kernel-symbols.js').KernelSymbols | undefined} symbols
 */
async function codeAtInstructionPointers(qmp, dumps, symbols) {
  /** @type {Map<string, { name: string, rip: bigint, cpl: number }>} */
  const seen = new Map();
  for (const cpu of dumps.flatMap((dump) => parseRegisterDump(dump))) seen.set(`${cpu.name} ${cpu.rip}`, cpu);
  const lines = [];
  for (const cpu of seen.values()) {
    const bytes = await qmp
      .hmp(`cpu ${cpu.name.slice('CPU#'.length)}`)
      .then(() => qmp.hmp(`x/${CODE_BYTES}xb 0x${cpu.rip.toString(16)}`))
      .then((text) => hexBytesOf(text), (e) => `(not read: ${errorText(e)})`);
    lines.push(`${cpu.name} ${cpu.rip.toString(16).padStart(16, '0')} ${whereIs(cpu, symbols)}: ${bytes}`);
  }
  return lines.length ? lines.join('\n') : '(no registers could be read)';
}

/**
 * The bytes of an HMP `x/Nxb` answer ("ffffffff81a5267b: 0x0f 0x1f ..."), as "0f 1f ...".
 * @param {string} text
 */
export function hexBytesOf(text) {
  const bytes = [...text.matchAll(/\b0x([0-9a-f]{2})\b/gi)].map((m) => m[1]?.toLowerCase());
  return bytes.length ? bytes.join(' ') : `(unreadable: ${text.trim() || 'no answer'})`;
}

/**
 * The fields of `info registers -a` the report uses, per CPU.
 * @param {string} dump
 * @returns {{ name: string, rip: bigint, cpl: number, interruptsOn: boolean, halted: boolean }[]}
 */
export function parseRegisterDump(dump) {
  const cpus = [];
  for (const block of dump.split(/^(?=CPU#\d+)/m)) {
    const name = /^CPU#\d+/.exec(block)?.[0];
    const rip = /\bRIP=([0-9a-f]+)/.exec(block)?.[1];
    const rflags = /\bRFL=([0-9a-f]+)/.exec(block)?.[1];
    const cpl = /\bCPL=(\d)/.exec(block)?.[1];
    if (!name || !rip || !rflags || !cpl) continue;
    cpus.push({
      name,
      rip: BigInt(`0x${rip}`),
      cpl: Number(cpl),
      interruptsOn: (parseInt(rflags, 16) & 0x200) !== 0,
      halted: /\bHLT=1\b/.test(block),
    });
  }
  return cpus;
}

/**
 * QEMU's threads as the host sees them: name, state and CPU ticks so far.
 * @param {number | undefined} pid
 * @returns {Map<string, { name: string, state: string, ticks: number }>}
 */
function qemuThreads(pid) {
  /** @type {Map<string, { name: string, state: string, ticks: number }>} */
  const threads = new Map();
  if (pid === undefined) return threads;
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After "pid (comm) ": state is field 0, utime 11, stime 12.
      threads.set(tid, { name, state: fields[0] ?? '?', ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

/**
 * @param {ReturnType<typeof qemuThreads>} before
 * @param {ReturnType<typeof qemuThreads>} after
 * @param {number} elapsedMs
 */
function describeThreads(before, after, elapsedMs) {
  if (after.size === 0) return '(QEMU is gone)';
  return [...after]
    .map(([tid, t]) => {
      const used = t.ticks - (before.get(tid)?.ticks ?? t.ticks);
      const pct = (100 * used) / CLOCK_TICKS_PER_S / (elapsedMs / 1000);
      return { line: `  ${t.name.padEnd(16)} tid ${tid.padStart(7)}  state ${t.state}  ${pct.toFixed(0).padStart(3)}% CPU`, pct };
    })
    .sort((a, b) => b.pct - a.pct)
    .map((t) => t.line)
    .join('\n');
}

/** @param {unknown} e */
function errorText(e) {
  return e instanceof Error ? e.message : String(e);
}
