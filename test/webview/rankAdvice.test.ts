import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adviseRank, median, type SpectrumSummary } from '../../src/core/rankAdvice';

function specs(step: number, att: number[], mlp: number[]): SpectrumSummary[] {
  return [
    ...att.map((r) => ({ step, kind: 'attention' as const, rank90: r, shape: [128, 128], random_rank90: 66 })),
    ...mlp.map((r) => ({ step, kind: 'mlp' as const, rank90: r, shape: [512, 128], random_rank90: 98 })),
  ];
}

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([]), null);
});

test('picks the smallest affordable rank covering the larger median, at the latest step, all modules', () => {
  const a = adviseRank([...specs(100, [5, 6, 7], [9, 10, 11]), ...specs(300, [13, 14, 15, 15], [22, 24])], 'full');
  assert.ok(a.ok);
  assert.equal(a.step, 300);
  assert.deepEqual(a.medianRank90, { attention: 14.5, mlp: 23 });
  assert.deepEqual(a.suggested, { rank: 32, alpha: 64, target_modules: 'all' });
  assert.match(a.text, /r=32/);
});

test('attention far below MLP suggests mlp; nothing affordable covers -> the largest, said plainly', () => {
  const a = adviseRank(specs(50, [10, 12], [300, 420]), 'full', [8, 16, 64, 256]);
  assert.deepEqual(a.suggested, { rank: 256, alpha: 512, target_modules: 'mlp' });
  assert.match(a.text, /Even r=256 is below it/);
});

test('refuses LoRA runs and empty spectra', () => {
  assert.equal(adviseRank(specs(10, [3], [4]), 'lora').ok, false);
  assert.equal(adviseRank([], 'full').ok, false);
});

test('rank90 scale: LoRA bars set the axis, a far random reference goes off scale', async () => {
  const { rank90Scale, sharedScale } = await import('../../src/core/rankAdvice');
  // A LoRA r4 run: rank90 ≤ 3, random ≈ 65 / 98 — the bars must not be squashed under 98.
  const lora = rank90Scale(3, 4, [65, 98]);
  assert.ok(lora.max >= 4 && lora.max <= 6, `max ${lora.max}`);
  assert.deepEqual(lora.offScale, [65, 98]);
  // A full run: rank90 up to 37, random 65 within 2× → drawn inside the scale; 98 is not.
  const full = rank90Scale(37, null, [65, 98]);
  assert.ok(full.max >= 65 && full.max < 98, `max ${full.max}`);
  assert.deepEqual(full.offScale, [98]);
  // Side by side: shared only when it keeps each run readable.
  assert.deepEqual(sharedScale([5, 75]), [5, 75]);
  assert.deepEqual(sharedScale([40, 75]), [75, 75]);
});
