/**
 * LiveCommand.whileRunning: a wait on what a running command should do ends as soon
 * as the command does, instead of running out its bound (a foreground `vmrun run`
 * whose guest crashed once cost volumes.test.ts its whole 240 s).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { eventually, LiveCommand } from './vm-env.js';

const spawnSh = (script: string): LiveCommand => new LiveCommand(spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }));

describe('LiveCommand.whileRunning', () => {
  it('fails the wait at once when the command ends first, naming its exit status', async () => {
    const command = spawnSh('echo gone >&2; exit 3');
    const started = Date.now();
    await expect(eventually(command.whileRunning(async () => undefined), 'never', 60_000)).rejects.toThrow('the command ended first (exit status 3)');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(command.stderr).toBe('gone\n');
  });

  it('returns what the check found, even if the command ended after it held', async () => {
    const command = spawnSh('echo ready');
    await command.exited;
    const found = await eventually(command.whileRunning(async () => (command.stdout.includes('ready') ? 'seen' : undefined)), 'ready', 10_000);
    expect(found).toBe('seen');
  });

  it('keeps waiting while the command runs', async () => {
    const command = spawnSh('sleep 1; echo late');
    const found = await eventually(command.whileRunning(async () => (command.stdout.includes('late') ? true : undefined)), 'late', 30_000);
    expect(found).toBe(true);
    expect(await command.waitExit(10_000)).toBe(0);
  });
});
