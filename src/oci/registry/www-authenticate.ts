import { VmrunError } from '../../errors.js';
import { Limits } from '../limits.js';

/** One authentication challenge from a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** Lower-cased scheme: `bearer` or `basic` (others are kept but unused). */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 7235): one or more challenges, each a
 * scheme followed by comma-separated `key=value` or `key="quoted value"` params.
 * Bounded in length; malformed input is an error naming the registry.
 */
export function parseWwwAuthenticate(header: string, registry: string): AuthChallenge[] {
  if (header.length > Limits.authenticateHeaderChars) {
    throw new VmrunError('registry', `registry ${registry}: WWW-Authenticate header is longer than ${Limits.authenticateHeaderChars} characters`);
  }
  const bad = (why: string) => new VmrunError('registry', `registry ${registry}: malformed WWW-Authenticate header (${why}): ${header.slice(0, 200)}`);
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < header.length && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(header.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  while (i < header.length) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const scheme = token();
    if (!scheme) throw bad(`expected an auth scheme at position ${i}`);
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skipSpace();
      const save = i;
      const key = token();
      skipSpace();
      if (!key || header[i] !== '=') {
        // Not a param: the start of the next challenge.
        i = save;
        break;
      }
      i++; // '='
      skipSpace();
      let value = '';
      if (header[i] === '"') {
        i++;
        for (;;) {
          if (i >= header.length) throw bad('unterminated quoted string');
          const c = header[i++]!;
          if (c === '"') break;
          value += c === '\\' && i < header.length ? header[i++] : c;
        }
      } else {
        // Unquoted: RFC 7235 says token, but servers send bare URLs too; read to the next comma.
        const m = /^[^,\s"]*/.exec(header.slice(i))!;
        value = m[0];
        i += value.length;
      }
      challenge.params[key.toLowerCase()] = value;
      skipSpace();
      if (header[i] !== ',') break;
      i++;
    }
    if (challenges.length > 16) throw bad('too many challenges');
  }
  return challenges;
}
