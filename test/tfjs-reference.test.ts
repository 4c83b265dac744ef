// Self-check of the TF.js reference side (bench/peers/tfjs.mjs), which other tests and the
// benchmarks trust: its interpreter against naive JavaScript loops, its fused (peer) form
// against its plain (reference) form, and both against the original nsfwjs model as
// tfjs-layers runs it, on the cpu and wasm backends.
import { mulberry32 } from '../src/builders.js';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerDesc, ModelDesc, ModelSource, Padding, StoredTensor } from '../src/desc.js';
import {
  buildTfjsNetwork,
  dequantizeTensor,
  initTf,
  loadNsfwjsLayersModel,
  nsfwjsLabels,
  nsfwjsModelDir,
} from '../bench/peers/tfjs.mjs';
import { maxAbsDiff } from './helpers/wasm.js';

// ---------------------------------------------------------------------------------------
// Small helpers, deliberately independent of src/ (only its types are used).


function uniform(rand: () => number, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** An f32 StoredTensor, bytes written little-endian explicitly. */
function f32Tensor(name: string, shape: number[], values: Float32Array): StoredTensor {
  const data = new Uint8Array(values.length * 4);
  const view = new DataView(data.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, shape, dtype: 'f32', data };
}

/** Collects seeded random weights for a hand-written desc. */
class Weights {
  readonly tensors: StoredTensor[] = [];
  readonly values = new Map<string, Float32Array>();
  constructor(private readonly rand: () => number) {}
  /** Uniform in [lo, hi); returns the name so descs can be written inline. */
  add(name: string, shape: number[], lo: number, hi: number): string {
    const v = uniform(this.rand, shape.reduce((a, b) => a * b, 1), lo, hi);
    this.tensors.push(f32Tensor(name, shape, v));
    this.values.set(name, v);
    return name;
  }
  /** Weights scaled by 1/sqrt(fanIn) so activations stay O(1) through the net. */
  kernel(name: string, shape: number[], fanIn: number): string {
    const s = 1.5 / Math.sqrt(fanIn);
    return this.add(name, shape, -s, s);
  }
  batchNorm(prefix: string, n: number, withGamma = true) {
    return {
      gamma: withGamma ? this.add(`${prefix}/gamma`, [n], 0.5, 1.5) : undefined,
      beta: this.add(`${prefix}/beta`, [n], -0.5, 0.5),
      mean: this.add(`${prefix}/mean`, [n], -0.5, 0.5),
      variance: this.add(`${prefix}/variance`, [n], 0.2, 1.5),
      epsilon: 1e-3,
    };
  }
}

// ---------------------------------------------------------------------------------------
// A naive NHWC convolution in f64, TF's SAME rule written out, for the interpreter check.

function pads(padding: Padding, inH: number, inW: number, kh: number, kw: number, stride: number) {
  if (padding === 'valid') return { top: 0, bottom: 0, left: 0, right: 0 };
  if (padding !== 'same') return padding;
  // TF SAME: output = ceil(in / stride); the odd pixel of padding goes to the bottom/right.
  const total = (inp: number, k: number) => Math.max((Math.ceil(inp / stride) - 1) * stride + k - inp, 0);
  const th = total(inH, kh);
  const tw = total(inW, kw);
  return { top: Math.floor(th / 2), bottom: th - Math.floor(th / 2), left: Math.floor(tw / 2), right: tw - Math.floor(tw / 2) };
}

/** Conv or depthwise + bias + batch-norm + activation, one output value at a time. */
function naiveConvLayer(l: LayerDesc, x: Float32Array, [, h, w, c]: number[], wv: Map<string, Float32Array>) {
  if (l.op !== 'conv2d' && l.op !== 'depthwise') throw new Error('conv layers only');
  const [kh, kw] = l.kernel;
  const outC = l.op === 'conv2d' ? l.outChannels : l.channels;
  const p = pads(l.padding, h, w, kh, kw, l.stride);
  const oh = Math.floor((h + p.top + p.bottom - kh) / l.stride) + 1;
  const ow = Math.floor((w + p.left + p.right - kw) / l.stride) + 1;
  const k = wv.get(l.weights)!;
  const out = new Float32Array(oh * ow * outC);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let o = 0; o < outC; o++) {
        let s = l.bias ? wv.get(l.bias)![o] : 0;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const iy = oy * l.stride + ky - p.top;
            const ix = ox * l.stride + kx - p.left;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const px = (iy * w + ix) * c;
            if (l.op === 'depthwise') s += x[px + o] * k[(ky * kw + kx) * c + o];
            else for (let i = 0; i < c; i++) s += x[px + i] * k[((ky * kw + kx) * c + i) * outC + o];
          }
        }
        if (l.batchNorm) {
          const bn = l.batchNorm;
          const g = bn.gamma ? wv.get(bn.gamma)![o] : 1;
          const b = bn.beta ? wv.get(bn.beta)![o] : 0;
          s = ((s - wv.get(bn.mean)![o]) / Math.sqrt(wv.get(bn.variance)![o] + bn.epsilon)) * g + b;
        }
        if (l.activation === 'relu') s = Math.max(s, 0);
        if (l.activation === 'relu6') s = Math.min(Math.max(s, 0), 6);
        out[(oy * ow + ox) * outC + o] = s;
      }
    }
  }
  return out;
}

