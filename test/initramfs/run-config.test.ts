// The run configuration: what the host encodes is what vmrun-init (the real binary,
// in its --check-config host mode) parses, and each side refuses malformed input.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { encodeRunConfig, encodeRunConfigRecords, RUN_CONFIG_MAX_RECORDS, type GuestRunConfig } from '../../src/initramfs/run-config.js';
import { buildGuestInit, runGuestInit } from './guest-init-binary.js';

let init: string;
let dir: string;
beforeAll(() => {
  init = buildGuestInit();
  dir = mkdtempSync(join(tmpdir(), 'vmrun-run-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function checkConfig(bytes: Uint8Array) {
  const file = join(dir, `run-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, bytes);
  return runGuestInit(init, ['--check-config', file]);
}

/** What --check-config prints for `config`, derived from the config itself. */
function expectedListing(c: GuestRunConfig): string {
  const lines = c.workloadFromAgent ? ['workload=agent'] : [];
  lines.push(`hostname=${c.hostname}`, `workdir=${c.workdir}`, `user=${c.user}`, `tty=${c.tty ? 1 : 0}`, `interactive=${c.interactive ? 1 : 0}`, `rows=${c.rows ?? 0}`, `cols=${c.cols ?? 0}`);
  c.argv.forEach((a, i) => lines.push(`arg[${i}]=${a}`));
  c.env.forEach((e, i) => lines.push(`env[${i}]=${e}`));
  (c.groupAdd ?? []).forEach((g, i) => lines.push(`group-add[${i}]=${g}`));
  (c.volumes ?? []).forEach((v, i) => lines.push(`volume[${i}]=${v.tag}:${v.readOnly ? 'ro' : 'rw'}:${v.guestDir}`));
  if (c.network) lines.push(`net-address=${c.network.address}`, `net-gateway=${c.network.gateway}`, `net-dns=${c.network.nameserver}`);
  return lines.join('\n') + '\n';
}

const sample: GuestRunConfig = {
  argv: ['/bin/sh', '-c', 'echo "a=b c"; printf \'%s\\n\' "$@"', 'x y', '', 'ünïcode ✓'],
  env: ['PATH=/usr/bin:/bin', 'EMPTY=', 'EQUALS=a=b=c', 'MULTI=line1\nline2'],
  workdir: '/srv/app dir',
  user: 'alice:staff',
  groupAdd: ['wheel', '1234'],
  hostname: 'abc123def456',
  tty: true,
  interactive: true,
  rows: 50,
  cols: 132,
  network: { address: '10.0.2.15/24', gateway: '10.0.2.2', nameserver: '10.0.2.3' },
  volumes: [{ tag: 'vmrun0', guestDir: '/src', readOnly: false }, { tag: 'vmrun1', guestDir: '/data dir/with:colon', readOnly: true }],
};

describe('run configuration', () => {
  it('round-trips through vmrun-init exactly, odd characters included', () => {
    const r = checkConfig(encodeRunConfigRecords(sample));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(expectedListing(sample));
  });

  it('round-trips a minimal config (root, no tty, no extra groups, no network)', () => {
    const minimal: GuestRunConfig = { argv: ['true'], env: [], workdir: '/', user: '', hostname: 'h', tty: false };
    const r = checkConfig(encodeRunConfigRecords(minimal));
    expect(r.stdout).toBe(expectedListing(minimal));
  });

  it('round-trips a config whose workload comes over the agent (no command in it)', () => {
    const agentRun: GuestRunConfig = { argv: [], workloadFromAgent: true, env: [], workdir: '/', user: '', hostname: 'h', tty: false, network: sample.network };
    const r = checkConfig(encodeRunConfigRecords(agentRun));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(expectedListing(agentRun));
    expect(() => encodeRunConfigRecords({ ...agentRun, argv: ['true'] })).toThrow(/no command/);
  });

  it('wraps the records in a cpio holding /.vmrun/run', () => {
    const archive = encodeRunConfig(sample);
    expect(archive.length % 4).toBe(0);
    const out = mkdtempSync(join(dir, 'x-'));
    execFileSync('cpio', ['-idm', '--quiet'], { input: archive, cwd: out });
    expect(readFileSync(join(out, '.vmrun/run'))).toEqual(Buffer.from(encodeRunConfigRecords(sample)));
    const listing = execFileSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid'], { input: archive }).toString();
    expect(listing).toMatch(/^drwxr-xr-x .* \.vmrun$/m);
    expect(listing).toMatch(/^-rw------- .* \.vmrun\/run$/m);
  });

  const encoderRefusals: [string, Partial<GuestRunConfig>, RegExp][] = [
    ['an empty command', { argv: [] }, /nothing to run/],
    ['a NUL in an argument', { argv: ['sh', 'a\0b'] }, /argument .* contains a NUL/],
    ['a relative workdir', { workdir: 'srv' }, /not an absolute path/],
    ['an env entry without =', { env: ['JUSTKEY'] }, /not KEY=VALUE/],
    ['an env entry with an empty key', { env: ['=v'] }, /not KEY=VALUE/],
    ['a terminal size out of range', { rows: 70000 }, /rows 70000/],
    ['a hostname over 64 bytes', { hostname: 'h'.repeat(65) }, /longer than 64 bytes/],
    ['more records than the init reads', { argv: Array.from({ length: RUN_CONFIG_MAX_RECORDS }, () => 'x') }, /over the limit of 16384/],
    ['a guest address without a prefix', { network: { address: '10.0.2.15', gateway: '10.0.2.2', nameserver: '10.0.2.3' } }, /not A.B.C.D\/PREFIX/],
    ['a volume tag the guest cannot mount by', { volumes: [{ tag: 'a:b', guestDir: '/x', readOnly: false }] }, /volume tag "a:b"/],
    ['a relative volume path', { volumes: [{ tag: 'vmrun0', guestDir: 'x', readOnly: false }] }, /volume guest path "x" is not absolute/],
    ['more bytes than the init reads', { argv: ['x'.repeat(1 << 20)] }, /bytes, over the limit/],
  ];
  for (const [what, change, message] of encoderRefusals) {
    it(`the encoder refuses ${what}`, () => {
      let err: unknown;
      try {
        encodeRunConfigRecords({ ...sample, ...change });
      } catch (e) {
        err = e;
      }
      expect(isVmrunError(err, 'usage')).toBe(true);
      expect((err as Error).message).toMatch(message);
    });
  }

  // Malformed files the encoder cannot produce, injected to check the init's parser.
  const good = Buffer.from(encodeRunConfigRecords({ argv: ['true'], env: [], workdir: '/', user: '', hostname: 'h', tty: false }));
  const records = (...r: string[]) => Buffer.from(r.join('\0') + '\0');
  const parserRefusals: [string, Buffer, RegExp][] = [
    ['an empty file', Buffer.alloc(0), /truncated/],
    ['a file cut in the middle of a record', good.subarray(0, good.length - 3), /truncated/],
    ['a file without the end record', good.subarray(0, good.length - 4), /no 'end' record/],
    ['a bad magic', records('vmrun-run-cfg', 'version=4', 'arg=true', 'end'), /bad magic/],
    ['an older version', records('vmrun-run-config', 'version=2', 'arg=true', 'end'), /unsupported version/],
    ['an older version (3: before volumes)', records('vmrun-run-config', 'version=3', 'arg=true', 'end'), /unsupported version/],
    ['a newer version', records('vmrun-run-config', 'version=5', 'arg=true', 'end'), /unsupported version/],
    ['an unknown key', records('vmrun-run-config', 'version=4', 'arg=true', 'colour=red', 'end'), /unknown record 'colour'/],
    ['a duplicate key', records('vmrun-run-config', 'version=4', 'arg=true', 'user=a', 'user=b', 'end'), /duplicate record 'user'/],
    ['no argument', records('vmrun-run-config', 'version=4', 'end'), /nothing to run/],
    ['a bad tty value', records('vmrun-run-config', 'version=4', 'arg=true', 'tty=2', 'end'), /tty must be 0 or 1/],
    ['a bad interactive value', records('vmrun-run-config', 'version=4', 'arg=true', 'interactive=yes', 'end'), /interactive must be 0 or 1/],
    ['rows with garbage', records('vmrun-run-config', 'version=4', 'arg=true', 'rows=12x', 'end'), /bad rows/],
    ['a network address without a prefix', records('vmrun-run-config', 'version=4', 'arg=true', 'net-address=10.0.2.15', 'end'), /not A.B.C.D\/PREFIX/],
    ['a prefix over 32', records('vmrun-run-config', 'version=4', 'arg=true', 'net-address=10.0.2.15/33', 'end'), /not A.B.C.D\/PREFIX/],
    ['a gateway that is no address', records('vmrun-run-config', 'version=4', 'arg=true', 'net-address=10.0.2.15/24', 'net-gateway=10.0.2', 'end'), /net-gateway '10.0.2' is not an IPv4/],
    ['a nameserver without an address', records('vmrun-run-config', 'version=4', 'arg=true', 'net-dns=10.0.2.3', 'end'), /without net-address/],
    ['data after end', Buffer.concat([good, records('arg=x')]), /after the 'end' record/],
    ['a workload mode other than agent', records('vmrun-run-config', 'version=4', 'workload=init', 'end'), /workload must be 'agent'/],
    ['workload=agent with a command', records('vmrun-run-config', 'version=4', 'workload=agent', 'arg=true', 'end'), /without arg records/],
  ];
  for (const [what, bytes, message] of parserRefusals) {
    it(`vmrun-init refuses ${what} with one line and status 125`, () => {
      const r = checkConfig(bytes);
      expect(r.status).toBe(125);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^vmrun-init: /);
    });
  }
});
