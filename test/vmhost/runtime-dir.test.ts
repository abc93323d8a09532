import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRuntimeDir, runtimeDirPath } from '../../src/vmhost/runtime-dir.js';
import { vmrun } from '../helpers/cli.js';

const scratch = mkdtempSync(join(tmpdir(), 'vmrt-dir-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the per-user runtime directory', () => {
  it('is VMRUN_RUNTIME_DIR, else $XDG_RUNTIME_DIR/vmrun (absolute only), else /tmp/vmrun-UID', () => {
    expect(runtimeDirPath({ VMRUN_RUNTIME_DIR: '/x/y', XDG_RUNTIME_DIR: '/run/user/0' })).toBe('/x/y');
    expect(runtimeDirPath({ XDG_RUNTIME_DIR: '/run/user/0' })).toBe('/run/user/0/vmrun');
    expect(runtimeDirPath({ XDG_RUNTIME_DIR: 'relative' })).toBe(join(tmpdir(), `vmrun-${process.getuid!()}`));
  });

  it('is created 0700 (parents too) whatever the umask', async () => {
    const dir = join(scratch, 'new', 'deeper');
    const old = process.umask(0o000);
    try {
      await ensureRuntimeDir({ VMRUN_RUNTIME_DIR: dir });
    } finally {
      process.umask(old);
    }
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refuses an existing directory open to others, without changing its permissions', async () => {
    const open = join(scratch, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    const r = await vmrun(['ps'], { env: { VMRUN_RUNTIME_DIR: open } });
    expect(r).toMatchObject({ status: 125, stderr: `vmrun: the runtime directory ${open} is open to other users (mode 755): use a private directory (chmod 700)\n` });
    expect(statSync(open).mode & 0o777).toBe(0o755);
  });

  it('refuses a symlink or a file in its place', async () => {
    const target = mkdtempSync(join(scratch, 'target-'));
    const link = join(scratch, 'link');
    symlinkSync(target, link);
    await expect(ensureRuntimeDir({ VMRUN_RUNTIME_DIR: link })).rejects.toMatchObject({ kind: 'host', message: expect.stringContaining('is not a directory') });
  });
});