function singleLayerSource(layer: LayerDesc, inputShape: ModelDesc['inputShape'], tensors: StoredTensor[]): ModelSource {
  return { desc: { family: 'test', input: 'input', inputShape, layers: [layer], output: layer.name }, tensors };
}

// ---------------------------------------------------------------------------------------
// The tiny network: every op and padding kind the MobileNets use, in a few KB of weights.

function tinyNetwork(seed: number): ModelSource {
  const w = new Weights(mulberry32(seed));
  const layers: LayerDesc[] = [
    // Stem as Keras writes it: ZeroPadding2D((0,1),(0,1)) folded into a valid stride-2 conv.
    {
      name: 'stem', op: 'conv2d', input: 'input', kernel: [3, 3], stride: 2,
      padding: { top: 0, bottom: 1, left: 0, right: 1 }, inChannels: 3, outChannels: 8,
      weights: w.kernel('stem/w', [3, 3, 3, 8], 27), batchNorm: w.batchNorm('stem/bn', 8), activation: 'relu6',
    },
    {
      name: 'dw', op: 'depthwise', input: 'stem', kernel: [3, 3], stride: 1, padding: 'same', channels: 8,
      weights: w.kernel('dw/w', [3, 3, 8, 1], 9), batchNorm: w.batchNorm('dw/bn', 8, false), activation: 'relu6',
    },
    {
      name: 'project', op: 'conv2d', input: 'dw', kernel: [1, 1], stride: 1, padding: 'valid',
      inChannels: 8, outChannels: 8, weights: w.kernel('project/w', [1, 1, 8, 8], 8),
      bias: w.add('project/b', [8], -0.3, 0.3), activation: 'linear',
    },
    { name: 'residual', op: 'add', inputs: ['stem', 'project'] },
    {
      name: 'down', op: 'conv2d', input: 'residual', kernel: [3, 3], stride: 2, padding: 'same',
      inChannels: 8, outChannels: 16, weights: w.kernel('down/w', [3, 3, 8, 16], 72),
      bias: w.add('down/b', [16], -0.3, 0.3), batchNorm: w.batchNorm('down/bn', 16), activation: 'relu',
    },
    { name: 'pool', op: 'globalAvgPool', input: 'down' },
    {
      name: 'fc1', op: 'dense', input: 'pool', inFeatures: 16, outFeatures: 12,
      weights: w.kernel('fc1/w', [16, 12], 16), bias: w.add('fc1/b', [12], -0.2, 0.2), activation: 'relu',
    },
    {
      name: 'logits', op: 'dense', input: 'fc1', inFeatures: 12, outFeatures: 5,
      weights: w.kernel('logits/w', [12, 5], 12), bias: w.add('logits/b', [5], -0.2, 0.2), activation: 'linear',
    },
    { name: 'probs', op: 'softmax', input: 'logits' },
  ];
  return {
    desc: { family: 'tiny', input: 'input', inputShape: [1, 9, 9, 3], layers, output: 'probs' },
    tensors: w.tensors,
  };
}

// ---------------------------------------------------------------------------------------

describe('dequantizeTensor', () => {
  it('reads f32, f16 (incl. subnormal, inf) and u8 affine', () => {
    const f32 = f32Tensor('a', [3], Float32Array.of(1.5, -2.25, 3e-8));
    expect(Array.from(dequantizeTensor(f32))).toEqual(Array.from(Float32Array.of(1.5, -2.25, 3e-8)));

    const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00, 0x8000];
    const data = new Uint8Array(halves.length * 2);
    halves.forEach((h, i) => new DataView(data.buffer).setUint16(i * 2, h, true));
    const f16 = dequantizeTensor({ name: 'h', shape: [halves.length], dtype: 'f16', data });
    expect(Array.from(f16)).toEqual([1, -2, 65504, 2 ** -24, Math.fround(0.333251953125), Infinity, -0]);

    const u8 = dequantizeTensor({ name: 'q', shape: [2, 2], dtype: 'u8', data: Uint8Array.of(0, 1, 128, 255), scale: 0.01, min: -1 });
    expect(Array.from(u8)).toEqual([-1, 1 * 0.01 - 1, 128 * 0.01 - 1, 255 * 0.01 - 1].map(Math.fround));
  });

  it('rejects a byte count that does not match the shape', () => {
    expect(() => dequantizeTensor({ name: 'bad', shape: [3], dtype: 'f32', data: new Uint8Array(8) })).toThrow(/bad/);
  });
});

