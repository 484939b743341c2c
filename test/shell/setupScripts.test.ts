import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../core/helpers';

const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(path.join(repoRoot(), rel)).href)) as T;

test('set-up children get the user environment without the outer npm settings (the code-server Node 20 failure)', async () => {
  const { childEnv } = await load<{ childEnv: (extra?: Record<string, string>, base?: Record<string, string>) => Record<string, string> }>('scripts/childEnv.mjs');
  const outer = {
    PATH: '/usr/bin', HOME: '/home/u', EDITOR: 'vim', NODE_OPTIONS: '--max-old-space-size=4096',
    npm_config_user_agent: 'npm/11.19.1 node/v20.20.2 linux x64', npm_config_nodedir: '/usr', npm_lifecycle_event: 'test',
    npm_package_name: 'finetune-lab', npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js', NPM_CONFIG_CACHE: '/x', INIT_CWD: '/repo', NODE: '/usr/bin/node',
  };
  const env = childEnv({ npm_config_nodedir: '/node24' }, outer);
  assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/u', EDITOR: 'vim', NODE_OPTIONS: '--max-old-space-size=4096', npm_config_nodedir: '/node24' });
});

test('the fresh-machine check names each stage of npm test with its duration', async () => {
  const { stagesOf } = await load<{ stagesOf: (l: { t: number; line: string }[], end: number) => { stage: string; seconds: number }[] }>('scripts/freshCheck.mjs');
  const lines = [
    [0, '> finetune-lab@0.1.0 test'], [1_000, '[setup] installing npm packages (npm ci)…'], [22_000, '[setup] creating the trainer\'s virtual environment .venv with python3…'],
    [23_000, '[setup] installing the trainer\'s requirements into .venv'], [150_000, '> finetune-lab@0.1.0 check-types'], [170_000, '> finetune-lab@0.1.0 test:unit'],
    [230_000, '> finetune-lab@0.1.0 test:py'], [330_000, '> finetune-lab@0.1.0 test:e2e'], [470_000, '[e2e 5s] building the VSIX (npm run package)…'],
  ].map(([t, line]) => ({ t: t as number, line: line as string }));
  assert.deepEqual(stagesOf(lines, 500_000), [
    { stage: 'npm ci', seconds: 21 }, { stage: 'trainer .venv (pip)', seconds: 128 }, { stage: 'type check', seconds: 20 },
    { stage: 'unit tests (node --test)', seconds: 60 }, { stage: 'pytest', seconds: 100 }, { stage: 'e2e set-up (apt, Node 24, code-server)', seconds: 140 },
    { stage: 'e2e: VSIX', seconds: 30 },
  ]);
});
