// Interleaved samples for the e2e benchmarks: every contender runs once untimed (the
// page cache, a template to make), then once per round, in turn, so a change of the
// host's load in the middle of a run weighs on all of them alike.
import { round } from '../stats.js';

/**
 * Runs each of `samples` (name -> async function returning ms) once untimed, then
 * `runs` times interleaved; progress on stderr under `label`. Returns each one's times.
 * @param {Record<string, () => Promise<number>>} samples
 * @param {{ runs: number, label: string, what?: string }} o  `what`: what the ms measure (default "to first output")
 * @returns {Promise<Record<string, number[]>>}
 */
export async function interleaved(samples, o) {
  /** @type {Record<string, number[]>} */
  const times = Object.fromEntries(Object.keys(samples).map((k) => [k, []]));
  for (let i = -1; i < o.runs; i++) {
    for (const [name, sample] of Object.entries(samples)) {
      const ms = await sample();
      // Progress on stderr: a sample takes seconds to tens of seconds in the harness.
      process.stderr.write(`${o.label}: ${name} ${i < 0 ? 'warm-up' : `${i + 1}/${o.runs}`}: ${round(ms, 1)} ms ${o.what ?? 'to first output'}\n`);
      if (i >= 0) times[name].push(ms);
    }
  }
  return times;
}
