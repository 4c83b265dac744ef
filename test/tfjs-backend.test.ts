// The TF.js backend 'mobilenet-wasm' (src/tfjs): every overridden kernel against the 'cpu'
// backend on seeded random inputs (odd channel counts, both strides, same / valid / explicit
// padding, bias, activations, batch > 1), the cases that must fall back, the packed-weight
// cache, and unmodified nsfwjs (its bundled MobileNetV2) classifying the sample images the
// same on both backends. Call counters in the backend prove our kernels ran: a silent
// fallback to the cpu kernels would fail the tests.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import * as nsfwjs from 'nsfwjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  BACKEND_NAME, getMobileNetWasmBackend, OVERRIDDEN_KERNELS, registerMobileNetWasmBackend, type MobileNetWasmBackend,
} from '../src/tfjs/index.js';
import { decodeImage } from '../src/image.js';
import { mulberry32 } from './helpers/wasm.js';

let backend: MobileNetWasmBackend;

beforeAll(async () => {
  tf.enableProdMode(); // silences the cpu backend's "install tfjs-node" banner; no effect on results
  expect(await tf.setBackend(BACKEND_NAME)).toBe(true);
  const b = getMobileNetWasmBackend();
  if (!b) throw new Error('backend not initialised');
  backend = b;
});

