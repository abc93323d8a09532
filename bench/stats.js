// Small statistics helpers shared by the benchmarks.

/** Median of a list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `fn` (async) n times after `warmup` runs; returns the durations in ms. */
export async function timeRuns(n, fn, warmup = 2) {
  for (let i = 0; i < warmup; i++) await fn();
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

/** Prints one result line: { bench, metric, value, unit, anchor?, ratio? }. */
export function report(fields) {
  console.log(JSON.stringify(fields));
}

export const round = (x, digits = 3) => Number(x.toFixed(digits));
