/**
 * vmrun's error model: every failure a user can cause or meet is a VmrunError with a
 * typed `kind`, so callers test for a kind of failure instead of matching strings,
 * and the CLI prints one line and exits 125 (docker's code for the tool's own failure).
 */

/** The kinds of failure vmrun reports. Extend this union; never match on messages. */
export type VmrunErrorKind =
  | 'usage' // bad flag or argument
  | 'not-found' // a file, image, VM or snapshot that does not exist
  | 'host' // the host cannot do it (no /dev/kvm, permission, missing capability)
  | 'kernel-format' // a kernel file that is neither a bzImage, vmlinux ELF nor Hermit ELF
  | 'guest' // the guest did something vmrun cannot continue from (emulation failure...)
  | 'registry' // a registry refused, failed or answered nonsense
  | 'image' // a malformed manifest, config or layer
  | 'digest' // content did not match its digest
  | 'snapshot' // a snapshot file that is corrupt, truncated, too new or incompatible
  | 'internal'; // a bug in vmrun

/** Exit code for vmrun's own failures (the guest's code passes through otherwise). */
export const VMRUN_FAILURE_EXIT_CODE = 125;

export class VmrunError extends Error {
  override readonly name = 'VmrunError';
  constructor(
    readonly kind: VmrunErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isVmrunError(e: unknown, kind?: VmrunErrorKind): e is VmrunError {
  // By shape, not instanceof: the CLI's bundled fast path and the modules it loads
  // lazily each hold their own copy of this class.
  const v = e as { name?: unknown; kind?: unknown } | null;
  const shaped = e instanceof Error && v !== null && v.name === 'VmrunError' && typeof v.kind === 'string';
  return shaped && (kind === undefined || v.kind === kind);
}

/**
 * Errors thrown by the native addon carry a `code` (see native/binding/errors.h);
 * map them onto VmrunError kinds so the library never leaks raw native errors.
 */
export function fromNativeError(e: unknown): VmrunError {
  if (isVmrunError(e)) return e;
  const err = e as { message?: string; code?: string };
  const kind = nativeCodeToKind[err.code ?? ''] ?? 'internal';
  return new VmrunError(kind, err.message ?? String(e), { cause: e });
}

const nativeCodeToKind: Record<string, VmrunErrorKind> = {
  VMRUN_HOST: 'host',
  VMRUN_KERNEL_FORMAT: 'kernel-format',
  VMRUN_USAGE: 'usage',
  VMRUN_NOT_FOUND: 'not-found',
  VMRUN_GUEST: 'guest',
  VMRUN_SNAPSHOT: 'snapshot',
};
