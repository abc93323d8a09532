// @ts-check
/**
 * Host tests that need /dev/kvm (small purpose-built guests, not real ones) carry the
 * marker below in their source. Where the host has a /dev/kvm (hardware or PVM) they
 * run in the plain host suite; where it has none (a machine that is itself a PVM
 * guest), vitest.config.ts leaves them out, saying so, and scripts/e2e.sh runs them
 * together in one nested-KVM L1 (which has a real /dev/kvm) when
 * VMRUN_E2E_HOST_KVM=1. The marker is the one fact both read.
 */
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The marker a host test file carries when it boots guests on /dev/kvm. */
export const NEEDS_KVM_MARKER = 'vmrun-test: needs /dev/kvm';
/** Set to 1 to run the marked files in one nested-KVM L1 on a host without /dev/kvm. */
export const HOST_KVM_IN_L1_VARIABLE = 'VMRUN_E2E_HOST_KVM';
/** The KVM device the tests use. */
export const KVM_DEVICE = '/dev/kvm';

/** True when this host has a KVM device the tests can open. */
export function hostHasKvm() {
  try {
    accessSync(KVM_DEVICE, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Every host test file (outside test/e2e) that carries the marker, relative to the repo, sorted. @returns {string[]} */
export function hostKvmTestFiles() {
  /** @type {string[]} */
  const files = [];
  const walk = (/** @type {string} */ dir) => {
    for (const entry of readdirSync(join(REPO, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (path !== 'test/e2e') walk(path);
      } else if (entry.name.endsWith('.test.ts') && readFileSync(join(REPO, path), 'utf8').includes(NEEDS_KVM_MARKER)) {
        files.push(path);
      }
    }
  };
  walk('test');
  return files.sort();
}
