#!/usr/bin/env node
// The vmrun CLI: oclif dispatches to the compiled commands in dist/commands.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
