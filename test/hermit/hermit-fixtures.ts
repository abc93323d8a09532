/**
 * Shared set-up for the Hermit tests: the test kernels of fixtures/hermit (built
 * with make, incrementally) and a host directory tree to map into the guest.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';

/** Where `make -C fixtures/hermit` puts the kernels. */
export const HERMIT_KERNELS = join(REPO, 'fixtures', 'hermit', 'out');

/** Path of a built test kernel ("uhyve-v2" -> .../out/uhyve-v2.elf). */
export function hermitKernel(name: string): string {
  return join(HERMIT_KERNELS, `${name}.elf`);
}

/** Builds the test kernels (a no-op when they are up to date); throws with make's output on failure. */
export function buildHermitKernels(): void {
  execFileSync('make', ['-s', '-C', join(REPO, 'fixtures', 'hermit')], { stdio: 'pipe', timeout: 120_000 });
}

/** A host tree for --file-mapping ROOT/data:/data, with ways out of it the guest must not find. */
export interface MappedTree {
  root: string;
  data: string;
  outside: string;
  /** TMPDIR for vmrun: where its private directory for guest-created files goes. */
  tmp: string;
}

/** Creates data/input.txt, data/link -> ../outside, data/abs-link -> /etc, outside/secret.txt. */
export function makeMappedTree(): MappedTree {
  const root = mkdtempSync(join(tmpdir(), 'vmrun-hermit-test-'));
  const tree = { root, data: join(root, 'data'), outside: join(root, 'outside'), tmp: join(root, 'tmp') };
  for (const dir of [tree.data, tree.outside, tree.tmp]) mkdirSync(dir);
  writeFileSync(join(tree.data, 'input.txt'), 'hello from the host\n');
  writeFileSync(join(tree.outside, 'secret.txt'), 'secret\n');
  symlinkSync('../outside', join(tree.data, 'link'));
  symlinkSync('/etc', join(tree.data, 'abs-link'));
  return tree;
}

/**
 * Everything fixtures/hermit/uhyve-test prints after the boot-info lines, for
 * interface version `v`, with /data mapped, env FOO=bar and "GREETING=hello world",
 * and app args: one, "two words", exit=7.
 */
export function expectedUhyveTestTail(v: 1 | 2, kernelName: string, kernelFile: string): string[] {
  const commandLine =
    v === 1
      ? [
          `cmdline: argc=4 argv0=${kernelFile}`,
          'cmdline: argv[1]=one',
          'cmdline: argv[2]=two words',
          'cmdline: argv[3]=exit=7',
          'cmdline: env=FOO=bar',
          'cmdline: env=GREETING=hello world',
          // Padded with empty entries to 128: old kernels rely on the slot after the last one being zero.
          'cmdline: envc=128 empty=126',
        ]
      : ['cmdline: from bootargs'];
  return [
    'fdt: mounts=/data',
    "fdt: bootargs=env=FOO=bar env=GREETING='hello world' -- one 'two words' exit=7",
    ...commandLine,
    'paging: cr3=0x10000 recursive=yes',
    // Without a GNU note naming Hermit >= 0.10 (the v1 kernel has none) uhyve maps the kernel's whole GiB.
    `paging: first-gib-fully-mapped=${v === 1 ? 'yes' : 'no'}`,
    ...(v === 1 ? ['virtual-write: through an alias mapping'] : []),
    'console-bytes: one hypercall per byte',
    'console-write: to fd 2',
    'console-write: returned 23',
    'input: open=fd',
    'input: read=20 text=hello from the host',
    'input: lseek-set=6',
    'input: after-seek=from',
    'input: lseek-end=20',
    ...(v === 1 ? ['input: read-via-alias=hello'] : []),
    'input: close=0',
    `output: write=${`written by ${kernelName}\n`.length} close=0`,
    'escape: dotdot=-2',
    'escape: symlink=-18',
    'escape: absolute-symlink=-18',
    'escape: unmapped=-2',
    'escape: create-through-symlink=-18',
    'scratch: create=fd write=12 close=0',
    'scratch: read-back=scratch data',
    'scratch: unlink=0 reopen=-2',
    'bad-pointer: read=-14',
    'bad-pointer: read-past-ram-end=-14',
    'bad-pointer: write=-14',
    'bad-pointer: open=-14',
    'bad-fd: read=-9 close=-9 lseek=-9',
    'bad-pointer: console-buffer ignored',
    'hermit: exit 7',
  ];
}
