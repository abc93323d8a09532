/**
 * The bounds of a background restore (snapshot restore -d, --count N): the host's
 * start report must wait for the whole identity refresh inside it, and restores that
 * share the cores get their share of time (a clone once failed because its agent's
 * wait stayed at one VM's while three clones shared two cores).
 */
import { describe, expect, it } from 'vitest';
import { restoreStartBounds } from '../../src/vmhost/clones.js';
import { DEFAULT_START_TIMEOUT_MS } from '../../src/vmhost/start.js';
import { IDENTITY_WAIT_MS } from '../../src/agent/identity.js';

describe('restoreStartBounds', () => {
  it('gives one restore the agent wait and, on top of it, the host start bound', () => {
    expect(restoreStartBounds(1, 2)).toEqual({ agentWaitMs: IDENTITY_WAIT_MS, startMs: DEFAULT_START_TIMEOUT_MS + IDENTITY_WAIT_MS });
  });

  it('scales both with restores per core, rounding up', () => {
    const one = restoreStartBounds(1, 2);
    expect(restoreStartBounds(2, 2)).toEqual(one);
    expect(restoreStartBounds(3, 2)).toEqual({ agentWaitMs: 2 * one.agentWaitMs, startMs: 2 * one.startMs });
    expect(restoreStartBounds(20, 4)).toEqual({ agentWaitMs: 5 * one.agentWaitMs, startMs: 5 * one.startMs });
  });

  it('keeps the whole agent wait inside the start bound, with the host start besides', () => {
    for (const [count, cores] of [[1, 1], [3, 2], [256, 2], [7, 64]] as const) {
      const { startMs, agentWaitMs } = restoreStartBounds(count, cores);
      expect(startMs - agentWaitMs).toBeGreaterThanOrEqual(DEFAULT_START_TIMEOUT_MS);
    }
  });

  it('takes a host that reports no cores as one', () => {
    expect(restoreStartBounds(3, 0)).toEqual(restoreStartBounds(3, 1));
  });
});
