/** WWW-Authenticate challenges (src/oci/registry/www-authenticate.ts), as a registry sends them. */
import { parseWwwAuthenticate } from '../../src/oci/registry/www-authenticate.js';
import { refusalsAllowed, type FuzzTarget } from './target.js';

export default {
  name: 'www-authenticate',
  run: (data) =>
    refusalsAllowed(() => {
      // Header values reach the parser as latin1 strings (undici's decoding).
      for (const c of parseWwwAuthenticate(data.toString('latin1'), 'registry.fuzz')) {
        if (typeof c.scheme !== 'string' || Object.values(c.params).some((v) => typeof v !== 'string')) throw new Error('a challenge with a non-string part');
      }
    }),
} satisfies FuzzTarget;
