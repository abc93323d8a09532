// vmrun-init's -u resolution (the real binary, --resolve-user host mode) against
// passwd/group files, checked against runc's documented GetExecUser rules.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestInit, runGuestInit } from './guest-init-binary.js';

let init: string;
let root: string;
let bare: string;

const passwd = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
  'broken line without colons',
  'numeric:x:2000:2000::/:/bin/sh',
  'alice:x:1001:1001:second alice, ignored:/nowhere:/bin/sh',
];
const group = ['root:x:0:', 'staff:x:50:alice,bob', 'wheel:x:10:alice', 'alice:x:1000:', 'video:x:44:bob', 'numeric:x:2000:'];

type Parsed = { uid: number; gid: number; groups: number[]; home: string };

function resolveUser(spec: string, groupAdd: string[] = [], at = root): Parsed | { error: string; status: number | null } {
  const r = runGuestInit(init, ['--resolve-user', at, spec, ...groupAdd]);
  const m = /^uid=(\d+) gid=(\d+) groups=([\d,]*) home=(.*)\n$/.exec(r.stdout);
  if (r.status !== 0 || !m) return { error: r.stderr, status: r.status };
  return { uid: Number(m[1]), gid: Number(m[2]), groups: m[3] ? m[3].split(',').map(Number) : [], home: m[4]! };
}

/** The passwd entry `name` as the test data states it. */
function entry(name: string) {
  const f = passwd.map((l) => l.split(':')).find((p) => p[0] === name && p.length === 7)!;
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
}
/** Gids of the groups listing `name` as a member, in file order. */
function memberGids(name: string): number[] {
  return group.map((l) => l.split(':')).filter((p) => p[3]!.split(',').includes(name)).map((p) => Number(p[2]));
}
function gidOf(name: string): number {
  return Number(group.map((l) => l.split(':')).find((p) => p[0] === name)![2]);
}

beforeAll(() => {
  init = buildGuestInit();
  root = mkdtempSync(join(tmpdir(), 'vmrun-exec-user-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), passwd.join('\n') + '\n');
  writeFileSync(join(root, 'etc/group'), group.join('\n') + '\n');
  bare = mkdtempSync(join(tmpdir(), 'vmrun-exec-user-bare-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(bare, { recursive: true, force: true });
});

describe('vmrun-init user resolution', () => {
  it('defaults to root with root\'s home and member groups', () => {
    expect(resolveUser('')).toEqual({ ...entry('root'), groups: memberGids('root') });
  });

  it('resolves a name to its passwd entry (first match wins) and its member groups', () => {
    expect(resolveUser('alice')).toEqual({ ...entry('alice'), groups: memberGids('alice') });
  });

  it('resolves a numeric uid through passwd', () => {
    const alice = entry('alice');
    expect(resolveUser(String(alice.uid))).toEqual({ ...alice, groups: memberGids('alice') });
  });

  it('accepts a numeric uid missing from passwd, with gid 0 and HOME /', () => {
    expect(resolveUser('4242')).toEqual({ uid: 4242, gid: 0, groups: [], home: '/' });
  });

  it('takes an explicit group (name or gid) and then adds no member groups', () => {
    expect(resolveUser('alice:staff')).toEqual({ ...entry('alice'), gid: gidOf('staff'), groups: [] });
    expect(resolveUser('alice:777')).toEqual({ ...entry('alice'), gid: 777, groups: [] });
    expect(resolveUser('4242:video')).toEqual({ uid: 4242, gid: gidOf('video'), groups: [], home: '/' });
  });

  it('adds --group-add groups by name or gid, without duplicates', () => {
    const r = resolveUser('alice', ['video', '4000', 'staff']) as Parsed;
    expect(r.groups).toEqual([...new Set([...memberGids('alice'), gidOf('video'), 4000, gidOf('staff')])]);
  });

  it('works without /etc/passwd and /etc/group for numeric ids', () => {
    expect(resolveUser('12:34', [], bare)).toEqual({ uid: 12, gid: 34, groups: [], home: '/' });
  });

  const refusals: [string, string[], RegExp][] = [
    ['an unknown user name', [], /unable to find user mallory: no matching entries in passwd file/],
    ['an unknown group name', [], /unable to find group nogroup/],
    ['an unknown added group', ['nogroup'], /unable to find group nogroup/],
    ['an empty group', [], /empty group/],
    ['a uid beyond 2^31-1', [], /unable to find user 4294967296/],
  ];
  const specs = ['mallory', 'alice:nogroup', 'alice', 'alice:', '4294967296'];
  refusals.forEach(([what, groupAdd, message], i) => {
    it(`refuses ${what} with one line and status 125`, () => {
      const r = resolveUser(specs[i]!, groupAdd) as { error: string; status: number };
      expect(r.status).toBe(125);
      expect(r.error).toMatch(message);
      expect(r.error.trimEnd().split('\n')).toHaveLength(1);
    });
  });

  it('refuses a user name when the image has no /etc/passwd', () => {
    const r = resolveUser('alice', [], bare) as { error: string; status: number };
    expect(r.status).toBe(125);
    expect(r.error).toMatch(/unable to find user alice/);
  });
});
