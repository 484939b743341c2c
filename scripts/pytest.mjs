#!/usr/bin/env node
// Runs the trainer's pytest suite with the trainer's interpreter ($FINETUNE_LAB_PYTHON or .venv).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.FINETUNE_LAB_PYTHON || join(root, '.venv', 'bin', 'python');
const r = spawnSync(python, ['-m', 'pytest', 'trainer/tests', '-q', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
