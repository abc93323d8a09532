/** The watchdog's rules on L1's heartbeat, fed lines in the format l1-init.sh writes. */
import { describe, expect, it } from 'vitest';
import { L1Watchdog, parseHeartbeat } from './l1-heartbeat.js';

/** A heartbeat line as L1 writes it: /proc/stat's ten per-CPU fields, then CR LF (a tty's). */
function line(uptime: number, cpus: { user: number; system: number; idle: number }[]): string {
  const fields = cpus.map((c, i) => `cpu${i} ${c.user} 0 ${c.system} ${c.idle} 0 0 0 0 0 0`).join(' ');
  return `nested-kvm-heartbeat ${uptime.toFixed(2)} ${fields}\r\n`;
}

describe('parseHeartbeat', () => {
  it('reads the uptime and each CPU\'s times from a line with /proc/stat\'s ten fields per CPU', () => {
    const beat = parseHeartbeat('nested-kvm-heartbeat 9.41 cpu0 18 1 441 93 2 3 33 0 0 0 cpu1 18 0 228 210 0 0 48 0 0 0', 7);
    expect(beat).toEqual({
      atMs: 7,
      uptimeS: 9.41,
      cpus: [
        { user: 18, nice: 1, system: 441, idle: 93, iowait: 2, irq: 3, softirq: 33 },
        { user: 18, nice: 0, system: 228, idle: 210, iowait: 0, irq: 0, softirq: 48 },
      ],
    });
  });

  it.each([
    'a kernel log line',
    'nested-kvm-heartbeat',
    'nested-kvm-heartbeat x cpu0 1 2 3 4 5 6 7',
    'nested-kvm-heartbeat 1.0 cpu0 1 2 3', // cut short (a line torn by the kill)
    'nested-kvm-heartbeat 1.0 cpu0 1 2 3 4 5 6 -7',
  ])('ignores %j', (text) => {
    expect(parseHeartbeat(text, 0)).toBeUndefined();
  });
});

describe('L1Watchdog', () => {
  const busy = (n: number) => [{ user: 100 * n, system: 10 * n, idle: 5 * n }, { user: 90 * n, system: 5 * n, idle: 20 * n }];

  it('counts the bound from its start until the first heartbeat', () => {
    const dog = new L1Watchdog({ boundMs: 60_000, idleBoundMs: 0, startedAtMs: 1000 });
    expect(dog.stallReason(61_000)).toBeUndefined();
    expect(dog.stallReason(61_001)).toBe('no heartbeat from L1 since the command started');
  });

  it('calls L1 stalled once no heartbeat came for the bound, and names the last one', () => {
    const dog = new L1Watchdog({ boundMs: 60_000, idleBoundMs: 0, startedAtMs: 0 });
    for (let s = 0; s <= 100; s += 5) dog.push(Buffer.from(line(s + 10, busy(s))), s * 1000);
    expect(dog.stallReason(160_000)).toBeUndefined();
    expect(dog.stallReason(161_000)).toBe('no heartbeat from L1 since the last one 61 s ago (L1 uptime then 110 s)');
  });

  it('takes a heartbeat split across reads', () => {
    const dog = new L1Watchdog({ boundMs: 10_000, idleBoundMs: 0, startedAtMs: 0 });
    const text = line(3, busy(1));
    dog.push(Buffer.from(text.slice(0, 20)), 5000);
    expect(dog.stallReason(10_001)).toMatch(/since the command started/);
    dog.push(Buffer.from(text.slice(20)), 9000);
    expect(dog.stallReason(10_001)).toBeUndefined();
  });

  it('with an idle bound, calls L1 stalled when its CPUs stayed idle that long, not before', () => {
    const dog = new L1Watchdog({ boundMs: 60_000, idleBoundMs: 30_000, startedAtMs: 0 });
    // Busy for 20 s, then only idle ticks advance.
    for (let s = 0; s <= 20; s += 5) dog.push(Buffer.from(line(s, busy(s))), s * 1000);
    const at20 = busy(20);
    for (let s = 25; s <= 70; s += 5) {
      const idleOnly = at20.map((c) => ({ ...c, idle: c.idle + 100 * (s - 20) }));
      dog.push(Buffer.from(line(s, idleOnly)), s * 1000);
      if (s < 50) expect(dog.stallReason(s * 1000), `at ${s} s`).toBeUndefined();
    }
    expect(dog.stallReason(70_000)).toMatch(/^L1's CPUs were 100\.0% idle for \d+ s while the command ran/);
  });

  it('without an idle bound, an idle L1 that beats is never stalled', () => {
    const dog = new L1Watchdog({ boundMs: 30_000, idleBoundMs: 0, startedAtMs: 0 });
    for (let s = 0; s <= 300; s += 5) dog.push(Buffer.from(line(s, [{ user: 1, system: 1, idle: 100 * s }])), s * 1000);
    expect(dog.stallReason(300_000)).toBeUndefined();
  });

  it('describes how each CPU spent the time between the heartbeats it kept', () => {
    const dog = new L1Watchdog({ boundMs: 60_000, idleBoundMs: 0, startedAtMs: 0 });
    dog.push(Buffer.from(line(10, [{ user: 0, system: 0, idle: 0 }])), 0);
    dog.push(Buffer.from(line(20, [{ user: 250, system: 700, idle: 50 }])), 10_000);
    expect(dog.describe()).toBe([
      '2 heartbeats kept; the last at L1 uptime 20.0 s',
      'CPU time between L1 uptime 10.0 s and 20.0 s:',
      '  cpu0: user 25%, system 70%, irq 0%, idle 5%',
    ].join('\n'));
  });
});