function uniform(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Runs `f` on 'cpu' and on our backend (tensors made inside, on that backend); returns both outputs. */
async function onBoth(f: () => tf.Tensor): Promise<{ ref: Float32Array; ours: Float32Array; shape: number[] }> {
  await tf.setBackend('cpu');
  const r = tf.tidy(f);
  const ref = Float32Array.from(r.dataSync());
  r.dispose();
  await tf.setBackend(BACKEND_NAME);
  const o = tf.tidy(f);
  const ours = Float32Array.from(o.dataSync());
  expect(o.shape).toEqual(r.shape);
  o.dispose();
  return { ref, ours, shape: r.shape };
}

/** max |ours - ref| / max |ref|: the error relative to the output's scale. */
function relErr(ours: Float32Array, ref: Float32Array): number {
  expect(ours.length).toBe(ref.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(ours[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return d / Math.max(m, 1e-30);
}

/** Checks f on both backends and that `kernel` ran on our kernels exactly `calls` times, never on cpu. */
async function check(kernel: string, f: () => tf.Tensor, { calls = 1, tol = 1e-5 } = {}): Promise<void> {
  backend.resetStats();
  const { ref, ours } = await onBoth(f);
  expect(backend.stats.fallback[kernel] ?? 0, JSON.stringify(backend.stats.reasons)).toBe(0);
  expect(backend.stats.ours[kernel] ?? 0).toBe(calls);
  expect(relErr(ours, ref)).toBeLessThanOrEqual(tol);
}

/** Checks f on both backends and that `kernel` fell back to cpu (correctly) with `reason`. */
async function checkFallback(kernel: string, reason: string, f: () => tf.Tensor): Promise<void> {
  backend.resetStats();
  const { ref, ours } = await onBoth(f);
  expect(backend.stats.ours[kernel] ?? 0).toBe(0);
  expect(backend.stats.reasons[`${kernel}: ${reason}`]).toBe(1);
  expect(relErr(ours, ref)).toBeLessThanOrEqual(1e-6);
}

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
type Act = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu' | 'prelu';

describe('registration', () => {
  it('registers every cpu kernel under the new name, and ours over the listed ones', () => {
    const cpu = tf.getKernelsForBackend('cpu').map((k) => k.kernelName);
    const mine = new Set(tf.getKernelsForBackend(BACKEND_NAME).map((k) => k.kernelName));
    for (const k of cpu) expect(mine.has(k), k).toBe(true);
    for (const k of Object.keys(OVERRIDDEN_KERNELS)) {
      expect(tf.getKernel(k, BACKEND_NAME).kernelFunc).not.toBe(tf.getKernel(k, 'cpu').kernelFunc);
    }
    for (const k of ['Conv2D', 'FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2D', 'Relu6', 'Add', 'AvgPool',
      'BatchMatMul', '_FusedMatMul']) {
      expect(Object.keys(OVERRIDDEN_KERNELS)).toContain(k);
    }
    expect(tf.getKernel('Softmax', BACKEND_NAME).kernelFunc).toBe(tf.getKernel('Softmax', 'cpu').kernelFunc);
  });

  it('shares one tfjs-core (engine, Tensor class, kernel registry) with @tensorflow/tfjs and nsfwjs', async () => {
    const core = await import('@tensorflow/tfjs-core');
    expect(core.engine()).toBe(tf.engine());
    expect(core.Tensor).toBe(tf.Tensor);
    expect(core.findBackendFactory(BACKEND_NAME)).toBe(tf.findBackendFactory(BACKEND_NAME));
  });

  it('refuses a second registration under the same name, and is a MathBackendCPU', () => {
    expect(registerMobileNetWasmBackend()).toBe(false);
    expect(tf.getBackend()).toBe(BACKEND_NAME);
    expect(backend).toBeInstanceOf(MathBackendCPU);
    expect(['simd', 'relaxed']).toContain(backend.build);
    expect(['x86', 'arm']).toContain(backend.variant);
  });
});

describe('options', () => {
  it('registers a second backend with forced scalar kernels that gives the same results', async () => {
    expect(registerMobileNetWasmBackend({ name: 'mnw-scalar', kernels: 'scalar', build: 'simd' })).toBe(true);
    const xv = uniform(95, 7 * 6 * 5);
    const fv = uniform(96, 3 * 3 * 5 * 9);
    const f = () => tf.fused.conv2d({ x: tf.tensor4d(xv, [1, 7, 6, 5]), filter: tf.tensor4d(fv, [3, 3, 5, 9]), strides: 2, pad: 'same', activation: 'relu6' });
    const { ref } = await onBoth(f);
    expect(await tf.setBackend('mnw-scalar')).toBe(true);
    const scalar = getMobileNetWasmBackend('mnw-scalar');
    expect(scalar?.variant).toBe('scalar');
    expect(scalar?.build).toBe('simd');
    const y = tf.tidy(f);
    expect(relErr(Float32Array.from(y.dataSync()), ref)).toBeLessThanOrEqual(1e-5);
    y.dispose();
    expect(scalar?.stats.ours.FusedConv2D).toBe(1);
    await tf.setBackend(BACKEND_NAME);
    tf.removeBackend('mnw-scalar');
  });
});

describe('convolutions vs the cpu backend', () => {
  const convCase = (xs: number[], fs: number[], strides: 1 | 2, pad: Pad, seed: number) => {
    const xv = uniform(seed, size(xs));
    const fv = uniform(seed + 1, size(fs));
    return {
      x: () => tf.tensor4d(xv, xs as [number, number, number, number]),
      f: () => tf.tensor4d(fv, fs as [number, number, number, number]),
      strides, pad,
    };
  };

  for (const k of [1, 3]) {
    for (const strides of [1, 2] as const) {
      for (const pad of ['same', 'valid'] as const) {
        it(`Conv2D ${k}x${k} stride ${strides} ${pad}, batch 2, 13 -> 11 channels`, async () => {
          const c = convCase([2, 9, 10, 13], [k, k, 13, 11], strides, pad, 10 * k + strides);
          await check('Conv2D', () => tf.conv2d(c.x(), c.f(), c.strides, c.pad));
        });
      }
    }
  }

  it('Conv2D 3x3 with explicit padding, 5 -> 19 channels', async () => {
    const c = convCase([1, 11, 10, 5], [3, 3, 5, 19], 2, [[0, 0], [1, 0], [0, 2], [0, 0]], 3);
    await check('Conv2D', () => tf.conv2d(c.x(), c.f(), c.strides, c.pad as never));
  });

  it('Conv2D on a 3-D input (batch dimension added by the op)', async () => {
    const c = convCase([1, 8, 7, 3], [3, 3, 3, 9], 2, 'same', 4);
    await check('Conv2D', () => tf.conv2d(c.x().squeeze([0]) as tf.Tensor3D, c.f(), 2, 'same'));
  });

  const acts: Act[] = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'];
  for (const k of [1, 3]) {
    for (const activation of acts) {
      for (const strides of [1, 2] as const) {
        it(`FusedConv2D ${k}x${k} stride ${strides} + bias + ${activation}`, async () => {
          const c = convCase([2, 7, 9, 7], [k, k, 7, 13], strides, 'same', 100 + k * 10 + strides);
          const bias = uniform(7, 13);
          const alpha = uniform(8, 13, 0, 0.5);
          await check('FusedConv2D', () => tf.fused.conv2d({
            x: c.x(), filter: c.f(), strides, pad: 'same', bias: tf.tensor1d(bias), activation,
            preluActivationWeights: activation === 'prelu' ? tf.tensor1d(alpha) : undefined,
            leakyreluAlpha: 0.15,
          }));
        });
      }
    }
  }

  it('FusedConv2D with a scalar bias and no bias', async () => {
    const c = convCase([1, 6, 6, 9], [1, 1, 9, 5], 1, 'valid', 21);
    await check('FusedConv2D', () => tf.fused.conv2d({ x: c.x(), filter: c.f(), strides: 1, pad: 'valid', bias: tf.scalar(0.7), activation: 'relu6' }));
    await check('FusedConv2D', () => tf.fused.conv2d({ x: c.x(), filter: c.f(), strides: 1, pad: 'valid' }));
  });

  for (const strides of [1, 2] as const) {
    for (const pad of ['same', 'valid'] as const) {
      it(`DepthwiseConv2dNative 3x3 stride ${strides} ${pad}, batch 2, 13 channels`, async () => {
        const c = convCase([2, 10, 9, 13], [3, 3, 13, 1], strides, pad, 30 + strides);
        await check('DepthwiseConv2dNative', () => tf.depthwiseConv2d(c.x(), c.f(), c.strides, c.pad));
      });
    }
  }

  for (const activation of ['linear', 'relu', 'relu6', 'leakyrelu'] as const) {
    for (const strides of [1, 2] as const) {
      it(`FusedDepthwiseConv2D stride ${strides} + bias + ${activation}, 7 channels`, async () => {
        const c = convCase([1, 9, 11, 7], [3, 3, 7, 1], strides, 'same', 40 + strides);
        const bias = uniform(9, 7);
        await check('FusedDepthwiseConv2D', () => tf.fused.depthwiseConv2d({
          x: c.x(), filter: c.f(), strides, pad: 'same', bias: tf.tensor1d(bias), activation, leakyreluAlpha: 0.1,
        }));
      });
    }
  }
});

describe('matrix products, elementwise and pooling vs the cpu backend', () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`BatchMatMul 5x37 * 37x19 transposeA=${ta} transposeB=${tb}`, async () => {
      const av = uniform(50, 5 * 37);
      const bv = uniform(51, 37 * 19);
      await check('BatchMatMul', () => tf.matMul(
        tf.tensor2d(av, ta ? [37, 5] : [5, 37]), tf.tensor2d(bv, tb ? [19, 37] : [37, 19]), ta, tb));
    });
  }

  it('BatchMatMul with a batched a and one b', async () => {
    const av = uniform(52, 3 * 4 * 37);
    const bv = uniform(53, 37 * 19);
    await check('BatchMatMul', () => tf.matMul(tf.tensor3d(av, [3, 4, 37]), tf.tensor3d(bv, [1, 37, 19])));
  });

  for (const activation of ['linear', 'relu', 'relu6', 'sigmoid'] as const) {
    it(`_FusedMatMul 1x61 * 61x11 + bias + ${activation}`, async () => {
      const av = uniform(54, 61);
      const bv = uniform(55, 61 * 11);
      const bias = uniform(56, 11);
      await check('_FusedMatMul', () => tf.fused.matMul({
        a: tf.tensor2d(av, [1, 61]), b: tf.tensor2d(bv, [61, 11]), bias: tf.tensor1d(bias), activation,
      }));
    });
  }

  const shape = [2, 5, 7, 13];
  const xv = uniform(60, size(shape), -8, 8);
  const yv = uniform(61, size(shape), -8, 8);
  const x = () => tf.tensor(xv, shape);
  it('Relu6, Relu, ClipByValue, Add on odd sizes', async () => {
    await check('Relu6', () => tf.relu6(x()), { tol: 0 });
    await check('Relu', () => tf.relu(x()), { tol: 0 });
    await check('ClipByValue', () => tf.clipByValue(x(), -0.5, 2.25), { tol: 0 });
    await check('Add', () => tf.add(x(), tf.tensor(yv, shape)), { tol: 0 });
  });

  it('AvgPool over the whole map', async () => {
    await check('AvgPool', () => tf.avgPool(x() as tf.Tensor4D, [5, 7], 1, 'valid'));
  });

  it('PadV2 and FusedBatchNorm', async () => {
    await check('PadV2', () => tf.pad(x(), [[0, 0], [0, 1], [2, 1], [0, 0]]), { tol: 0 });
    await check('PadV2', () => tf.pad(x(), [[1, 0], [0, 0], [1, 1], [0, 3]], 1.5), { tol: 0 });
    await check('PadV2', () => tf.pad(tf.tensor1d([1, 2, 3], 'int32'), [[2, 1]], 7), { tol: 0 });
    await check('PadV2', () => tf.pad(x(), [[1, 2], [0, 0], [0, 0], [0, 0]]), { tol: 0 });
    await check('PadV2', () => tf.pad(x(), [[0, 0], [0, 0], [0, 0], [0, 0]]), { tol: 0 });
    await check('PadV2', () => tf.pad(x(), [[0, 0], [0, 0], [0, 0], [2, 0]], -1), { tol: 0 });
    const c = (s: number) => tf.tensor1d(uniform(s, 13, 0.2, 2));
    await check('FusedBatchNorm', () => tf.batchNorm(x(), c(62), c(63), c(64), c(65), 1e-3), { tol: 1e-6 });
    await check('FusedBatchNorm', () => tf.batchNorm(x(), c(62), c(63)), { tol: 1e-6 });
  });
});

describe('fallbacks to the cpu kernels (counted, still correct)', () => {
  const xv = uniform(70, 1 * 9 * 9 * 6);
  const x = () => tf.tensor4d(xv, [1, 9, 9, 6]);
  it('5x5 filters, dilations, channel multiplier 2, broadcasting add, batched b, non-global pool', async () => {
    const f5 = uniform(71, 5 * 5 * 6 * 4);
    await checkFallback('Conv2D', '5x5 filter', () => tf.conv2d(x(), tf.tensor4d(f5, [5, 5, 6, 4]), 1, 'same'));
    const f3 = uniform(72, 3 * 3 * 6 * 4);
    await checkFallback('Conv2D', 'dilations', () => tf.conv2d(x(), tf.tensor4d(f3, [3, 3, 6, 4]), 1, 'same', 'NHWC', 2));
    const d2 = uniform(73, 3 * 3 * 6 * 2);
    await checkFallback('DepthwiseConv2dNative', 'channel multiplier 2',
      () => tf.depthwiseConv2d(x(), tf.tensor4d(d2, [3, 3, 6, 2]), 1, 'same'));
    await checkFallback('Add', 'broadcast', () => tf.add(x(), tf.tensor1d(uniform(74, 6))));
    await checkFallback('BatchMatMul', 'batched b',
      () => tf.matMul(tf.tensor3d(uniform(75, 2 * 3 * 4), [2, 3, 4]), tf.tensor3d(uniform(76, 2 * 4 * 5), [2, 4, 5])));
    await checkFallback('AvgPool', 'not a global pool', () => tf.avgPool(x(), 3, 2, 'same'));
  });
});

describe('packed weight cache', () => {
  it('packs a filter once, reuses it, and frees it with the tensor', async () => {
    await tf.setBackend(BACKEND_NAME);
    const before = backend.cachedWeightBytes();
    const filter = tf.tensor4d(uniform(80, 3 * 3 * 8 * 16), [3, 3, 8, 16]);
    const x = tf.tensor4d(uniform(81, 10 * 10 * 8), [1, 10, 10, 8]);
    const y1 = tf.conv2d(x, filter, 1, 'same');
    const packed = backend.cachedWeightBytes() - before;
    expect(packed).toBeGreaterThanOrEqual(2 * (9 * 8 + 1) * 8 * 4);
    const y2 = tf.conv2d(x, filter, 1, 'same');
    expect(backend.cachedWeightBytes() - before).toBe(packed);
    expect(Array.from(y2.dataSync())).toEqual(Array.from(y1.dataSync()));
    // The same filter with a bias is a second packing (the bias is folded in).
    const bias = tf.tensor1d(uniform(82, 16));
    const y3 = tf.fused.conv2d({ x, filter, bias, strides: 1, pad: 'same' });
    expect(backend.cachedWeightBytes() - before).toBe(2 * packed);
    bias.dispose();
    expect(backend.cachedWeightBytes() - before).toBe(packed);
    filter.dispose();
    expect(backend.cachedWeightBytes()).toBe(before);
    tf.dispose([x, y1, y2, y3]);
  });
});

describe('tensors made on another backend', () => {
  it('moves them here and runs our kernel, as a model loaded on cpu would', async () => {
    await tf.setBackend('cpu');
    const filter = tf.tensor4d(uniform(90, 3 * 3 * 5 * 7), [3, 3, 5, 7]);
    const x = tf.tensor4d(uniform(91, 8 * 8 * 5), [1, 8, 8, 5]);
    const ref = tf.tidy(() => Float32Array.from(tf.conv2d(x, filter, 2, 'same').dataSync()));
    await tf.setBackend(BACKEND_NAME);
    backend.resetStats();
    const y = tf.conv2d(x, filter, 2, 'same');
    expect(backend.stats.ours.Conv2D).toBe(1);
    expect(relErr(Float32Array.from(y.dataSync()), ref)).toBeLessThanOrEqual(1e-5);
    tf.dispose([filter, x, y]);
  });
});

describe('nsfwjs (unmodified, its bundled MobileNetV2) on this backend vs cpu', () => {
  const models: Record<string, nsfwjs.NSFWJS> = {};

  beforeAll(async () => {
    // Each backend gets its own model instance, so weights are not moved between backends.
    for (const name of ['cpu', BACKEND_NAME]) {
      await tf.setBackend(name);
      models[name] = await nsfwjs.load(); // the default model: bundled JS-wrapped files, no network
    }
  });

  for (const file of ['samples/cat-photo.jpg', 'samples/beach-trip-drawing.png']) {
    it(`classifies ${file} the same (probabilities within 1e-4)`, async () => {
      const img = await decodeImage(new Uint8Array(readFileSync(file)));
      const rgb = new Int32Array(img.width * img.height * 3);
      for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
        rgb[i] = img.data[j];
        rgb[i + 1] = img.data[j + 1];
        rgb[i + 2] = img.data[j + 2];
      }
      const results: Record<string, { className: string; probability: number }[]> = {};
      for (const name of ['cpu', BACKEND_NAME]) {
        await tf.setBackend(name);
        backend.resetStats();
        const t = tf.tensor3d(rgb, [img.height, img.width, 3], 'int32');
        results[name] = await models[name].classify(t, 5);
        t.dispose();
        if (name === BACKEND_NAME) {
          const s = backend.stats;
          // MobileNetV2 as tfjs-layers runs it: 35 convolutions (1x1 and the 3x3 stem), 17
          // depthwise, 3 dense, 10 residual adds, 1 average pool; none fell back.
          expect(s.ours.FusedConv2D).toBe(35);
          expect(s.ours.DepthwiseConv2dNative).toBe(17);
          expect(s.ours._FusedMatMul).toBe(3);
          expect(s.ours.AvgPool).toBe(1);
          expect(s.ours.Add).toBe(10);
          for (const k of ['FusedConv2D', 'DepthwiseConv2dNative', '_FusedMatMul', 'AvgPool']) {
            expect(s.fallback[k] ?? 0, JSON.stringify(s.reasons)).toBe(0);
          }
        }
      }
      const ref = results.cpu;
      const ours = results[BACKEND_NAME];
      expect(ours.map((r) => r.className)).toEqual(ref.map((r) => r.className));
      for (let i = 0; i < ref.length; i++) expect(Math.abs(ours[i].probability - ref[i].probability)).toBeLessThanOrEqual(1e-4);
    });
  }
});
