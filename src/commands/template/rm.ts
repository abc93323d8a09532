import { Args, Flags } from '@oclif/core';
import { VmrunCommand } from '../../cli/base-command.js';
import { VmrunError } from '../../errors.js';
import { listTemplates, removeTemplateFiles } from '../../snapshot/templates.js';
import { pruneUnusedRamImages } from '../../snapshot/store.js';

export default class TemplateRm extends VmrunCommand {
  static override summary = 'Delete templates (the next run of their image boots and makes a new one)';
  static override examples = ['<%= config.bin %> template rm 3f2a9c1b0d4e', '<%= config.bin %> template rm --all'];
  static override strict = false;
  static override args = { template: Args.string({ description: 'template id, or a unique prefix of one (see vmrun template ls)' }) };
  static override flags = { all: Flags.boolean({ description: 'delete every template' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(TemplateRm);
    const refs = argv as string[];
    if (Boolean(flags.all) === refs.length > 0) throw new VmrunError('usage', 'give template ids or --all (not both)');
    const all = listTemplates();
    const keys = flags.all ? all.map((t) => t.key) : refs.map((ref) => resolveTemplate(ref, all.map((t) => t.key)));
    for (const key of keys) {
      removeTemplateFiles(key);
      this.log(key);
    }
    pruneUnusedRamImages();
  }
}

function resolveTemplate(ref: string, keys: string[]): string {
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new VmrunError('usage', `"${ref}" is not a template id (hex digits; see vmrun template ls)`);
  const matches = keys.filter((k) => k.startsWith(ref));
  if (matches.length === 0) throw new VmrunError('not-found', `no such template: ${ref}`);
  if (matches.length > 1) throw new VmrunError('usage', `template id ${ref} is ambiguous (${matches.length} match): give more digits`);
  return matches[0]!;
}
