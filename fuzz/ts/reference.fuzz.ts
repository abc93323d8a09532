/** Image references (src/oci/reference.ts): parse, and a parsed reference must survive format -> parse unchanged. */
import { formatReference, parseReference } from '../../src/oci/reference.js';
import { isExpectedFailure, type FuzzTarget } from './target.js';

export default {
  name: 'reference',
  run(data) {
    let ref;
    try {
      ref = parseReference(data.toString('utf8'));
    } catch (e) {
      if (isExpectedFailure(e)) return;
      throw e;
    }
    const again = parseReference(formatReference(ref));
    if (JSON.stringify(again) !== JSON.stringify(ref)) {
      throw new Error(`reference changed over format -> parse: ${JSON.stringify(ref)} became ${JSON.stringify(again)}`);
    }
  },
} satisfies FuzzTarget;
