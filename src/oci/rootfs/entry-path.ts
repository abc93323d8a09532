import { VmrunError } from '../../errors.js';
import { Limits } from '../limits.js';

/**
 * Normalizes a path from a layer (entry name or hardlink target) to components
 * relative to the root. Rejects absolute paths, `..`, NUL and over-long names:
 * `where` names the layer and entry in the error.
 */
export function entryPathComponents(raw: string, where: string): string[] {
  if (raw.includes('\0')) throw new VmrunError('image', `${where}: path contains a NUL byte`);
  if (raw.length > Limits.pathChars) throw new VmrunError('image', `${where}: path is longer than ${Limits.pathChars} characters`);
  if (raw.startsWith('/')) throw new VmrunError('image', `${where}: absolute path "${raw.slice(0, 200)}" is not allowed in a layer`);
  const parts: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new VmrunError('image', `${where}: path "${raw.slice(0, 200)}" contains ".." (path traversal)`);
    if (p.length > Limits.componentChars) throw new VmrunError('image', `${where}: path component longer than ${Limits.componentChars} characters`);
    parts.push(p);
  }
  return parts;
}
