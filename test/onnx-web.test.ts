// The exported ONNX file in onnxruntime-web (wasm backend, one thread), in Node. A file of its
// own: onnxruntime-node and onnxruntime-web both register a backend named 'cpu', so they are
// kept out of each other's process (vitest runs each test file in its own worker).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { DEFAULT_MODEL_URL, load, mobilenetV2, readModel } from '../src/index.js';
import type { LoadOptions } from '../src/index.js';
import type { KernelVariant } from '../src/wasm.js';
import type { ModelSource } from '../src/desc.js';
import { mulberry32 } from '../src/builders.js';
import { exportOnnx } from '../src/onnx/export.js';
import { maxRelDiff } from './helpers/wasm.js';

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;

const HAVE_DEFAULT_MODEL = existsSync(fileURLToPath(DEFAULT_MODEL_URL));

/** Our side's load options: ONNX_TEST_KERNELS=scalar|x86|arm forces a kernel variant (to tell export bugs from kernel bugs). */
const OUR_OPTIONS: LoadOptions = process.env.ONNX_TEST_KERNELS ? { kernels: process.env.ONNX_TEST_KERNELS as KernelVariant } : {};

function seededInput(shape: readonly number[], seed: number, lo: number, hi: number): Float32Array {
  const rand = mulberry32(seed);
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = lo + (hi - lo) * rand();
  return x;
}

/** Runs `src` in our wasm and in onnxruntime-web; logs the timing of a few web runs (not asserted). */
async function compareWeb(label: string, src: ModelSource, input: Float32Array): Promise<{ ours: Float32Array; theirs: Float32Array }> {
  const model = await load(src, OUR_OPTIONS);
  const ours = await model.run(input);
  model.dispose();
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(exportOnnx(src), { executionProviders: ['wasm'] });
  const feeds = { input: new ort.Tensor('float32', input, [...src.desc.inputShape]) };
  const first = (await session.run(feeds)).output;
  const firstMs = performance.now() - t0;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  await session.release();
  times.sort((a, b) => a - b);
  console.log(
    `onnxruntime-web ${ort.env.versions.web} wasm, 1 thread, ${label}: ` +
      `create + first run ${firstMs.toFixed(0)} ms, then median ${times[2].toFixed(1)} ms (min ${times[0].toFixed(1)}) of 5 runs`,
  );
  expect(first.dims).toEqual([1, ours.length]);
  return { ours, theirs: first.data as Float32Array };
}

describe('exportOnnx in onnxruntime-web (wasm, Node)', () => {
  it('MobileNetV2 1.0 224 logits agree with Model.run() (max rel diff <= 1e-4)', async () => {
    const src = mobilenetV2({ alpha: 1.0, softmax: false });
    const { ours, theirs } = await compareWeb('MobileNetV2 1.0 224 (random weights)', src, seededInput(src.desc.inputShape, 7, -1, 1));
    const d = maxRelDiff(theirs, ours);
    console.log(`onnxruntime-web MobileNetV2 1.0 224 logits: max rel diff ${d.toExponential(2)}`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });

  it.skipIf(!HAVE_DEFAULT_MODEL)('the bundled default model: probabilities within 1e-4', async () => {
    const src = await readModel();
    const { ours, theirs } = await compareWeb('bundled nsfwjs MobileNetV2', src, seededInput(src.desc.inputShape, 42, 0, 1));
    let d = 0;
    for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
    console.log(`onnxruntime-web bundled model: max abs diff ${d.toExponential(2)}`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });
});
