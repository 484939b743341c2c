// `finetune-lab demo`: the built-in demo experiment (examples/demo.finetune.yaml) copied into the
// runs folder's parent and run through the same path as `run` (RunStore + trainer), then a results table.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** examples/demo.finetune.yaml of this package (next to dist/ or the repo root). */
export function demoExperimentPath(root: string): string {
  return path.join(root, 'examples', 'demo.finetune.yaml');
}

/** Copies the demo experiment beside the runs folder (so a user can edit and rerun it); returns the copy's path. */
export async function writeDemoExperiment(root: string, runsDir: string): Promise<string> {
  const target = path.join(path.dirname(path.resolve(runsDir)), 'demo.finetune.yaml');
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  await fs.promises.copyFile(demoExperimentPath(root), target);
  return target;
}
