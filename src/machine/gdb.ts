/**
 * The gdb stub's listening address (`vmrun boot --gdb [HOST:]PORT`, `Machine.boot({ gdb })`):
 * parsed and checked here, so a bad value is one clear line before any VM exists.
 * The stub itself is native (native/debug/gdb_stub.cc); see docs/gdb.md.
 */
import { VmrunError } from '../errors.js';

/** Where the gdb stub listens. The guest waits at its first instruction until a debugger attaches. */
export interface GdbOptions {
  /** TCP port; 0 picks a free one (the address is printed on stderr and is `machine.gdbAddress`). */
  port: number;
  /** IP address or host name to listen on; default 127.0.0.1 (only local debuggers). */
  host?: string;
}

/** Parses `PORT`, `HOST:PORT` or `[IPV6]:PORT`; throws VmrunError('usage') naming the value. */
export function parseGdbAddress(value: string, flag = '--gdb'): GdbOptions {
  const bad = (why: string) => new VmrunError('usage', `${flag} ${JSON.stringify(value)}: ${why} (expected [HOST:]PORT, like 1234 or 0.0.0.0:1234)`);
  let host: string | undefined;
  let port = value;
  const v6 = /^\[([^\]]*)\]:([^:]*)$/.exec(value);
  if (v6) {
    host = v6[1]!;
    port = v6[2]!;
  } else if (value.includes(':')) {
    const at = value.lastIndexOf(':');
    host = value.slice(0, at);
    port = value.slice(at + 1);
    if (host.includes(':')) throw bad('write an IPv6 address in brackets');
  }
  if (host !== undefined && host.length === 0) throw bad('the host is empty');
  if (host !== undefined && !/^[A-Za-z0-9.:%_-]+$/.test(host)) throw bad('the host is not an address or name');
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) throw bad('the port is not a number from 0 to 65535');
  return host === undefined ? { port: Number(port) } : { host, port: Number(port) };
}

/** Checks a library caller's options (the CLI's come from parseGdbAddress). */
export function checkGdbOptions(gdb: GdbOptions): Required<GdbOptions> {
  if (typeof gdb !== 'object' || gdb === null || !Number.isInteger(gdb.port) || gdb.port < 0 || gdb.port > 65535)
    throw new VmrunError('usage', `gdb.port must be an integer from 0 to 65535, not ${JSON.stringify((gdb as { port?: unknown } | null)?.port)}`);
  if (gdb.host !== undefined && (typeof gdb.host !== 'string' || gdb.host.length === 0)) throw new VmrunError('usage', 'gdb.host must be a non-empty string');
  return { host: gdb.host ?? '127.0.0.1', port: gdb.port };
}
