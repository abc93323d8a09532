// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';

const collect = async (m: Machine): Promise<string> => {
  let out = '';
  for await (const chunk of m.output) out += chunk.toString();
  return out;
};
const fdCount = () => readdirSync('/proc/self/fd').length;
const threadCount = () => readdirSync('/proc/self/task').length;

describe('library: Machine', () => {
  it('streams console output and resolves wait() with the exit', async () => {
    const m = Machine.boot({ kernel: join(GUESTS, 'hello.elf'), memory: '32M', cmdline: 'from-the-library' });
    expect(m.kernelFormat).toBe('linux-elf');
    const [out, exit] = await Promise.all([collect(m), m.wait()]);
    expect(out).toContain('cmdline: from-the-library');
    expect(exit).toMatchObject({ reason: 'reset', exitCode: 0, message: '' });
  });

  it('pause parks the guest (no output while paused), resume continues, stop ends it', async () => {
    const m = Machine.boot({ kernel: join(GUESTS, 'counter.elf'), memory: '64M', cmdline: 'period=2000000 limit=100000' });
    let out = '';
    m.output.on('data', (d: Buffer) => (out += d.toString()));
    const until = async (re: RegExp) => {
      for (let i = 0; i < 400 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 25));
      expect(out).toMatch(re);
    };
    await until(/count 3\n/);
    await m.pause();
    const atPause = out.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(out.length).toBe(atPause);
    m.resume();
    // The last complete line (a pause can fall between a line's bytes).
    const lastBefore = Math.max(...[...out.matchAll(/count (\d+)\n/g)].map((m) => Number(m[1])));
    await until(new RegExp(`count ${lastBefore + 2}\\n`));
    m.stop();
    const exit = await m.wait();
    expect(exit.reason).toBe('killed');
    expect(exit.exitCode).toBe(137);
    // The sequence has no gap and no repeat across the pause.
    const counts = [...out.matchAll(/count (\d+)\n/g)].map((m) => Number(m[1]));
    expect(counts).toEqual(counts.map((_, i) => i + 1));
  });

  it('two machines run side by side', async () => {
    const a = Machine.boot({ kernel: join(GUESTS, 'hello.elf'), memory: '32M', cmdline: 'machine=a' });
    const b = Machine.boot({ kernel: join(GUESTS, 'hello.bzImage'), memory: '32M', cmdline: 'machine=b' });
    const [oa, ob] = await Promise.all([collect(a), collect(b), a.wait(), b.wait()]);
    expect(oa).toContain('cmdline: machine=a');
    expect(ob).toContain('cmdline: machine=b');
  });

  it('leaks no file descriptors or threads after many boots', async () => {
    // Warm up once so lazily created process-wide resources are not counted.
    await Machine.boot({ kernel: join(GUESTS, 'hello.elf'), memory: '32M' }).wait();
    const fds = fdCount();
    const threads = threadCount();
    for (let i = 0; i < 5; i++) await Machine.boot({ kernel: join(GUESTS, 'hello.elf'), memory: '32M' }).wait();
    expect(fdCount()).toBe(fds);
    expect(threadCount()).toBe(threads);
  });

  it('rejects bad input with a typed error before creating a VM', () => {
    expect(() => Machine.boot({ kernel: '/nonexistent/kernel' })).toThrow(expect.objectContaining({ kind: 'not-found' }));
    expect(() => Machine.boot({ kernel: join(GUESTS, 'hello.elf'), memory: 'lots' })).toThrow(expect.objectContaining({ kind: 'usage' }));
  });
});
