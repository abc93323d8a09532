// docker's -p syntax as vmrun reads it (host address defaults to 127.0.0.1), and the
// other network options' parsers: every refusal is a usage error naming the input.
import { describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import {
  formatPortLine, formatPortMapping, parseDnsTarget, parseNetworkMode, parsePublish, parsePublishList, randomMac, selectPorts,
} from '../../src/network/index.js';

function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isVmrunError(e, 'usage')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('-p / --publish', () => {
  it('HOSTPORT:GUESTPORT listens on 127.0.0.1 over tcp', () => {
    expect(parsePublish('8080:80')).toEqual({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, guestPort: 80 });
  });
  it('takes a host address and a protocol', () => {
    expect(parsePublish('0.0.0.0:5353:53/udp')).toEqual({ protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, guestPort: 53 });
    expect(parsePublish('127.0.0.2:1:65535/tcp')).toEqual({ protocol: 'tcp', hostIp: '127.0.0.2', hostPort: 1, guestPort: 65535 });
  });
  const refusals: [string, RegExp][] = [
    ['80', /a host port is required/],
    ['127.0.0.1::80', /a host port is required/],
    ['8080:80/sctp', /protocol "sctp"/],
    ['8080:0', /guest port "0"/],
    ['70000:80', /host port "70000"/],
    ['localhost:8080:80', /"localhost" is not an IPv4 address/],
    ['[::1]:8080:80', /IPv6/],
    ['1:2:3:4', /expected \[HOSTIP:\]HOSTPORT:GUESTPORT/],
    ['8080:8o', /guest port "8o"/],
  ];
  for (const [spec, message] of refusals) {
    it(`refuses ${spec}`, () => {
      const m = usageError(() => parsePublish(spec));
      expect(m).toContain(`-p ${spec}`);
      expect(m).toMatch(message);
    });
  }
  it('refuses the same host port twice, but not the same guest port on two host ports', () => {
    expect(usageError(() => parsePublishList(['8080:80', '127.0.0.1:8080:81']))).toMatch(/127.0.0.1:8080\/tcp is published twice/);
    expect(parsePublishList(['8080:80', '8081:80', '8080:80/udp'])).toHaveLength(3);
  });
  it('renders like docker ps and docker port', () => {
    const m = parsePublish('8080:80');
    expect(formatPortMapping(m)).toBe('127.0.0.1:8080->80/tcp');
    expect(formatPortLine(m)).toBe('80/tcp -> 127.0.0.1:8080');
  });
  it('selects the mappings of one guest port (tcp unless named)', () => {
    const ports = parsePublishList(['8080:80', '8081:80', '9000:80/udp', '9001:81']);
    expect(selectPorts(ports, '80').map((p) => p.hostPort)).toEqual([8080, 8081]);
    expect(selectPorts(ports, '80/udp').map((p) => p.hostPort)).toEqual([9000]);
    expect(selectPorts(ports).length).toBe(4);
    expect(usageError(() => selectPorts(ports, 'http'))).toMatch(/"http" is not PORT/);
  });
});

describe('--network and --dns', () => {
  it('knows the three modes and nothing else', () => {
    expect(parseNetworkMode('none')).toBe('none');
    expect(parseNetworkMode('host-loopback')).toBe('host-loopback');
    expect(usageError(() => parseNetworkMode('bridge'))).toMatch(/--network "bridge" is not one of user, host-loopback, none/);
  });
  it('reads IP[:PORT] with port 53 by default', () => {
    expect(parseDnsTarget('127.0.0.53')).toEqual({ ip: '127.0.0.53', port: 53 });
    expect(parseDnsTarget('127.0.0.2:5353')).toEqual({ ip: '127.0.0.2', port: 5353 });
    expect(usageError(() => parseDnsTarget('127.0.0.2:0'))).toMatch(/--dns "127.0.0.2:0"/);
    expect(usageError(() => parseDnsTarget('resolver.example'))).toMatch(/not IPv4-ADDRESS\[:PORT\]/);
  });
  it('makes locally administered unicast MACs, different each time', () => {
    const macs = new Set(Array.from({ length: 50 }, randomMac));
    expect(macs.size).toBe(50);
    for (const mac of macs) {
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02);
    }
  });
});
