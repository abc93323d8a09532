import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';
import * as protocol from '../../src/agent/protocol.js';

// The protocol's numbers are written once per language; this keeps the two equal.
const header = readFileSync(join(REPO, 'guest/init/src/agent_protocol.h'), 'utf8');
function cConstant(name: string): number {
  const m = header.match(new RegExp(`(?:#define\\s+${name}\\s+|\\b${name}\\s*=\\s*)\\(?([0-9a-fx]+)u?(?:\\s*<<\\s*(\\d+))?`, 'i'));
  if (!m) throw new Error(`${name} is not in agent_protocol.h`);
  return Number(m[1]!) << Number(m[2] ?? 0);
}

describe('agent protocol constants', () => {
  it('the TypeScript side matches guest/init/src/agent_protocol.h', () => {
    const pairs: Array<[string, number]> = [
      ['AGENT_VSOCK_PORT', protocol.AGENT_VSOCK_PORT],
      ['AGENT_MAGIC', protocol.AGENT_MAGIC],
      ['AGENT_PROTOCOL_VERSION', protocol.AGENT_PROTOCOL_VERSION],
      ['AGENT_HEADER_BYTES', protocol.AGENT_HEADER_BYTES],
      ['AGENT_MAX_PAYLOAD', protocol.AGENT_MAX_PAYLOAD],
      ['AGENT_MAX_SESSIONS', protocol.AGENT_MAX_SESSIONS],
      ['AGENT_MAX_ARGS', protocol.AGENT_MAX_ARGS],
      ['AGENT_MAX_ENV', protocol.AGENT_MAX_ENV],
      ['AGENT_MAX_PATH', protocol.AGENT_MAX_PATH],
      ['AGENT_MAX_USER', protocol.AGENT_MAX_USER],
      ['AGENT_INITIAL_WINDOW', protocol.AGENT_INITIAL_WINDOW],
      ['AGENT_PROTOCOL_MIN_VERSION', protocol.AGENT_PROTOCOL_MIN_VERSION],
      ['AGENT_MAX_GROUPS', protocol.AGENT_MAX_GROUPS],
      ['AGENT_MAX_ENTROPY', protocol.AGENT_MAX_ENTROPY],
      ['AGENT_MAX_HOSTNAME', protocol.AGENT_MAX_HOSTNAME],
      ...Object.entries(protocol.MessageType).map(([k, v]): [string, number] => [`AGENT_${k}`, v]),
      ...Object.entries(protocol.ErrorCode).map(([k, v]): [string, number] => [`AGENT_ERROR_${k}`, v]),
      ['AGENT_EXEC_TTY', protocol.ExecFlags.TTY],
      ['AGENT_EXEC_STDIN', protocol.ExecFlags.STDIN],
      ['AGENT_EXEC_REPLACE_ENV', protocol.ExecFlags.REPLACE_ENV],
      ['AGENT_COPY_INTO_DIR', protocol.CopyFlags.INTO_DIR],
      ['AGENT_VOLUMES_DETACH', protocol.VolumesOp.DETACH],
      ['AGENT_VOLUMES_ATTACH', protocol.VolumesOp.ATTACH],
    ];
    for (const [name, value] of pairs) expect([name, cConstant(name)]).toEqual([name, value]);
  });
});

describe('frame decoder', () => {
  it('reassembles frames split at any byte and refuses an oversized header', () => {
    const frames = Buffer.concat([
      protocol.encodeFrame(3, protocol.MessageType.STDOUT, Buffer.from('hello')),
      protocol.encodeFrame(4, protocol.MessageType.EXIT, Buffer.alloc(8)),
    ]);
    for (let cut = 0; cut <= frames.length; cut++) {
      const d = new protocol.FrameDecoder();
      const got = [...d.push(frames.subarray(0, cut)), ...d.push(frames.subarray(cut))];
      expect(got.map((f) => [f.stream, f.type, f.payload.toString()])).toEqual([
        [3, protocol.MessageType.STDOUT, 'hello'],
        [4, protocol.MessageType.EXIT, '\0'.repeat(8)],
      ]);
    }
    const huge = Buffer.alloc(12);
    huge.writeUInt32BE(protocol.AGENT_MAX_PAYLOAD + 1, 0);
    expect(() => new protocol.FrameDecoder().push(huge)).toThrow(/limit/);
  });

  it('refuses requests over the limits before sending them', () => {
    const base = { env: [], cwd: '', user: '', tty: false, stdin: false, replaceEnv: false, rows: 0, cols: 0 };
    expect(() => protocol.encodeExec({ ...base, argv: [] })).toThrow(/needs a command/);
    expect(() => protocol.encodeExec({ ...base, argv: ['x'], env: ['NOEQUALS'] })).toThrow(/KEY=VALUE/);
    expect(() => protocol.encodeExec({ ...base, argv: ['x'], cwd: 'relative' })).toThrow(/absolute/);
    expect(() => protocol.encodeExec({ ...base, argv: ['x', 'a\0b'] })).toThrow(/NUL/);
    expect(() => protocol.encodeExec({ ...base, argv: ['x', 'y'.repeat(300000)] })).toThrow(/limit/);
  });
});
