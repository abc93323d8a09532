import { arch as hostArch } from 'node:os';
import { VmrunError } from '../errors.js';

/** An OCI platform: the guest OS and CPU an image was built for. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const NODE_TO_OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The platform vmrun runs guests for on this host: linux on the host's CPU. */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_OCI_ARCH[hostArch()] ?? hostArch();
  return { os: 'linux', architecture };
}

/** Parses `--platform os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]{1,32}$/i.test(p))) {
    throw new VmrunError('usage', `platform "${text}" is not of the form os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os: os.toLowerCase(), architecture: architecture.toLowerCase(), ...(variant ? { variant: variant.toLowerCase() } : {}) });
}

/** Canonical spelling: `aarch64` is `arm64`, arm64's default variant `v8` is dropped. */
export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture;
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  let variant = p.variant;
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  return { os: p.os, architecture, ...(variant ? { variant } : {}) };
}

/** True when `candidate` can serve a request for `wanted` (a missing wanted variant matches any). */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  return w.variant === undefined || w.variant === c.variant;
}

/** `os/arch[/variant]` for messages and listings. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
