/**
 * Where a registry may send vmrun: a redirect or token realm must not downgrade https
 * to http, nor hop from a remote registry to a loopback service, unless
 * --insecure-registry names the target. "Remote" registries here are names that a
 * test resolver maps to 127.0.0.1 (all traffic stays on loopback).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { RegistryClient, parseReference } from '../../src/oci/index.js';

const servers: Server[] = [];
async function listen(server: Server, handler: RequestListener): Promise<number> {
  server.on('request', handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A loopback service a hostile registry would like vmrun to reach; counts its hits. */
let localHits = 0;
let localPort: number;
/** A "remote" registry (plain HTTP, named with --insecure-registry) and one over https. */
let remotePort: number;
let securePort: number;
let answer: (path: string) => { status: number; headers: Record<string, string> };

const certDir = mkdtempSync(join(tmpdir(), 'vmrun-tls-'));
beforeAll(async () => {
  localPort = await listen(createHttpServer(), (req, res) => {
    localHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"stolen"}');
  });
  const registry: RequestListener = (req, res) => {
    const a = answer(req.url ?? '');
    res.writeHead(a.status, a.headers).end();
  };
  remotePort = await listen(createHttpServer(), registry);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=secure.test', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'pipe' });
  securePort = await listen(createHttpsServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }), registry);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(certDir, { recursive: true, force: true });
});

/** A client whose resolver sends every name to 127.0.0.1, trusting the test certificate. */
function client(insecure: string[]): RegistryClient {
  const dispatcher = new Agent({
    connect: {
      ca: readFileSync(join(certDir, 'cert.pem')),
      servername: 'secure.test',
      lookup: (_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
        opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    } as never,
  });
  return new RegistryClient({ insecureRegistries: insecure, dispatcher, maxAttempts: 1 });
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(isVmrunError(e, 'registry'), `expected a registry error, got ${String(e)}`).toBe(true);
  return e as Error;
}

describe('registry redirects and token realms', () => {
  it('a remote registry cannot redirect to a loopback service', async () => {
    answer = () => ({ status: 302, headers: { location: `http://127.0.0.1:${localPort}/internal` } });
    const c = client([`registry.test:${remotePort}`]);
    const e = await failure(c.getManifest(parseReference(`registry.test:${remotePort}/app:1`)));
    expect(e.message).toMatch(new RegExp(`refusing to follow a redirect to http://127\\.0\\.0\\.1:${localPort}.*from a remote host to loopback`));
    expect(localHits).toBe(0);
    await c.close();
  });

  it('an https registry cannot redirect to plain http', async () => {
    answer = () => ({ status: 307, headers: { location: `http://127.0.0.1:${localPort}/blob` } });
    const c = client([]);
    const e = await failure(c.getManifest(parseReference(`secure.test:${securePort}/app:1`)));
    expect(e.message).toMatch(/refusing to follow a redirect to http:\/\/127\.0\.0\.1.*downgrade from https to plain http/);
    expect(localHits).toBe(0);
    await c.close();
  });

  it('a remote registry cannot point its token realm at a loopback service', async () => {
    answer = () => ({ status: 401, headers: { 'www-authenticate': `Bearer realm="http://127.0.0.1:${localPort}/token",service="x"` } });
    const c = client([`registry.test:${remotePort}`]);
    const e = await failure(c.getManifest(parseReference(`registry.test:${remotePort}/app:1`)));
    expect(e.message).toMatch(new RegExp(`refusing token realm http://127\\.0\\.0\\.1:${localPort}.*from a remote host to loopback`));
    expect(localHits).toBe(0);
    await c.close();
  });

  it('--insecure-registry naming the loopback target allows the hop', async () => {
    answer = () => ({ status: 302, headers: { location: `http://127.0.0.1:${localPort}/internal` } });
    const c = client([`registry.test:${remotePort}`, `127.0.0.1:${localPort}`]);
    // The local service answers 200 with JSON that is not a manifest: the hop happened.
    await expect(c.getManifest(parseReference(`registry.test:${remotePort}/app:1`))).resolves.toMatchObject({ bytes: Buffer.from('{"token":"stolen"}') });
    expect(localHits).toBe(1);
    localHits = 0;
    await c.close();
  });
});
