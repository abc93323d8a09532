/**
 * One fuzz target in a worker thread (started by run-ts.mjs): fast-check drives the
 * target's `run` with inputs that are mostly mutations of the corpus (bit flips,
 * interesting integers, dictionary tokens, inserts, deletes, splices between corpus
 * files) and partly
 * random bytes, for a set time. Before each run the input is copied into shared
 * memory with a run counter, so the parent can name the input of a hang or of an
 * out-of-memory death. Any throw from `run` is a crash (targets swallow their
 * parser's expected refusals themselves), and so is RSS growing past a bound.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';

const { modulePath, seconds, seeds, shared, seed, rssLimitBytes, maxInputBytes } = workerData;
const target = (await import(pathToFileURL(modulePath).href)).default;
const counters = new Int32Array(shared, 0, 2); // [runs, length of the current input]
const current = new Uint8Array(shared, 8);

function publish(bytes) {
  const n = Math.min(bytes.length, current.length);
  current.set(bytes.subarray(0, n));
  Atomics.store(counters, 1, n);
  Atomics.add(counters, 0, 1);
}

const corpus = seeds.map((s) => new Uint8Array(s));
const interestingBytes = [0x00, 0x01, 0x20, 0x2f, 0x30, 0x3a, 0x40, 0x7f, 0x80, 0xfe, 0xff];
// Tokens worth splicing into text formats (a libFuzzer-style dictionary): JavaScript's
// prototype keys (a lookup in a plain object finds them), JSON edge values, separators.
const tokens = [
  'constructor', '__proto__', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  'sha256:', 'sha512:', '@', ':', '/', '..', '\\', '"', ',', '=', ' ', '\u0000', '\uffff',
  '{}', '[]', 'null', 'true', '-1', '1e309', '9007199254740993', '"a":', '{"__proto__":{}}',
].map((t) => new TextEncoder().encode(t));
const interestingInts = [0, 1, -1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 53 - 1, 2 ** 63, 2 ** 64 - 1];

/** Applies one mutation; positions wrap around the input's length. */
function mutate(bytes, m) {
  const at = bytes.length === 0 ? 0 : m.at % (bytes.length + (m.op === 'insert' ? 1 : 0));
  switch (m.op) {
    case 'flip':
      if (bytes.length) bytes[at] ^= 1 << m.bit;
      return bytes;
    case 'set':
      if (bytes.length) bytes[at] = m.value;
      return bytes;
    case 'int': {
      const v = BigInt.asUintN(64, BigInt(m.value));
      for (let i = 0; i < m.width && at + i < bytes.length; i++) bytes[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
      return bytes;
    }
    case 'insert':
      return concat(bytes.subarray(0, at), m.bytes, bytes.subarray(at));
    case 'delete':
      return concat(bytes.subarray(0, at), bytes.subarray(at + m.length));
    case 'splice': {
      const donor = corpus[m.donor % corpus.length] ?? new Uint8Array();
      const from = donor.length ? m.from % donor.length : 0;
      return concat(bytes.subarray(0, at), donor.subarray(from, from + m.length), bytes.subarray(at + m.length));
    }
    case 'token': {
      const token = tokens[m.token % tokens.length];
      return m.overwrite ? concat(bytes.subarray(0, at), token, bytes.subarray(at + token.length)) : concat(bytes.subarray(0, at), token, bytes.subarray(at));
    }
    case 'truncate':
      return bytes.subarray(0, at);
  }
  return bytes;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const position = fc.nat({ max: 1 << 20 });
const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip'), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set'), at: position, value: fc.oneof(fc.constantFrom(...interestingBytes), fc.nat({ max: 255 })) }),
  fc.record({ op: fc.constant('int'), at: position, value: fc.constantFrom(...interestingInts), width: fc.constantFrom(1, 2, 4, 8) }),
  fc.record({ op: fc.constant('insert'), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ op: fc.constant('delete'), at: position, length: fc.nat({ max: 512 }) }),
  fc.record({ op: fc.constant('splice'), at: position, donor: fc.nat(), from: fc.nat(), length: fc.nat({ max: 1024 }) }),
  fc.record({ op: fc.constant('truncate'), at: position }),
  fc.record({ op: fc.constant('token'), at: position, token: fc.nat(), overwrite: fc.boolean() }),
);
const mutated = fc
  .tuple(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 8 }))
  .map(([pick, ms]) => ms.reduce(mutate, Uint8Array.from(corpus[pick % corpus.length])).subarray(0, maxInputBytes));
const input = corpus.length
  ? fc.oneof({ arbitrary: mutated, weight: 8 }, { arbitrary: fc.uint8Array({ maxLength: 4096 }), weight: 1 })
  : fc.uint8Array({ maxLength: 4096 });

// A promise the target let fail unobserved is a crash of the input that caused it:
// collected here and thrown after the run (one tick later, when Node reports it).
let unhandled;
process.on('unhandledRejection', (e) => {
  unhandled ??= e;
});

const property = fc.asyncProperty(input, async (bytes) => {
  publish(bytes);
  await target.run(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  await new Promise((resolve) => setImmediate(resolve));
  if (unhandled !== undefined) {
    const e = unhandled;
    unhandled = undefined;
    throw new Error(`unhandled rejection: ${e?.stack ?? e}`);
  }
  const rss = process.memoryUsage.rss();
  if (rss > rssLimitBytes) throw new Error(`unbounded allocation: RSS reached ${rss} bytes (bound ${rssLimitBytes})`);
});

const started = Date.now();
const details = await fc.check(property, {
  numRuns: Number.MAX_SAFE_INTEGER,
  interruptAfterTimeLimit: seconds * 1000,
  markInterruptAsFailure: false,
  seed,
  // The corpus itself runs first, unchanged.
  examples: corpus.map((c) => [c]),
});
parentPort.postMessage({
  failed: details.failed,
  runs: details.numRuns,
  ms: Date.now() - started,
  input: details.failed && details.counterexample ? Array.from(details.counterexample[0]) : undefined,
  error: details.failed ? String(details.errorInstance?.stack ?? details.errorInstance ?? details.error) : undefined,
});
