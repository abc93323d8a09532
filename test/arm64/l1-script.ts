/**
 * The arm64 CLI tests run a shell script of vmrun commands in one aarch64 L1 (a
 * command costs Node's start there, 20-35 s under TCG, so one L1 runs them all) and
 * read what it printed afterwards. Each step of the script prints its exit status and
 * L1's uptime around it on stdout, after whatever it wrote there, and its stderr framed
 * on the run's stderr, so the tests can tell the steps' output apart.
 */

/** A script step: `command`, its stderr kept in `errDir` until framed. */
export function scriptStep(label: string, command: string, errDir: string): string {
  const err = `${errDir}/${label}.err`;
  return (
    `read t0 _ </proc/uptime; ${command} 2>${err}; s=$?; read t1 _ </proc/uptime; ` +
    `{ echo "stderr-${label}-begin"; cat ${err}; echo "stderr-${label}-end"; } >&2; echo; echo "status-${label} $s seconds $t0 $t1"`
  );
}

/** How a step ended: its exit status and L1's uptime (s) when it started and ended. */
export interface StepStatus {
  code: number;
  seconds: number;
  startS: number;
  endS: number;
}

/** What a script of steps printed: `out` its stdout (without the console's CRs), `stderr` the run's stderr. */
export class ScriptOutput {
  constructor(
    readonly out: string,
    readonly stderr: string,
  ) {}

  /** How step `label` ended, or undefined if it never did. */
  status(label: string): StepStatus | undefined {
    const m = new RegExp(`^status-${label} (\\d+) seconds ([\\d.]+) ([\\d.]+)$`, 'm').exec(this.out);
    return m ? { code: Number(m[1]), seconds: Number(m[3]) - Number(m[2]), startS: Number(m[2]), endS: Number(m[3]) } : undefined;
  }

  /** What step `label` wrote to stdout: after the status line of `after` (or from the start) to its own. */
  stdoutOf(label: string, after?: string): string {
    const previous = after ? new RegExp(`^status-${after} .*\n`, 'm').exec(this.out) : undefined;
    const start = previous ? previous.index + previous[0].length : 0;
    return this.out.slice(start, this.out.search(new RegExp(`^status-${label} `, 'm')));
  }

  /** One line per step for the test's log: how it ended and how long it took in L1 (a CLI step's includes Node's start). */
  timings(labels: string[]): string[] {
    return labels.map((label) => {
      const s = this.status(label);
      return s ? `step ${label}: status ${s.code}, ${s.seconds.toFixed(1)} s in L1` : `step ${label}: no status`;
    });
  }

  /** What step `label` wrote to stderr. */
  stderrOf(label: string): string {
    const m = new RegExp(`stderr-${label}-begin\\n([\\s\\S]*?)stderr-${label}-end`).exec(this.stderr);
    return m?.[1] ?? '';
  }
}
