// resolveRunSpec against docker's documented `docker run` behaviour; expectations are
// computed from the image config and flags given, the way docker's rules state them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import type { ImageConfig } from '../../src/oci/manifest.js';
import { DEFAULT_PATH, mergeEnv, parseEnvFile, resolveRunSpec, type RunFlags } from '../../src/run/run-spec.js';

type Config = ImageConfig['config'];
const nginxLike: Config = {
  Entrypoint: ['/docker-entrypoint.sh'],
  Cmd: ['nginx', '-g', 'daemon off;'],
  Env: ['PATH=/usr/local/sbin:/usr/sbin:/opt/bin', 'NGINX_VERSION=1.25.3', 'LANG=C.UTF-8'],
  WorkingDir: '/usr/share/nginx',
  User: 'nginx',
};
const cmdOnly: Config = { Cmd: ['/bin/sh'] };
const entrypointOnly: Config = { Entrypoint: ['/usr/bin/tini', '--'] };

const dir = mkdtempSync(join(tmpdir(), 'vmrun-run-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function usageError(f: () => unknown): VmrunErrorLike {
  try {
    f();
  } catch (e) {
    expect(isVmrunError(e, 'usage')).toBe(true);
    return e as VmrunErrorLike;
  }
  throw new Error('expected a usage error');
}
type VmrunErrorLike = Error & { kind: string };

const keyOf = (kv: string) => kv.split('=')[0];

describe('resolveRunSpec: what runs', () => {
  const cases: [string, Config, RunFlags, (c: Config, f: RunFlags) => string[]][] = [
    ['image Entrypoint + Cmd', nginxLike, {}, (c) => [...c.Entrypoint!, ...c.Cmd!]],
    ['CMD arguments replace Cmd, keep Entrypoint', nginxLike, { command: ['nginx', '-t'] }, (c, f) => [...c.Entrypoint!, ...f.command!]],
    ['--entrypoint replaces Entrypoint and drops the image Cmd', nginxLike, { entrypoint: '/bin/sh' }, (_c, f) => [f.entrypoint!]],
    ['--entrypoint with CMD arguments', nginxLike, { entrypoint: '/bin/sh', command: ['-c', 'id'] }, (_c, f) => [f.entrypoint!, ...f.command!]],
    ['--entrypoint "" with CMD arguments runs only them', nginxLike, { entrypoint: '', command: ['ls', '/'] }, (_c, f) => f.command!],
    ['Cmd alone', cmdOnly, {}, (c) => c.Cmd!],
    ['Entrypoint alone', entrypointOnly, {}, (c) => c.Entrypoint!],
    ['Entrypoint alone with CMD arguments', entrypointOnly, { command: ['node', 'app.js'] }, (c, f) => [...c.Entrypoint!, ...f.command!]],
    ['an empty CMD list is no CMD', cmdOnly, { command: [] }, (c) => c.Cmd!],
  ];
  for (const [what, config, flags, expected] of cases) {
    it(what, () => {
      expect(resolveRunSpec(config, flags, {}).argv).toEqual(expected(config, flags));
    });
  }

  it('refuses to run nothing, with one usage error', () => {
    expect(usageError(() => resolveRunSpec({}, {}, {})).message).toMatch(/no command specified/);
    expect(usageError(() => resolveRunSpec(nginxLike, { entrypoint: '' }, {})).message).toMatch(/no command specified/);
  });
});

describe('resolveRunSpec: environment', () => {
  it('starts from PATH and HOSTNAME, which the image Env overrides in place', () => {
    const spec = resolveRunSpec(nginxLike, { hostname: 'web1' }, {});
    const imagePath = nginxLike.Env!.find((e) => keyOf(e) === 'PATH')!;
    expect(spec.env).toEqual([imagePath, 'HOSTNAME=web1', ...nginxLike.Env!.filter((e) => keyOf(e) !== 'PATH')]);
  });

  it("uses docker's default PATH when the image sets none, and TERM=xterm with -t", () => {
    expect(resolveRunSpec(cmdOnly, { hostname: 'h' }, {}).env).toEqual([`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h']);
    expect(resolveRunSpec(cmdOnly, { hostname: 'h', tty: true }, {}).env).toContain('TERM=xterm');
  });

  it('applies --env-file then -e over the image Env; KEY alone takes the host value or unsets', () => {
    const envFile = join(dir, 'app.env');
    writeFileSync(envFile, '# comment\n\n  LANG=en_US.UTF-8\nFROM_FILE=a b "c"\nHOST_ONLY\n');
    const host = { HOST_ONLY: 'from-host', HOST_VAR: 'h2' };
    const flags: RunFlags = { hostname: 'h', envFiles: [envFile], env: ['FROM_FILE=flag wins', 'HOST_VAR', 'NGINX_VERSION', 'NEW=1'] };
    const spec = resolveRunSpec(nginxLike, flags, host);
    const expected = mergeEnv(
      mergeEnv([`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h'], nginxLike.Env!),
      ['LANG=en_US.UTF-8', 'FROM_FILE=a b "c"', `HOST_ONLY=${host.HOST_ONLY}`, 'FROM_FILE=flag wins', `HOST_VAR=${host.HOST_VAR}`, 'NGINX_VERSION', 'NEW=1'],
    );
    expect(spec.env).toEqual(expected);
    // The rules, spelled out on the result:
    expect(spec.env).toContain('LANG=en_US.UTF-8'); // env file over image
    expect(spec.env).toContain('FROM_FILE=flag wins'); // -e over env file
    expect(spec.env).toContain('HOST_ONLY=from-host'); // bare key from the host
    expect(spec.env.some((e) => keyOf(e) === 'NGINX_VERSION')).toBe(false); // bare key the host lacks: unset
    expect(spec.env.indexOf('LANG=en_US.UTF-8')).toBeLessThan(spec.env.indexOf('FROM_FILE=flag wins')); // replaced in place, not appended
  });

  it('mergeEnv replaces in place, appends new keys and removes bare keys', () => {
    expect(mergeEnv(['A=1', 'B=2', 'C=3'], ['B=x', 'D=4', 'A'])).toEqual(['B=x', 'C=3', 'D=4']);
  });

  it('refuses env files that cannot be read or have whitespace in a name', () => {
    const missing = join(dir, 'missing.env');
    let err: unknown;
    try {
      resolveRunSpec(cmdOnly, { envFiles: [missing] }, {});
    } catch (e) {
      err = e;
    }
    expect(isVmrunError(err, 'not-found')).toBe(true);
    expect((err as Error).message).toContain(missing);
    expect(usageError(() => parseEnvFile('BAD KEY=1\n', 'x.env', {})).message).toMatch(/x\.env line 1: variable "BAD KEY" contains whitespace/);
    expect(usageError(() => resolveRunSpec(cmdOnly, { env: ['=value'] }, {})).message).toMatch(/variable name is empty/);
  });
});

describe('resolveRunSpec: workdir, user, hostname, terminal', () => {
  it('takes -w, else the image WorkingDir, else /', () => {
    expect(resolveRunSpec(nginxLike, { workdir: '/tmp/x' }, {}).workdir).toBe('/tmp/x');
    expect(resolveRunSpec(nginxLike, {}, {}).workdir).toBe(nginxLike.WorkingDir);
    expect(resolveRunSpec(cmdOnly, {}, {}).workdir).toBe('/');
  });

  it('refuses a relative -w', () => {
    expect(usageError(() => resolveRunSpec(cmdOnly, { workdir: 'tmp' }, {})).message).toMatch(/"tmp" is invalid, it needs to be an absolute path/);
  });

  it('takes -u, else the image User, else root ("")', () => {
    expect(resolveRunSpec(nginxLike, { user: '1000:1000' }, {}).user).toBe('1000:1000');
    expect(resolveRunSpec(nginxLike, {}, {}).user).toBe(nginxLike.User);
    expect(resolveRunSpec(cmdOnly, {}, {}).user).toBe('');
  });

  it('defaults the hostname to a fresh 12-hex-digit id', () => {
    const a = resolveRunSpec(cmdOnly, {}, {}).hostname;
    const b = resolveRunSpec(cmdOnly, {}, {}).hostname;
    expect(a).toMatch(/^[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    const spec = resolveRunSpec(cmdOnly, {}, {});
    expect(spec.env).toContain(`HOSTNAME=${spec.hostname}`);
  });

  it('refuses a hostname that is not a DNS label', () => {
    expect(usageError(() => resolveRunSpec(cmdOnly, { hostname: 'bad/name' }, {})).message).toMatch(/hostname "bad\/name"/);
  });

  it('passes -t, -i and the terminal size through', () => {
    expect(resolveRunSpec(cmdOnly, { tty: true, interactive: true, rows: 40, cols: 120 }, {})).toMatchObject({ tty: true, interactive: true, rows: 40, cols: 120 });
    expect(resolveRunSpec(cmdOnly, {}, {})).toMatchObject({ tty: false, interactive: false });
  });
});
