/**
 * A loopback HTTP proxy in front of the real registry that injects faults a real
 * registry cannot produce on demand: a corrupted blob, a connection cut mid-blob,
 * a 429. Every request is recorded so tests can assert what the client did.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What to do with one request. */
export type Fault =
  | { kind: 'corrupt' }
  | { kind: 'cut'; afterBytes: number }
  | { kind: 'status'; status: number }
  /** Answer with a redirect to the same URL under /storage (as registries send blobs to object storage). */
  | { kind: 'redirect' }
  | undefined;

/** A recorded request. */
export interface SeenRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

/** A running fault proxy. */
export interface FaultProxy {
  host: string;
  seen: SeenRequest[];
  /** Decides the fault for each request (default: none). */
  setFault(decide: (req: IncomingMessage, n: number) => Fault): void;
  /**
   * Puts Docker Hub style token auth in front of the registry: /v2/ requests need
   * `Bearer <token>`, handed out anonymously by GET /token (pass undefined to turn off).
   */
  requireBearer(token: string | undefined): void;
  stop(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to `target` (host:port). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  let decide: (req: IncomingMessage, n: number) => Fault = () => undefined;
  const seen: SeenRequest[] = [];
  let bearer: string | undefined;
  let selfHost = '';
  const server: Server = createServer((req, res) => {
    const n = seen.length;
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if (bearer !== undefined) {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: bearer, expires_in: 300 }));
        return;
      }
      if (req.url?.startsWith('/v2/') && req.headers.authorization !== `Bearer ${bearer}`) {
        const repo = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(req.url)?.[1] ?? '';
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${selfHost}/token",service="fault-proxy",scope="repository:${repo}:pull"` });
        res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      delete req.headers.authorization;
    }
    // Redirected requests are served plainly: faults apply to the registry's own URLs.
    const redirected = req.url?.startsWith('/storage/') ?? false;
    if (redirected) req.url = req.url!.slice('/storage'.length);
    const fault = redirected ? undefined : decide(req, n);
    if (fault?.kind === 'redirect') {
      res.writeHead(307, { location: `http://${selfHost}/storage${req.url}` });
      res.end();
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'retry-after': '0', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return;
    }
    const upstream = request(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: { ...req.headers, host: target } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        let sent = 0;
        let flipped = false;
        up.on('data', (chunk: Buffer) => {
          if (fault?.kind === 'corrupt' && !flipped && chunk.length > 0) {
            chunk = Buffer.from(chunk);
            chunk[0] = chunk[0]! ^ 0xff;
            flipped = true;
          }
          if (fault?.kind === 'cut' && sent + chunk.length > fault.afterBytes) {
            res.write(chunk.subarray(0, Math.max(0, fault.afterBytes - sent)));
            res.socket?.destroy();
            up.destroy();
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        up.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  selfHost = `127.0.0.1:${port}`;
  return {
    host: selfHost,
    seen,
    requireBearer: (token) => {
      bearer = token;
    },
    setFault: (d) => {
      decide = d;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
