#!/usr/bin/env node
// The vmrun CLI. Latency-critical commands (snapshot restore) take a fast path that
// never loads oclif, bundled into one module at build time (module loading is most
// of its start-up cost); everything else is dispatched by oclif to dist/commands.
const { tryFastPath } = await import('../dist/cli/fast-path.bundle.js');
const status = await tryFastPath(process.argv.slice(2));
if (status !== undefined) {
  process.exitCode = status;
} else {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
}
