/**
 * How a VM is networked, as the library and the CLI take it, and the checks that turn
 * user input into what the addon and the guest's run configuration need.
 */
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { VmrunError } from '../errors.js';
import type { PortMapping } from './publish.js';

/**
 * `user`: the guest reaches whatever the host reaches (QEMU's -netdev user, docker's
 * default bridge). `host-loopback`: the guest reaches only the host's loopback through
 * the gateway address (and the DNS relay). `none`: only `lo` in the guest.
 */
export type NetworkMode = 'user' | 'host-loopback' | 'none';
export const NETWORK_MODES: readonly NetworkMode[] = ['user', 'host-loopback', 'none'];

export interface NetworkOptions {
  /** Default `user`. */
  mode?: NetworkMode;
  /** Published ports (docker's -p). */
  publish?: PortMapping[];
  /**
   * A resolver on the host ("IP" or "IP:PORT", port 53 by default) that the guest's DNS
   * queries are relayed to. Default: the host's own resolvers (/etc/resolv.conf).
   */
  dns?: string;
}

/** Where the guest's DNS queries are relayed to. */
export interface DnsTarget {
  ip: string;
  port: number;
}

export function parseNetworkMode(text: string): NetworkMode {
  if (!(NETWORK_MODES as readonly string[]).includes(text)) {
    throw new VmrunError('usage', `--network "${text}" is not one of ${NETWORK_MODES.join(', ')}`);
  }
  return text as NetworkMode;
}

/** Parses --dns IP[:PORT]. */
export function parseDnsTarget(text: string): DnsTarget {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (!m || !isIPv4(m[1]!) || port < 1 || port > 65535) {
    throw new VmrunError('usage', `--dns "${text}" is not IPv4-ADDRESS[:PORT]`);
  }
  return { ip: m[1]!, port };
}

/** A random locally administered unicast MAC (02:xx:...), one per VM and per restored clone. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
