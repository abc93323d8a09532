import { describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { vmrunHome } from '../../src/host/paths.js';
import { isDigest, parseDigest } from '../../src/oci/digest.js';
import { formatReference, parseManifestDocument, parsePlatform, parseReference, parseWwwAuthenticate, selectPlatform } from '../../src/oci/index.js';

const hex = 'a'.repeat(64);

describe('image references', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['user/app', 'docker.io/user/app:latest'],
    ['registry-1.docker.io/library/alpine:3', 'docker.io/library/alpine:3'],
    ['ghcr.io/o/n:tag', 'ghcr.io/o/n:tag'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/a/b/c:v1.2-rc_3', '127.0.0.1:5000/a/b/c:v1.2-rc_3'],
    [`alpine@sha256:${hex}`, `docker.io/library/alpine@sha256:${hex}`],
    [`ghcr.io/o/n:tag@sha256:${hex}`, `ghcr.io/o/n:tag@sha256:${hex}`],
  ])('%s -> %s', (input, canonical) => {
    expect(formatReference(parseReference(input))).toBe(canonical);
  });

  it.each(['', 'UPPER/case', 'a//b', 'alpine:bad tag', 'alpine@sha256:abc', '-leading', 'a:' + 'x'.repeat(200)])('rejects %j', (input) => {
    expect(() => parseReference(input)).toThrow(/image reference/);
  });
});

describe('WWW-Authenticate', () => {
  it('parses a Docker Hub bearer challenge', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"', 'docker.io');
    expect(c).toEqual({ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } });
  });

  it('parses several challenges, unquoted values and escapes', () => {
    const cs = parseWwwAuthenticate('Basic realm="a \\"b\\"", Bearer realm=https://x/t, error=invalid_token', 'r');
    expect(cs).toEqual([
      { scheme: 'basic', params: { realm: 'a "b"' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', error: 'invalid_token' } },
    ]);
  });

  it.each(['Bearer realm="unterminated', '=oops', 'x'.repeat(10_000)])('rejects malformed %j with a registry error', (h) => {
    let err: unknown;
    try {
      parseWwwAuthenticate(h, 'example.com');
    } catch (e) {
      err = e;
    }
    expect(isVmrunError(err, 'registry')).toBe(true);
    expect((err as Error).message).toMatch(/registry example.com/);
  });
});

describe('manifests', () => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o));
  const desc = (mediaType: string) => ({ mediaType, digest: `sha256:${hex}`, size: 1 });

  it('refuses schema 1 with a clear message', () => {
    expect(() => parseManifestDocument(enc({ schemaVersion: 1, name: 'x', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'm')).toThrow(/schema 1 manifests are deprecated/);
  });

  it('refuses unknown manifest and layer media types', () => {
    expect(() => parseManifestDocument(enc({ schemaVersion: 2, mediaType: 'application/x-weird' }), undefined, 'm')).toThrow(/unknown manifest media type "application\/x-weird"/);
    const m = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: desc('application/vnd.oci.image.config.v1+json'), layers: [desc('application/x-foreign')] };
    expect(() => parseManifestDocument(enc(m), undefined, 'm')).toThrow(/layer 0 has unknown media type "application\/x-foreign"/);
  });

  it('refuses oversized, non-JSON and malformed descriptors', () => {
    expect(() => parseManifestDocument(Buffer.alloc(5 << 20, 0x20), undefined, 'm')).toThrow(/more than the/);
    expect(() => parseManifestDocument(Buffer.from('{nope'), undefined, 'm')).toThrow(/not valid JSON/);
    const bad = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { ...desc('application/vnd.oci.image.config.v1+json'), digest: 'sha256:../../etc' }, layers: [] };
    expect(() => parseManifestDocument(enc(bad), undefined, 'm')).toThrow(/not a valid sha256/);
  });

  it('selects platforms, preferring an exact variant, and lists what exists', () => {
    const idx = parseManifestDocument(
      enc({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...desc('application/vnd.oci.image.manifest.v1+json'), digest: `sha256:${'1'.repeat(64)}`, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
          { ...desc('application/vnd.oci.image.manifest.v1+json'), digest: `sha256:${'2'.repeat(64)}`, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
          { ...desc('application/vnd.oci.image.manifest.v1+json'), digest: `sha256:${'3'.repeat(64)}`, platform: { os: 'unknown', architecture: 'unknown' } },
        ],
      }),
      undefined,
      'idx',
    );
    if (idx.kind !== 'index') throw new Error('expected an index');
    expect(selectPlatform(idx.index, parsePlatform('linux/arm/v7'), 'idx').digest).toBe(`sha256:${'2'.repeat(64)}`);
    expect(() => selectPlatform(idx.index, parsePlatform('linux/amd64'), 'idx')).toThrow(/offers: linux\/arm\/v6, linux\/arm\/v7 /);
    expect(() => parsePlatform('linux')).toThrow(/os\/arch/);
  });
});

describe('data directory', () => {
  it('prefers VMRUN_HOME, then XDG_DATA_HOME, then ~/.local/share', () => {
    expect(vmrunHome({ VMRUN_HOME: '/v', XDG_DATA_HOME: '/x', HOME: '/h' })).toBe('/v');
    expect(vmrunHome({ XDG_DATA_HOME: '/x', HOME: '/h' })).toBe('/x/vmrun');
    expect(vmrunHome({ XDG_DATA_HOME: 'relative', HOME: '/h' })).toBe('/h/.local/share/vmrun');
    expect(vmrunHome({ HOME: '/h' })).toBe('/h/.local/share/vmrun');
  });
});

describe('digests', () => {
  it.each(['constructor:abc', '__proto__:abc', 'toString:' + hex, 'hasOwnProperty:x', 'sha256', ':' + hex, `sha256:${hex.toUpperCase()}`, `sha384:${hex}`])(
    'isDigest(%j) is false and parseDigest names the input',
    (text) => {
      expect(isDigest(text)).toBe(false);
      expect(() => parseDigest(text, 'test input')).toThrow(/test input: ".*" is not a valid sha256\/sha512 digest/);
    },
  );

  it('accepts sha256 and sha512', () => {
    expect(isDigest(`sha256:${hex}`)).toBe(true);
    expect(isDigest(`sha512:${hex}${hex}`)).toBe(true);
  });

  it('an image reference pinned to "constructor:..." is a usage error, not a TypeError', () => {
    expect(() => parseReference('alpine@constructor:abc')).toThrow(/image reference .*is not a sha256:<64 hex> digest/);
  });
});
