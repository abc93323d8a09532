#!/usr/bin/env node
// The vmrun CLI. Latency-critical commands (snapshot restore) take a fast path that
// never loads oclif; everything else is dispatched by oclif to dist/commands.
const { tryFastPath } = await import('../dist/cli/fast-path.js');
const status = await tryFastPath(process.argv.slice(2));
if (status !== undefined) {
  process.exitCode = status;
} else {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
}
