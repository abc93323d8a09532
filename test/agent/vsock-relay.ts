// Stands in for a VM's hybrid vsock socket on a host without one: answers
// `CONNECT <port>\n` with `OK <n>\n` and relays the stream to a host agent's unix
// socket, the way the virtio-vsock device relays to the guest's listener.
import { connect, createServer, type Server } from 'node:net';

export function startVsockRelay(socketPath: string, agentSocket: string, opts: { port?: number } = {}): Promise<Server> {
  const port = opts.port ?? 1024;
  const server = createServer((client) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      client.off('data', onData);
      if (head.subarray(0, nl).toString() !== `CONNECT ${port}`) {
        client.destroy();
        return;
      }
      const upstream = connect(agentSocket, () => {
        client.write('OK 1073741824\n');
        const rest = head.subarray(nl + 1);
        if (rest.length) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  return new Promise((resolve) => server.listen(socketPath, () => resolve(server)));
}
