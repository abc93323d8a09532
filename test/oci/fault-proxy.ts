/**
 * A loopback HTTP proxy in front of the real registry that injects faults a real
 * registry cannot produce on demand: a corrupted blob, a connection cut mid-blob,
 * a 429. Every request is recorded so tests can assert what the client did.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What to do with one request. */
export type Fault = { kind: 'corrupt' } | { kind: 'cut'; afterBytes: number } | { kind: 'status'; status: number } | undefined;

/** A recorded request. */
export interface SeenRequest {
  method: string;
  url: string;
  range?: string;
}

/** A running fault proxy. */
export interface FaultProxy {
  host: string;
  seen: SeenRequest[];
  /** Decides the fault for each request (default: none). */
  setFault(decide: (req: IncomingMessage, n: number) => Fault): void;
  stop(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to `target` (host:port). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  let decide: (req: IncomingMessage, n: number) => Fault = () => undefined;
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const n = seen.length;
    seen.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
    const fault = decide(req, n);
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
  return {
    host: `127.0.0.1:${port}`,
    seen,
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
