/**
 * docker's -p/--publish: `[HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]`. Unlike docker, the host
 * address defaults to 127.0.0.1 (a sandbox's port is not opened to the whole network
 * unless asked: `-p 0.0.0.0:8080:80`). IPv4 only; the host port must be given.
 */
import { isIPv4 } from 'node:net';
import { VmrunError } from '../errors.js';

export type PortProtocol = 'tcp' | 'udp';

/** One published port: connections to hostIp:hostPort reach the guest's guestPort. */
export interface PortMapping {
  protocol: PortProtocol;
  hostIp: string;
  hostPort: number;
  guestPort: number;
}

/** Where published ports listen when -p names no host address. */
export const DEFAULT_PUBLISH_HOST_IP = '127.0.0.1';

function port(text: string, what: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new VmrunError('usage', `-p ${spec}: the ${what} "${text}" is not a port number 1-65535`);
  }
  return Number(text);
}

/** Parses one -p value. */
export function parsePublish(spec: string): PortMapping {
  let rest = spec;
  let protocol: PortProtocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw new VmrunError('usage', `-p ${spec}: the protocol "${p}" is not tcp or udp`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  if (rest.startsWith('[')) throw new VmrunError('usage', `-p ${spec}: IPv6 host addresses are not supported (the guest network is IPv4)`);
  const parts = rest.split(':');
  if (parts.length < 2 || parts.length > 3) {
    throw new VmrunError('usage', `-p ${spec}: expected [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp] (a host port is required)`);
  }
  const hostIp = parts.length === 3 ? parts[0]! : DEFAULT_PUBLISH_HOST_IP;
  if (!isIPv4(hostIp)) throw new VmrunError('usage', `-p ${spec}: the host address "${hostIp}" is not an IPv4 address`);
  const hostPortText = parts[parts.length - 2]!;
  if (hostPortText === '') throw new VmrunError('usage', `-p ${spec}: a host port is required (vmrun does not pick one)`);
  return {
    protocol,
    hostIp,
    hostPort: port(hostPortText, 'host port', spec),
    guestPort: port(parts[parts.length - 1]!, 'guest port', spec),
  };
}

/** Parses every -p value and refuses two that claim the same host address, port and protocol. */
export function parsePublishList(specs: readonly string[]): PortMapping[] {
  const out = specs.map(parsePublish);
  const seen = new Set<string>();
  for (const m of out) {
    const key = `${m.hostIp}:${m.hostPort}/${m.protocol}`;
    if (seen.has(key)) throw new VmrunError('usage', `-p: host port ${key} is published twice`);
    seen.add(key);
  }
  return out;
}

/** docker's rendering: "127.0.0.1:8080->80/tcp". */
export function formatPortMapping(m: PortMapping): string {
  return `${m.hostIp}:${m.hostPort}->${m.guestPort}/${m.protocol}`;
}

/** docker port's line: "80/tcp -> 127.0.0.1:8080". */
export function formatPortLine(m: PortMapping): string {
  return `${m.guestPort}/${m.protocol} -> ${m.hostIp}:${m.hostPort}`;
}

/** The mappings of guest port `filter` ("80" or "80/udp"; tcp by default), or all without one. */
export function selectPorts(ports: readonly PortMapping[], filter?: string): PortMapping[] {
  if (filter === undefined) return [...ports];
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(filter);
  if (!m) throw new VmrunError('usage', `port "${filter}" is not PORT or PORT/tcp|udp`);
  const protocol = m[2] ?? 'tcp';
  return ports.filter((p) => p.guestPort === Number(m[1]) && p.protocol === protocol);
}
