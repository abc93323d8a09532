// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLayer, writeOciLayout } from '../oci/image-builder.js';
import { REPO, linesWith, vmrun } from '../helpers/cli.js';

// A Hermit application shipped as an OCI image: its entrypoint is a Hermit kernel
// (fixtures/hermit), which `vmrun run` boots directly, with docker's rules deciding
// the application's arguments and environment. The fixture runs on this host's KVM.

const work = mkdtempSync(join(tmpdir(), 'vmrun-hermit-image-'));
const env = { VMRUN_HOME: join(work, 'home'), VMRUN_CACHE: join(work, 'cache') };
const config = { Entrypoint: ['/app/hello'], Cmd: ['default-arg'], Env: ['GREETING=from the image'] };
let ref: string;

beforeAll(async () => {
  execFileSync('make', ['-s', '-C', join(REPO, 'fixtures', 'hermit')]);
  const kernel = readFileSync(join(REPO, 'fixtures', 'hermit', 'out', 'uhyve-v2.elf'));
  const layers = [await buildLayer([{ name: 'app/', type: 'directory' }, { name: 'app/hello', content: kernel, mode: 0o755 }])];
  await writeOciLayout(join(work, 'layout'), { v1: { layers, config } });
  ref = `oci:${join(work, 'layout')}:v1`;
}, 60_000);

/** The application's bootargs as the kernel received them (its `fdt: bootargs=` line). */
const bootargs = (out: string) => linesWith(out, 'fdt: bootargs=')[0] ?? '';

describe('vmrun run: an image whose entrypoint is a Hermit kernel', () => {
  it('boots the kernel with the command-line arguments and exits with its code', async () => {
    const r = await vmrun(['run', '-q', '-m', '64M', ref, 'one', 'two words', 'exit=7'], { env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('hermit: uhyve-v2\n');
    expect(bootargs(r.stdout)).toMatch(/ -- one 'two words' exit=7$/);
    expect(r.status).toBe(7);
  });

  it("uses the image's Cmd and Env by default, and -e overrides Env", async () => {
    const plain = await vmrun(['run', '-q', '-m', '64M', ref], { env });
    expect(bootargs(plain.stdout)).toContain(`env=GREETING='${config.Env[0]!.split('=')[1]}'`);
    expect(bootargs(plain.stdout)).toMatch(new RegExp(` -- ${config.Cmd[0]}$`));
    const overridden = await vmrun(['run', '-q', '-m', '64M', '-e', 'GREETING=hi', ref], { env });
    expect(bootargs(overridden.stdout)).toContain('env=GREETING=hi');
    expect(bootargs(overridden.stdout)).not.toContain('from the image');
  });
});
