// @ts-check
/**
 * L1's heartbeat and the watchdog on it. While the command runs, l1-init.sh writes a
 * line every HEARTBEAT_INTERVAL_S seconds to L1's second serial port (a file the host
 * follows): L1's uptime and each CPU's time counters from /proc/stat. It is written by
 * a busybox loop outside the command, with shell built-ins only, on a path that does
 * not touch 9p, so it stops only when L1's user space gets no time at all.
 *
 * The watchdog calls L1 stalled when
 *   - no heartbeat arrived for `boundMs` of host time (L1's kernel or its scheduler
 *     is wedged, or QEMU's vCPUs do not run it), or, when `idleBoundMs` is set,
 *   - heartbeats arrived but L1's CPUs were idle (under 1% busy) for `idleBoundMs`:
 *     the command waits for something that never comes, e.g. a 9p reply. Off by
 *     default (a command may sleep); the e2e runner sets it, as no e2e test idles
 *     L1 for minutes.
 */

/** Seconds between heartbeats; passed to L1 on its kernel command line. */
export const HEARTBEAT_INTERVAL_S = 5;

/** Busy share of all CPU time under which a whole bound counts as "idle". */
const IDLE_BUSY_FRACTION = 0.01;

const HEARTBEAT_PREFIX = 'nested-kvm-heartbeat ';

/** /proc/stat's per-CPU fields, in order (USER_HZ ticks). */
const CPU_FIELDS = /** @type {const} */ (['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq']);

/**
 * One CPU's cumulative times.
 * @typedef {Record<typeof CPU_FIELDS[number], number>} CpuTimes
 */

/**
 * One heartbeat: when it arrived (host ms), L1's uptime, and each CPU's times.
 * @typedef {{ atMs: number, uptimeS: number, cpus: CpuTimes[] }} Heartbeat
 */

/**
 * Parses a heartbeat line: "nested-kvm-heartbeat UPTIME cpu0 U N S I W Q SQ ... cpu1 ...",
 * each CPU's numbers as /proc/stat has them (the fields after softirq are ignored).
 * @param {string} line
 * @param {number} atMs
 * @returns {Heartbeat | undefined}
 */
export function parseHeartbeat(line, atMs) {
  const at = line.indexOf(HEARTBEAT_PREFIX);
  if (at < 0) return undefined;
  const [uptime, ...rest] = line.slice(at + HEARTBEAT_PREFIX.length).trim().split(/\s+/);
  const uptimeS = Number(uptime);
  if (!Number.isFinite(uptimeS)) return undefined;
  /** @type {number[][]} */
  const perCpu = [];
  for (const word of rest) {
    if (/^cpu\d+$/.test(word)) perCpu.push([]);
    else if (/^\d+$/.test(word) && perCpu.length) perCpu[perCpu.length - 1]?.push(Number(word));
    else return undefined;
  }
  if (perCpu.length === 0 || perCpu.some((values) => values.length < CPU_FIELDS.length)) return undefined;
  const cpus = perCpu.map((values) => /** @type {CpuTimes} */ (Object.fromEntries(CPU_FIELDS.map((f, i) => [f, values[i]]))));
  return { atMs, uptimeS, cpus };
}

/** @param {CpuTimes} t */
const total = (t) => CPU_FIELDS.reduce((sum, f) => sum + t[f], 0);
/** @param {CpuTimes} t */
const idle = (t) => t.idle + t.iowait;

/** Watches the heartbeat; `stallReason(now)` says whether (and why) L1 is stalled. */
export class L1Watchdog {
  /** @param {{ boundMs: number, idleBoundMs: number, startedAtMs: number }} options */
  constructor({ boundMs, idleBoundMs, startedAtMs }) {
    this.boundMs = boundMs;
    this.idleBoundMs = idleBoundMs;
    this.startedAtMs = startedAtMs;
    /** @type {Heartbeat[]} the beats of the last two bounds (enough for every check and report) */
    this.beats = [];
    this.partial = '';
  }

  /** Takes bytes from the heartbeat port. @param {Buffer} chunk @param {number} atMs */
  push(chunk, atMs) {
    const lines = (this.partial + chunk.toString('latin1')).split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const beat = parseHeartbeat(line, atMs);
      if (beat) this.beat(beat);
    }
  }

  /** @param {Heartbeat} beat */
  beat(beat) {
    this.beats.push(beat);
    const keepMs = 2 * Math.max(this.boundMs, this.idleBoundMs);
    while (this.beats.length > 2 && beat.atMs - /** @type {Heartbeat} */ (this.beats[1]).atMs > keepMs) this.beats.shift();
  }

  /**
   * Why L1 counts as stalled at host time `nowMs`, or undefined while it progresses.
   * @param {number} nowMs
   */
  stallReason(nowMs) {
    const last = this.beats[this.beats.length - 1];
    const lastAt = last?.atMs ?? this.startedAtMs;
    if (nowMs - lastAt > this.boundMs) {
      const since = last ? `since the last one ${seconds(nowMs - lastAt)} ago (L1 uptime then ${last.uptimeS.toFixed(0)} s)` : 'since the command started';
      return `no heartbeat from L1 ${since}`;
    }
    if (!this.idleBoundMs) return undefined;
    // Idle all along: from the newest beat at least idleBoundMs before the last one.
    const first = [...this.beats].reverse().find((b) => last && last.atMs - b.atMs >= this.idleBoundMs);
    if (!first || !last) return undefined;
    const busy = busyFraction(first, last);
    if (busy !== undefined && busy < IDLE_BUSY_FRACTION) {
      return `L1's CPUs were ${(100 * (1 - busy)).toFixed(1)}% idle for ${seconds(last.atMs - first.atMs)} while the command ran (it waits for something that does not come)`;
    }
    return undefined;
  }

  /** A few lines on the last heartbeats, for a stall report. */
  describe() {
    const last = this.beats[this.beats.length - 1];
    if (!last) return 'no heartbeat was received';
    const lines = [`${this.beats.length} heartbeats kept; the last at L1 uptime ${last.uptimeS.toFixed(1)} s`];
    const first = this.beats[0];
    if (first && first !== last) {
      lines.push(`CPU time between L1 uptime ${first.uptimeS.toFixed(1)} s and ${last.uptimeS.toFixed(1)} s:`);
      last.cpus.forEach((now, i) => {
        const then = first.cpus[i];
        if (!then) return;
        const spent = total(now) - total(then) || 1;
        const pct = (/** @type {number} */ ticks) => `${((100 * ticks) / spent).toFixed(0)}%`;
        lines.push(`  cpu${i}: user ${pct(now.user + now.nice - then.user - then.nice)}, system ${pct(now.system - then.system)}, ` +
          `irq ${pct(now.irq + now.softirq - then.irq - then.softirq)}, idle ${pct(idle(now) - idle(then))}`);
      });
    }
    return lines.join('\n');
  }
}

/**
 * The busy share of all CPUs' time between two beats, or undefined if no time passed.
 * @param {Heartbeat} from
 * @param {Heartbeat} to
 */
function busyFraction(from, to) {
  let spent = 0;
  let idleTicks = 0;
  to.cpus.forEach((now, i) => {
    const then = from.cpus[i];
    if (!then) return;
    spent += total(now) - total(then);
    idleTicks += idle(now) - idle(then);
  });
  return spent > 0 ? (spent - idleTicks) / spent : undefined;
}

/** @param {number} ms */
function seconds(ms) {
  return `${(ms / 1000).toFixed(0)} s`;
}
