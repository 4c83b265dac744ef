// Startup. V8 first runs wasm code from its baseline compiler (Liftoff), where these kernels
// are 2-3x slower, and recompiles a function with its optimizing compiler (TurboFan), on a
// background thread, only once it has run for a while. A model's first run() therefore ran
// mostly on baseline code (~45 ms instead of ~15 ms for MobileNetV2). Compiled code belongs
// to the module, not the instance: a tiny network that uses the same kernels, run a few
// times on a throwaway instance as soon as the module is compiled, gets them optimized on
// the other core while load() reads, plans and packs the real model.

import type { LayerDesc, ModelSource, StoredTensor } from './desc.js';
import { argAddress, buildPlan, layoutFor } from './plan.js';
import { instantiateKernels, THREADED_MAX_PAGES, type KernelVariant, type WasmBuild } from './wasm.js';

/** Runs of the tiny network: enough for V8's tier-up budget of the kernels' inner loops. */
const ROUNDS = 6;

/**
 * 16x16x3 -> stem block (3x3 conv, depthwise, pointwise) -> inverted-residual block with
 * its residual add -> stride-2 block (4x4: with threads, the split path of small layers) ->
 * depthwise-separable block without expansion -> 1x1 conv -> pool -> dense -> softmax. All
 * weights are zero bytes, uint8-quantized as the bundled model is.
 */
function tinyNetwork(): ModelSource {
  const tensors: StoredTensor[] = [];
  const t = (name: string, shape: number[]): string => {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, dtype: 'u8', data: new Uint8Array(n), scale: 1 / 255, min: 0 });
    return name;
  };
  const layers: LayerDesc[] = [];
  let last = 'input';
  const conv = (name: string, k: number, stride: number, inC: number, outC: number, act: 'relu6' | 'linear'): string => {
    layers.push({
      op: 'conv2d', name, input: last, kernel: [k, k], stride, padding: 'same', inChannels: inC, outChannels: outC,
      weights: t(`${name}/w`, [k, k, inC, outC]), bias: t(`${name}/b`, [outC]), activation: act,
    });
    return (last = name);
  };
  const dw = (name: string, stride: number, C: number): string => {
    layers.push({
      op: 'depthwise', name, input: last, kernel: [3, 3], stride, padding: 'same', channels: C,
      weights: t(`${name}/w`, [3, 3, C, 1]), bias: t(`${name}/b`, [C]), activation: 'relu6',
    });
    return (last = name);
  };
  conv('stem', 3, 2, 3, 8, 'relu6');
  dw('stem_dw', 1, 8);
  const blockIn = conv('stem_pw', 1, 1, 8, 8, 'linear');
  conv('b1_expand', 1, 1, 8, 16, 'relu6');
  dw('b1_dw', 1, 16);
  const project = conv('b1_project', 1, 1, 16, 8, 'linear');
  layers.push({ op: 'add', name: 'b1_add', inputs: [blockIn, project] });
  last = 'b1_add';
  conv('b2_expand', 1, 1, 8, 16, 'relu6');
  dw('b2_dw', 2, 16);
  conv('b2_project', 1, 1, 16, 16, 'linear');
  dw('b3_dw', 1, 16);
  conv('b3_pw', 1, 1, 16, 16, 'relu6');
  conv('top', 1, 1, 16, 32, 'relu6');
  layers.push({ op: 'globalAvgPool', name: 'pool', input: last });
  layers.push({
    op: 'dense', name: 'logits', input: 'pool', inFeatures: 32, outFeatures: 10,
    weights: t('logits/w', [32, 10]), bias: t('logits/b', [10]), activation: 'linear',
  });
  layers.push({ op: 'softmax', name: 'probs', input: 'logits' });
  return {
    desc: { family: 'warm-up', input: 'input', inputShape: [1, 16, 16, 3], layers, output: 'probs' },
    tensors,
  };
}

/**
 * Runs the tiny network ROUNDS times, planned as a model of `threads` threads is (the same
 * kernel variant and, with threads, the same shared-memory module), on a throwaway instance.
 * All chunks of every step run here, on the calling thread. Zero weights need no packing.
 */
export async function warmUp(build: WasmBuild, variant: KernelVariant, threads: number): Promise<void> {
  const plan = buildPlan(tinyNetwork(), variant, threads);
  const shared = threads > 1
    ? new WebAssembly.Memory({ initial: 1, maximum: THREADED_MAX_PAGES, shared: true })
    : undefined;
  const wasm = await instantiateKernels(build, shared);
  const k = wasm.exports;
  const layout = layoutFor(plan, k.heap_base());
  wasm.ensureMemory(layout.arenaAt + plan.arenaBytes);
  const resolve = argAddress(plan, layout);
  const calls = plan.steps.flatMap((s) => {
    const fn = k[s.kernel as keyof typeof k] as (...a: number[]) => void;
    return s.chunks.map((perRunner) => {
      const args = perRunner[0].map(resolve);
      return () => fn(...args);
    });
  });
  for (let r = 0; r < ROUNDS; r++) for (const c of calls) c();
}
