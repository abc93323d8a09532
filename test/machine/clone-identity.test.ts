import { describe, expect, it } from 'vitest';
import { chooseCloneIdentity, hostnameFor, processMemory, vsockLimits, type SnapshotMetadata } from '../../src/index.js';
import { isVmrunError } from '../../src/errors.js';

const bare: SnapshotMetadata['machine'] = { memoryBytes: 32 << 20, cpus: 1, kernelFormat: 'linux-elf' };
const withDevices: SnapshotMetadata['machine'] = { ...bare, vsock: { cid: 3 }, network: { mode: 'user', publish: [] } };

function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isVmrunError(e, 'usage'), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('clone identity', () => {
  it('draws a locally administered unicast MAC and a CID in range, distinct across a batch and from the saved CID', () => {
    const taken = new Set<number>();
    const ids = Array.from({ length: 50 }, () => chooseCloneIdentity(withDevices, {}, taken));
    const { minCid, maxCid } = vsockLimits();
    for (const id of ids) {
      expect(id.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(parseInt(id.mac!.slice(0, 2), 16) & 3).toBe(2);
      expect(id.vsockCid).toBeGreaterThanOrEqual(minCid);
      expect(id.vsockCid).toBeLessThanOrEqual(maxCid);
      expect(id.vsockCid).not.toBe(3);
    }
    expect(new Set(ids.map((i) => i.vsockCid)).size).toBe(50);
    expect(new Set(ids.map((i) => i.mac)).size).toBe(50);
    expect(taken.size).toBe(50);
  });

  it('keeps what is given (checked), and gives no device identity a snapshot has no device for', () => {
    expect(chooseCloneIdentity(withDevices, { mac: '02:AA:bb:00:00:01', vsockCid: 77, hostname: 'web-1' })).toEqual({ mac: '02:aa:bb:00:00:01', vsockCid: 77, hostname: 'web-1' });
    expect(chooseCloneIdentity(bare)).toEqual({});
    expect(usageError(() => chooseCloneIdentity(withDevices, { mac: '03:00:00:00:00:01' }))).toBe('MAC "03:00:00:00:00:01" is not a unicast address like 02:00:00:00:00:01');
    expect(usageError(() => chooseCloneIdentity(withDevices, { mac: '02:00:00:00:01' }))).toMatch(/^MAC "02:00:00:00:01" is not/);
    expect(usageError(() => chooseCloneIdentity(withDevices, { vsockCid: 2 }))).toMatch(/^vsock CID 2 is out of range \(3-/);
    expect(usageError(() => chooseCloneIdentity(bare, { vsockCid: 7 }))).toBe('a vsock CID was given for a snapshot without a vsock device');
    expect(usageError(() => chooseCloneIdentity(bare, { mac: '02:00:00:00:00:01' }))).toBe('a MAC was given for a snapshot without a network device');
    expect(usageError(() => chooseCloneIdentity(withDevices, { hostname: 'a_b' }))).toMatch(/^hostname "a_b" is not a host name/);
  });

  it('turns a VM name into a host name', () => {
    expect(hostnameFor('web_1.prod')).toBe('web-1-prod');
    expect(hostnameFor('0123456789ab')).toBe('0123456789ab');
    expect(hostnameFor('x'.repeat(70))).toHaveLength(63);
  });
});

describe('process memory', () => {
  it('reads this process\'s smaps rollup; a gone process has none', async () => {
    const m = (await processMemory(process.pid))!;
    expect(m.rssBytes).toBeGreaterThan(1 << 20);
    expect(m.pssBytes).toBeLessThanOrEqual(m.rssBytes);
    expect(m.privateDirtyBytes).toBeGreaterThan(0);
    expect(m.anonymousBytes).toBeGreaterThan(0);
    expect(m.anonymousBytes).toBeLessThanOrEqual(m.rssBytes);
    expect(m.privateDirtyBytes + m.privateCleanBytes + m.sharedCleanBytes + m.sharedDirtyBytes).toBe(m.rssBytes);
    expect(await processMemory(2 ** 22 + 1)).toBeUndefined();
  });
});
