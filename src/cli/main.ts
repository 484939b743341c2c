#!/usr/bin/env node
// Entry point of dist/cli.js (`finetune-lab`); the commands live in commands.ts so tests can call main().
import { main, UsageError, USAGE } from './commands';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const usage = e instanceof UsageError || !!(e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`finetune-lab: ${(e as Error).message}${usage ? `\n${USAGE}` : ''}`);
    process.exit(usage ? 2 : 1);
  },
);
