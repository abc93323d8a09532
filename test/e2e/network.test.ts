/**
 * Networking end to end with a real Linux guest (busybox image, vmrun's kernel and
 * init): the guest reaches servers this test starts on the host's loopback through the
 * gateway address, published ports reach the guest, DNS goes to the test's own
 * resolver, and nothing is left behind when vmrun dies.
 * NETWORK RULE: every server here listens on 127.0.0.0/8; guests run in
 * `--network host-loopback` (the device drops whatever is not for the gateway) unless
 * a test needs the default mode, and then they only contact the gateway. Every
 * request loop is bounded.
 * Run: scripts/e2e.sh test/e2e/network.test.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { processesWhere, VmrunTestEnv } from './helpers/vmrun-env.js';
import { eventually, sleep } from '../vmhost/vm-env.js';

/** One `vmrun run` in L1 takes ~15-20 s (Node's start under TCG, then a native guest boot). */
const RUN_TIMEOUT_MS = 150_000;
const NET_APPLETS = ['wget', 'nc', 'httpd', 'nslookup', 'sha256sum', 'mkdir', 'grep', 'tr', 'sort', 'head'];
/** The name the test's resolver answers, and its answer (data only: the guest never contacts it). */
const DNS_NAME = 'service.vmrun-e2e.test';
const DNS_ANSWER = '127.0.0.42';

