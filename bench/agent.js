#!/usr/bin/env node
// Guest agent benchmark (issue 10), with the real agent (vmrun-init --agent) serving
// a unix socket on this host, since this host's KVM cannot run a Linux userspace:
// - exec round trip: library call to the exit of `true` (AgentClient.exec), against
//   `sh -c true` spawned by Node on the same host in the same run;
// - cp throughput: copyHostToGuest of a 100 MB file (tar over the protocol, extracted
//   by the agent), against the host's `cp` of the same file.
// Run: `node bench/agent.js` after `npm run build`.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, closeSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timeRuns, report, round } from './stats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync('make', ['-s', '-C', join(root, 'guest', 'init')], { stdio: 'inherit' });
const { connectAgentUnix, copyHostToGuest } = await import(join(root, 'dist', 'index.js'));

const work = mkdtempSync(join(tmpdir(), 'vmrun-bench-agent-'));
const socket = join(work, 'agent.sock');
const agentProcess = spawn(join(root, 'guest', 'init', 'out', 'vmrun-init'), ['--agent', '--listen-unix', socket], { stdio: 'inherit' });
try {
  for (let i = 0; !existsSync(socket); i++) {
    if (i > 500) throw new Error('the agent did not start');
    await new Promise((r) => setTimeout(r, 10));
  }
  const client = await connectAgentUnix(socket);

  const execTrue = async () => {
    const p = client.exec(['true']);
    p.stdout.resume();
    p.stderr.resume();
    const exit = await p.exited;
    if (exit.exitCode !== 0) throw new Error(`true exited ${exit.exitCode}`);
  };
  const spawnTrue = () =>
    new Promise((resolve, reject) => {
      const c = spawn('sh', ['-c', 'true'], { stdio: 'ignore' });
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sh exited ${code}`))));
      c.on('error', reject);
    });
  const RUNS = 50;
  await execTrue();
  await spawnTrue();
  const agentExec = await timeRuns(RUNS, execTrue);
  const hostSpawn = await timeRuns(RUNS, spawnTrue);
  report({
    bench: 'agent',
    metric: `exec round trip: AgentClient.exec(['true']) to exit, unix socket (median of ${RUNS})`,
    value: round(median(agentExec)),
    unit: 'ms',
    anchor: { metric: "child_process.spawn('sh', ['-c', 'true']) to exit, same host", value: round(median(hostSpawn)), unit: 'ms' },
    ratio: round(median(agentExec) / median(hostSpawn)),
  });

  const file = join(work, 'payload.bin');
  const fd = openSync(file, 'w');
  for (let i = 0; i < 100; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  const agentCopy = await timeRuns(5, async () => {
    const dest = join(work, `agent-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dest);
    await copyHostToGuest(client, file, dest);
    rmSync(dest, { recursive: true });
  });
  const hostCopy = await timeRuns(5, () => {
    const dest = join(work, 'cp-copy.bin');
    execFileSync('cp', [file, dest]);
    rmSync(dest);
  });
  const mbps = (ms) => round(100 / (ms / 1000));
  report({
    bench: 'agent',
    metric: 'cp throughput: copyHostToGuest of a 100 MB file (tar over the protocol, median of 5)',
    value: mbps(median(agentCopy)),
    unit: 'MB/s',
    anchor: { metric: 'host cp of the same file', value: mbps(median(hostCopy)), unit: 'MB/s' },
    ratio: round(median(hostCopy) / median(agentCopy)),
  });
  client.close();
} finally {
  agentProcess.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