describe('buildTfjsNetwork (cpu backend)', () => {
  let tf: any;
  beforeAll(async () => {
    tf = await initTf('cpu');
  });

  it('computes a 1-pixel 3x3 conv and depthwise by hand', () => {
    // On a 1x1 input with SAME padding only the kernel's centre tap sees a pixel.
    const conv: LayerDesc = {
      name: 'c', op: 'conv2d', input: 'input', kernel: [3, 3], stride: 1, padding: 'same',
      inChannels: 1, outChannels: 1, weights: 'w', bias: 'b', activation: 'linear',
    };
    const w = f32Tensor('w', [3, 3, 1, 1], Float32Array.from({ length: 9 }, (_, i) => i + 1));
    const b = f32Tensor('b', [1], Float32Array.of(0.5));
    const dw: LayerDesc = {
      name: 'd', op: 'depthwise', input: 'input', kernel: [3, 3], stride: 1, padding: 'same',
      channels: 2, weights: 'dw', activation: 'relu6',
    };
    // Channel 0 taps 1..9, channel 1 taps -1..-9 (interleaved: [kh, kw, C, 1]).
    const dwW = f32Tensor('dw', [3, 3, 2, 1], Float32Array.from({ length: 18 }, (_, i) => (i % 2 ? -1 : 1) * (Math.floor(i / 2) + 1)));
    for (const fused of [false, true]) {
      const c = buildTfjsNetwork(tf, singleLayerSource(conv, [1, 1, 1, 1], [w, b]), { fused });
      expect(Array.from(c.run(Float32Array.of(2)))).toEqual([5 * 2 + 0.5]);
      c.dispose();
      const d = buildTfjsNetwork(tf, singleLayerSource(dw, [1, 1, 1, 2], [dwW]), { fused });
      // 5 * 2 = 10 clipped to 6; -5 * 3 = -15 clipped to 0.
      expect(Array.from(d.run(Float32Array.of(2, 3)))).toEqual([6, 0]);
      d.dispose();
    }
  });

  it('matches naive loops on conv / depthwise layers with every padding kind', () => {
    const rand = mulberry32(7);
    type Case = { op: 'conv2d' | 'depthwise'; hw: [number, number]; c: number; o: number; k: number; s: number; pad: Padding };
    const cases: Case[] = [
      { op: 'conv2d', hw: [8, 8], c: 3, o: 5, k: 3, s: 2, pad: { top: 0, bottom: 1, left: 0, right: 1 } },
      { op: 'conv2d', hw: [7, 6], c: 4, o: 3, k: 3, s: 2, pad: 'same' },
      { op: 'conv2d', hw: [5, 5], c: 6, o: 7, k: 1, s: 1, pad: 'valid' },
      { op: 'depthwise', hw: [5, 5], c: 6, o: 6, k: 3, s: 2, pad: 'same' },
      { op: 'depthwise', hw: [6, 7], c: 5, o: 5, k: 3, s: 1, pad: 'same' },
      { op: 'depthwise', hw: [8, 8], c: 4, o: 4, k: 3, s: 2, pad: { top: 1, bottom: 0, left: 2, right: 1 } },
    ];
    for (const [n, t] of cases.entries()) {
      const wts = new Weights(rand);
      const shape = t.op === 'conv2d' ? [t.k, t.k, t.c, t.o] : [t.k, t.k, t.c, 1];
      const base = {
        name: `l${n}`, input: 'input', kernel: [t.k, t.k] as [number, number], stride: t.s, padding: t.pad,
        weights: wts.kernel('w', shape, t.k * t.k), bias: wts.add('b', [t.o], -0.5, 0.5),
        batchNorm: wts.batchNorm('bn', t.o, n % 2 === 0), activation: (['relu6', 'linear', 'relu'] as const)[n % 3],
      };
      const layer: LayerDesc = t.op === 'conv2d'
        ? { ...base, op: 'conv2d', inChannels: t.c, outChannels: t.o }
        : { ...base, op: 'depthwise', channels: t.c };
      const inputShape: ModelDesc['inputShape'] = [1, t.hw[0], t.hw[1], t.c];
      const x = uniform(rand, t.hw[0] * t.hw[1] * t.c, -2, 2);
      const want = naiveConvLayer(layer, x, inputShape, wts.values);
      for (const fused of [false, true]) {
        const net = buildTfjsNetwork(tf, singleLayerSource(layer, inputShape, wts.tensors), { fused });
        const got = net.run(x);
        net.dispose();
        expect(got.length, `case ${n} fused=${fused}`).toBe(want.length);
        expect(maxAbsDiff(got, want), `case ${n} fused=${fused}`).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  it('fused and plain agree on the tiny network; nothing leaks', async () => {
    const src = tinyNetwork(42);
    const x = uniform(mulberry32(43), 9 * 9 * 3, 0, 1);
    const plain = buildTfjsNetwork(tf, src, { fused: false });
    const fused = buildTfjsNetwork(tf, src, { fused: true });
    const before = tf.memory().numTensors;
    const probs = plain.run(x);
    expect(probs.length).toBe(5);
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(maxAbsDiff(fused.run(x), probs)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(await fused.runAsync(x), probs)).toBeLessThanOrEqual(1e-5);
    const logits = plain.run(x, 'logits');
    expect(maxAbs(logits)).toBeGreaterThan(0.05); // a degenerate net would make this test vacuous
    expect(maxAbsDiff(fused.run(x, 'logits'), logits)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(logits)));
    expect(tf.memory().numTensors).toBe(before);
    plain.dispose();
    fused.dispose();
  });

  it('checks the desc against the stored tensors', () => {
    const src = tinyNetwork(1);
    const broken: ModelSource = { desc: src.desc, tensors: src.tensors.filter((t) => t.name !== 'dw/w') };
    expect(() => buildTfjsNetwork(tf, broken, { fused: false })).toThrow(/dw\/w/);
    const wrongShape = structuredClone(src);
    (wrongShape.desc.layers[2] as { outChannels: number }).outChannels = 9;
    expect(() => buildTfjsNetwork(tf, wrongShape, { fused: true })).toThrow(/project/);
  });
});

// ---------------------------------------------------------------------------------------
// The real model: nsfwjs MobileNetV2 as tfjs-layers runs it.

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CONVERTER = path.join(ROOT, 'dist', 'convert', 'node.js');
const hasConverter = existsSync(CONVERTER);

const nsfwInput = () => uniform(mulberry32(2024), 224 * 224 * 3, 0, 1);

async function layersPredict(tf: any, model: any, x: Float32Array): Promise<Float32Array> {
  const xt = tf.tensor4d(x, [1, 224, 224, 3]);
  const y = model.predict(xt);
  const out = await y.data();
  tf.dispose([xt, y]);
  return out;
}

async function convertNsfwjs(): Promise<ModelSource> {
  const { convertPath } = await import(/* @vite-ignore */ pathToFileURL(CONVERTER).href);
  return convertPath(path.join(nsfwjsModelDir(), 'model.min.js'));
}

describe('nsfwjs MobileNetV2 via tfjs-layers', () => {
  let tf: any;
  let expected: Float32Array;
  beforeAll(async () => {
    tf = await initTf('cpu');
    const model = await loadNsfwjsLayersModel(tf, tfl);
    expected = await layersPredict(tf, model, nsfwInput());
    model.dispose();
  });

  it('gives 5 finite probabilities summing to 1 on the cpu backend', () => {
    expect(nsfwjsLabels()).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
    expect(expected.length).toBe(5);
    expect(expected.every((p) => Number.isFinite(p) && p >= 0 && p <= 1)).toBe(true);
    expect(expected.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('gives the same result on the wasm backend (SIMD build)', async () => {
    const wtf = await initTf('wasm');
    expect(await wtf.env().getAsync('WASM_HAS_SIMD_SUPPORT')).toBe(true);
    const model = await loadNsfwjsLayersModel(wtf, tfl);
    const got = await layersPredict(wtf, model, nsfwInput());
    model.dispose();
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-4);
    await initTf('cpu'); // leave the process on the reference backend for what follows
  });

  // Needs the converter (src/convert/node.ts, built to dist/); skipped until it is built.
  it.skipIf(!hasConverter)('the converted model run by buildTfjsNetwork equals the LayersModel', async () => {
    tf = await initTf('cpu');
    const src = await convertNsfwjs();
    expect(src.desc.inputShape).toEqual([1, 224, 224, 3]);
    for (const fused of [false, true]) {
      const net = buildTfjsNetwork(tf, src, { fused });
      const got = net.run(nsfwInput());
      net.dispose();
      expect(maxAbsDiff(got, expected), `fused=${fused}`).toBeLessThanOrEqual(1e-5);
    }
    // The benchmark peer exactly as the benchmarks run it: fused, wasm backend, async read.
    const wtf = await initTf('wasm');
    const peer = buildTfjsNetwork(wtf, src, { fused: true });
    const got = await peer.runAsync(nsfwInput());
    peer.dispose();
    await initTf('cpu');
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-4);
  });
});
