/**
 * NetworkOptions -> what the addon and the guest need: the device's configuration
 * (mode, a fresh MAC, ports, DNS relay) and eth0's static set-up for vmrun-init.
 */
import { addon, type NativeNetworkConfig } from '../native/addon.js';
import type { GuestNetworkConfig } from '../initramfs/run-config.js';
import { parseDnsTarget, randomMac, type NetworkOptions } from './options.js';

/** The device configuration for `options`, or undefined for `none` (no device at all). */
export function nativeNetworkConfig(options: NetworkOptions): NativeNetworkConfig | undefined {
  const mode = options.mode ?? 'user';
  if (mode === 'none') return undefined;
  return {
    mode,
    mac: randomMac(),
    publish: options.publish ?? [],
    ...(options.dns !== undefined ? { dns: parseDnsTarget(options.dns) } : {}),
  };
}

/** What a snapshot records of a machine's network device: all but the MAC, which each clone draws anew. */
export type SavedNetwork = Omit<NativeNetworkConfig, 'mac'>;

export function savedNetwork(config: NativeNetworkConfig): SavedNetwork {
  const { mac: _mac, ...rest } = config;
  return rest;
}

/** eth0's address, route and resolver in the guest (the addon's address plan), or undefined for `none`. */
export function guestNetworkConfig(options: NetworkOptions): GuestNetworkConfig | undefined {
  if ((options.mode ?? 'user') === 'none') return undefined;
  const plan = addon().guestNetwork;
  return { address: `${plan.guest}/${plan.prefix}`, gateway: plan.gateway, nameserver: plan.nameserver };
}
