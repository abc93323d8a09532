/** The job script's quoting, checked against a real POSIX shell. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from './job-dir.js';

describe('shellQuote', () => {
  it.each(['plain', '', "it's", 'a "b" $c `d` \\e', 'line\nbreak', "''", '-n'])(
    'makes sh see %j as one word, unchanged',
    (word) => {
      const result = spawnSync('sh', ['-c', `printf '%s|' ${shellQuote(word)}`], { encoding: 'utf8' });
      expect(result.stdout).toBe(`${word}|`);
    },
  );
});