const skipReason = busyboxUnavailableReason();
if (skipReason) console.warn(`network e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let layouts: string;
let image: string;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layouts = mkdtempSync(join(tmpdir(), 'vmrun-e2e-net-'));
  await writeBusyboxLayout(join(layouts, 'net'), 'v1', { applets: NET_APPLETS });
  image = `oci:${join(layouts, 'net')}:v1`;
}, 5 * 60_000);

afterAll(() => {
  env?.cleanup();
  if (layouts) rmSync(layouts, { recursive: true, force: true });
});

const escaped = (s: string): string => s.replace(/\./g, '\\.');

/** A free TCP port on 127.0.0.1 (bound, then released). */
async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether something on the host listens on 127.0.0.1:port (a bind attempt). */
async function portTaken(port: number): Promise<boolean> {
  const s = createTcpServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(true));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

/** GET http://127.0.0.1:port/path once; resolves with the body or undefined on any failure. */
function fetchOnce(port: number, path = '/'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** A minimal DNS server on 127.0.0.x: A for DNS_NAME, an empty NOERROR answer otherwise. */
async function startResolver(address: string): Promise<{ socket: UdpSocket; port: number; queries: string[] }> {
  const socket = createSocket('udp4');
  const queries: string[] = [];
  socket.on('message', (msg, from) => {
    if (msg.length < 12) return;
    const labels: string[] = [];
    let at = 12;
    while (at < msg.length && msg[at] !== 0) {
      labels.push(msg.subarray(at + 1, at + 1 + msg[at]!).toString());
      at += 1 + msg[at]!;
    }
    const questionEnd = at + 5; // the zero label, QTYPE, QCLASS
    if (questionEnd > msg.length) return;
    const name = labels.join('.');
    const qtype = msg.readUInt16BE(at + 1);
    queries.push(`${name}/${qtype}`);
    const answer = name === DNS_NAME && qtype === 1;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8180, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer ? 1 : 0, 6);
    const parts = [header, msg.subarray(12, questionEnd)];
    if (answer) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(4, 10);
      DNS_ANSWER.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
      parts.push(rr);
    }
    socket.send(Buffer.concat(parts), from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, address, r));
  return { socket, port: socket.address().port, queries };
}

describe.skipIf(skipReason)('networking with a real guest', () => {
  describe('the guest reaches the host loopback through the gateway (one run, --network host-loopback)', () => {
    const file = randomBytes(1 << 20);
    const fileHash = createHash('sha256').update(file).digest('hex');
    let http: Server;
    /** busybox has no UDP nc: the UDP request/reply server is a second DNS responder, asked directly at 10.0.2.2:PORT. */
    let udpServer: Awaited<ReturnType<typeof startResolver>>;
    let resolver: Awaited<ReturnType<typeof startResolver>>;
    let output = '';
    let status: number | null = null;

    beforeAll(async () => {
      http = createHttpServer((req, res) => {
        if (req.url === '/file.bin') res.end(file);
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
      const httpPort = (http.address() as { port: number }).port;
      udpServer = await startResolver('127.0.0.1');
      resolver = await startResolver('127.0.0.5');
      const script = [
        'echo "ifaces: $(ls /sys/class/net | sort | tr "\\n" " ")"',
        'echo "hosts: $(grep host.vmrun.internal /etc/hosts)"',
        `wget -q -O /tmp/file.bin http://host.vmrun.internal:${httpPort}/file.bin && echo "sha256: $(sha256sum /tmp/file.bin)"`,
        `echo "udp: $(nslookup ${DNS_NAME} 10.0.2.2:${udpServer.port} | grep -A1 Name: | tr "\\n" " ")"`,
        `echo "dns: $(nslookup ${DNS_NAME} | grep -A1 Name: | tr "\\n" " ")"`,
      ].join('; ');
      const r = await env.run(
        ['run', '-q', '--network', 'host-loopback', '--dns', `127.0.0.5:${resolver.port}`, image, 'sh', '-c', script],
        { timeoutMs: RUN_TIMEOUT_MS },
      );
      output = r.stdout + r.stderr;
      status = r.status;
    }, RUN_TIMEOUT_MS + 10_000);

    afterAll(() => {
      http?.close();
      udpServer?.socket.close();
      resolver?.socket.close();
    });

    it('runs to the end with eth0 and lo, and host.vmrun.internal in /etc/hosts', () => {
      expect(status, output).toBe(0);
      expect(output).toContain('ifaces: eth0 lo \n');
      expect(output).toMatch(/hosts: 10\.0\.2\.2\s+host\.vmrun\.internal/);
    });

    it('fetches a 1 MiB file from an HTTP server on the host\'s 127.0.0.1 and its sha256 matches', () => {
      expect(output).toContain(`sha256: ${fileHash}  /tmp/file.bin`);
    });

    it('does a UDP round trip with a request/reply server on the host\'s 127.0.0.1 (through 10.0.2.2)', () => {
      expect(udpServer.queries).toContain(`${DNS_NAME}/1`);
      expect(output).toMatch(new RegExp(`udp: Name:\\s+${escaped(DNS_NAME)}\\s+Address:\\s+${escaped(DNS_ANSWER)}`));
    });

    it('resolves a name through the test\'s own resolver on 127.0.0.5 (--dns)', () => {
      expect(resolver.queries).toContain(`${DNS_NAME}/1`);
      expect(output).toMatch(new RegExp(`dns: Name:\\s+${escaped(DNS_NAME)}\\s+Address:\\s+${escaped(DNS_ANSWER)}`));
    });
  });

  it('--network none leaves only lo', async () => {
    const r = await env.run(['run', '-q', '--network', 'none', image, 'sh', '-c', 'ls /sys/class/net | tr "\\n" " "'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('lo');
  }, RUN_TIMEOUT_MS);

  it('-p publishes busybox httpd: two VMs serve the same guest port on two host ports, ps and port show them, a taken port is refused', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const serve = (name: string) => `mkdir -p /www && echo "hello from ${name}" > /www/index.html && exec httpd -f -p 80 -h /www`;
    const a = await env.run(['run', '-d', '--name', 'web-a', '--network', 'host-loopback', '-p', `127.0.0.1:${portA}:80`, image, 'sh', '-c', serve('a')], { timeoutMs: RUN_TIMEOUT_MS });
    expect(a.status, a.stderr).toBe(0);
    const b = await env.run(['run', '-d', '--name', 'web-b', '--network', 'host-loopback', '-p', `${portB}:80`, image, 'sh', '-c', serve('b')], { timeoutMs: RUN_TIMEOUT_MS });
    expect(b.status, b.stderr).toBe(0);
    // Bounded: each VM boots and starts httpd within the wait.
    const bodyA = await eventually(() => fetchOnce(portA), `http://127.0.0.1:${portA}/`, 120_000);
    const bodyB = await eventually(() => fetchOnce(portB), `http://127.0.0.1:${portB}/`, 120_000);
    expect(bodyA).toBe('hello from a\n');
    expect(bodyB).toBe('hello from b\n');

    const port = await env.run(['port', 'web-a'], { timeoutMs: 60_000 });
    expect(port.stdout).toBe(`80/tcp -> 127.0.0.1:${portA}\n`);
    const ps = await env.run(['ps'], { timeoutMs: 60_000 });
    expect(ps.stdout).toContain(`127.0.0.1:${portA}->80/tcp`);
    expect(ps.stdout).toContain(`127.0.0.1:${portB}->80/tcp`);

    // A third VM asking for a host port that web-a holds: one clear line, exit 125.
    const clash = await env.run(['run', '-q', '-p', `127.0.0.1:${portA}:80`, image, 'true'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(clash.status).toBe(125);
    expect(clash.stderr.trim()).toBe(`vmrun: cannot publish 127.0.0.1:${portA}->80/tcp: the host port is already in use`);

    await env.run(['stop', 'web-a', 'web-b'], { timeoutMs: 60_000 });
    expect(await eventually(async () => ((await portTaken(portA)) || (await portTaken(portB)) ? undefined : true), 'ports released after stop', 30_000)).toBe(true);
  }, 6 * RUN_TIMEOUT_MS);

  it('a snapshot of a serving VM restores with working networking: two clones at once on two other host ports (library API)', async () => {
    // In-process, through the library (runImage, machine.snapshot, Machine.restore with
    // `publish`): no background host, whose start report is bounded at 10 s, which a
    // loaded TCG host can exceed.
    Object.assign(process.env, env.env);
    const { runImage } = await import('../../src/run/run-image.js');
    const { Machine } = await import('../../src/machine/machine.js');
    const [saved, clone1, clone2] = [await freePort(), await freePort(), await freePort()];
    const tcp = (hostPort: number) => [{ protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort, guestPort: 80 }];
    const serve = 'mkdir -p /www && echo "served since boot" > /www/index.html && exec httpd -f -p 80 -h /www';
    const original = await runImage({ image, command: ['sh', '-c', serve], network: { mode: 'host-loopback', publish: tcp(saved) } });
    original.output.resume();
    const snapshot = join(env.root, 'web.vmsnap');
    const clones: InstanceType<typeof Machine>[] = [];
    try {
      expect(await eventually(() => fetchOnce(saved), 'the VM to be saved serves', 120_000)).toBe('served since boot\n');
      await original.snapshot(snapshot, { stop: true });
      await original.wait();
      // The guest's httpd was listening at the save: new connections reach it, in both clones at once.
      for (const port of [clone1, clone2]) {
        const clone = await Machine.restore(snapshot, { publish: tcp(port) });
        clone.output.resume();
        clones.push(clone);
        expect(clone.ports()).toEqual(tcp(port));
        expect(await eventually(() => fetchOnce(port), `the clone on ${port} serves`, 120_000)).toBe('served since boot\n');
      }
      expect(await fetchOnce(clone1)).toBe('served since boot\n');
      // Each clone bound only the port it was given; the saved VM's port is free.
      expect(await portTaken(saved)).toBe(false);
    } finally {
      original.stop();
      for (const c of clones) c.stop();
      await Promise.all(clones.map((c) => c.wait()));
    }
  }, 6 * RUN_TIMEOUT_MS);

  it('leaves no back-end process or socket after vmrun is killed with SIGKILL', async () => {
    const port = await freePort();
    const run = env.start(['run', '-q', '--network', 'host-loopback', '-p', `127.0.0.1:${port}:80`, image, 'sleep', '600']);
    // The published port is bound as the VM is created.
    await eventually(async () => ((await portTaken(port)) ? true : undefined), 'the published port bound', RUN_TIMEOUT_MS);
    await sleep(500);
    const pid = run.child.pid!;
    const children = processesWhere((argv) => argv.join(' ').includes(String(port)) && !argv[0]!.endsWith('node'));
    run.child.kill('SIGKILL');
    await run.waitExit(30_000);
    // The back end lived in vmrun's process: its listener died with it, nothing else held it.
    expect(await eventually(async () => ((await portTaken(port)) ? undefined : true), 'port free after SIGKILL', 10_000)).toBe(true);
    expect(children).toEqual([]);
    // And vmrun itself is gone (its VM went with it: the vCPUs were threads of it).
    expect(processesWhere((argv) => argv.includes('sleep') && argv.includes('600') && argv.some((a) => a.endsWith('run.js')))).toEqual([]);
    expect(() => process.kill(pid, 0)).toThrow();
  }, 2 * RUN_TIMEOUT_MS);
});
