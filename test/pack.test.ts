// The wasm packers (assembly/pack.ts, used at load) against the JavaScript fold + pack
// (src/pack.ts): bit-identical for f32 and uint8-quantized weights, odd sizes included.
import { describe, expect, it, beforeAll } from 'vitest';
import { foldBatchNorm, foldFactors, foldLoop, packDepthwise, packGemm, gemmPackedFloats, packWeights, dwPackedFloats, wasmLoadMath } from '../src/pack.js';
import type { StoredTensor } from '../src/desc.js';
import { dequantize } from '../src/format.js';
import { Heap, kernels, maxRelDiff, mulberry32, randomArray } from './helpers/wasm.js';

let h: Heap;
beforeAll(async () => {
  h = await kernels('simd');
});

function tensor(dtype: 'f32' | 'u8', n: number, seed: number): StoredTensor {
  const r = mulberry32(seed);
  if (dtype === 'f32') return { name: 'w', shape: [n], dtype, data: new Uint8Array(randomArray(r, n).buffer) };
  return { name: 'w', shape: [n], dtype, data: Uint8Array.from({ length: n }, () => Math.floor(r() * 256)), scale: 0.0123, min: -1.37 };
}

describe('wasm packers equal the JS fold + pack', () => {
  const shapes = [[1, 1], [3, 5], [27, 32], [16, 96], [17, 13], [144, 24], [320, 1280]];
  it.each(shapes.flatMap(([K, N]) => (['f32', 'u8'] as const).map((d) => ({ K, N, d }))))(
    'gemm K=$K N=$N $d', ({ K, N, d }) => {
      h.reset();
      const t = tensor(d, K * N, K * 31 + N);
      const r = mulberry32(N);
      const vecs = new Map([
        ['mean', randomArray(r, N)], ['variance', randomArray(r, N, 0.1, 2)],
        ['gamma', randomArray(r, N, 0.5, 1.5)], ['beta', randomArray(r, N)],
      ]);
      const get = (n: string): Float32Array => vecs.get(n)!;
      const b = randomArray(r, N);
      const bn = { mean: 'mean', variance: 'variance', gamma: 'gamma', beta: 'beta', epsilon: 1e-3 };
      const js = foldBatchNorm(dequantize(t), b, N, bn, get);
      const want = packGemm(js.w, js.b, K, N);
      const at = h.put(gemmPackedFloats(K, N));
      const staging = h.put(K * N + 3 * N + 512);
      packWeights(h.k, [{ kind: 'gemm', tensor: t, K, N, fold: foldFactors(b, N, bn, get), at: 0 }], at, staging);
      expect(h.get(at, want.length)).toEqual(want);
      expect(h.guardIntact(at, want.length)).toBe(true);
    });
  it.each([1, 3, 8, 13, 32, 960].flatMap((C) => (['f32', 'u8'] as const).map((d) => ({ C, d }))))(
    'depthwise C=$C $d', ({ C, d }) => {
      h.reset();
      const t = tensor(d, 9 * C, C);
      const b = randomArray(mulberry32(C + 1), C);
      const js = foldBatchNorm(dequantize(t), b, C, undefined, () => new Float32Array(0));
      const want = packDepthwise(js.w, js.b, C);
      const at = h.put(dwPackedFloats(C));
      const staging = h.put(9 * C + 3 * C + 512);
      packWeights(h.k, [{ kind: 'dw', tensor: t, K: 9, N: C, fold: foldFactors(b, C, undefined, () => new Float32Array(0)), at: 0 }], at, staging);
      expect(h.get(at, want.length)).toEqual(want);
      expect(h.guardIntact(at, want.length)).toBe(true);
    });
});

describe('first_nonfinite_f32 (the load-time weight check)', () => {
  const scalar = (v: Float32Array): number => v.findIndex((x) => !Number.isFinite(x));
  const cases = [0, 1, 3, 4, 5, 8, 13, 64].flatMap((n) =>
    [Number.NaN, Infinity, -Infinity].flatMap((bad) => [-1, 0, n >> 1, n - 1].filter((i) => i < n).map((at) => ({ n, bad, at }))));
  it.each(cases)('n=$n, $bad at $at', ({ n, bad, at }) => {
    h.reset();
    const v = randomArray(mulberry32(n + 7), n, -3e38, 3e38);
    if (at >= 0) v[at] = bad;
    if (at >= 0 && n > 2) v[n - 1] = bad; // a later bad value does not hide the first
    const p = h.put(n + 4);
    new Float32Array(h.k.memory.buffer, p, n).set(v);
    new Float32Array(h.k.memory.buffer, p + 4 * n, 4).fill(Number.NaN); // past the end: never read
    expect(h.k.first_nonfinite_f32(p, n)).toBe(scalar(v));
  });
});

describe('wasmLoadMath (the planner at load): dequantize() on wasm, value for value', () => {
  const cases = [
    { n: 1, scale: 0.0123, min: -1.37 }, { n: 7, scale: 1e-7, min: 3.5 }, { n: 96, scale: 0.5, min: -64 },
    { n: 1280, scale: 0.003921568627451, min: 0 }, { n: 33, scale: 1e30, min: -1e32 },
  ];
  it.each(cases)('u8 n=$n scale=$scale min=$min: value for value', ({ n, scale, min }) => {
    const k = (h.k as unknown as Parameters<typeof wasmLoadMath>[0]);
    const r = mulberry32(n);
    const t: StoredTensor = { name: 'v', shape: [n], dtype: 'u8', data: Uint8Array.from({ length: n }, (_, i) => (i < 2 ? i * 255 : Math.floor(r() * 256))), scale, min };
    h.reset();
    const at = h.put(2 * n + 8); // n bytes in, n floats out
    expect(wasmLoadMath(k, at).dequantize(t)).toEqual(dequantize(t));
    expect(h.guardIntact(at, 2 * n + 8)).toBe(true);
  });
  it('f32 tensors are dequantized as dequantize() does, and what it refuses fails with its errors', () => {
    const k = (h.k as unknown as Parameters<typeof wasmLoadMath>[0]);
    h.reset();
    const f = wasmLoadMath(k, h.put(64)).dequantize;
    const t32 = tensor('f32', 9, 3);
    expect(f(t32)).toEqual(dequantize(t32));
    const bad: StoredTensor = { name: 'bad', shape: [4], dtype: 'u8', data: new Uint8Array(3), scale: 1, min: 0 };
    expect(() => f(bad)).toThrow(/cannot dequantize "bad": expected 4 bytes/);
    const noScale: StoredTensor = { name: 'q', shape: [2], dtype: 'u8', data: new Uint8Array(2) };
    expect(() => f(noScale)).toThrow(/finite "scale" and "min"/);
  });
});

describe('wasmLoadMath: the batch-norm fold on wasm equals foldLoop, bit for bit', () => {
  // Bit patterns, NaN as one value (its sign and payload are not specified by wasm or JS).
  const bits = (v: Float32Array | Float64Array): string[] => Array.from(v, (x, i) =>
    Number.isNaN(x) ? 'NaN' : Array.from(new Uint8Array(v.buffer, v.byteOffset + i * v.BYTES_PER_ELEMENT, v.BYTES_PER_ELEMENT)).join());
  const cases = [1, 3, 4, 17, 96, 1280].flatMap((C) =>
    [[true, true], [true, false], [false, true], [false, false]].map(([g, b]) => ({ C, gamma: g, beta: b })));
  it.each(cases)('C=$C gamma=$gamma beta=$beta', ({ C, gamma, beta }) => {
    const r = mulberry32(C * 4 + (gamma ? 2 : 0) + (beta ? 1 : 0));
    const mean = randomArray(r, C, -3, 3);
    const variance = randomArray(r, C, 1e-6, 4);
    const g = gamma ? randomArray(r, C, -2, 2) : undefined;
    const be = beta ? randomArray(r, C, -1, 1) : undefined;
    const bias0 = randomArray(r, C, -2, 2);
    // Edge values: a zero and a negative variance (+ eps = 0 -> Infinity scale, < 0 -> NaN),
    // a bias equal to the mean (a -0 product when the scale is negative), huge values.
    if (C >= 4) {
      variance[0] = -1e-3;
      variance[1] = -5e-3;
      bias0[2] = mean[2];
      bias0[3] = 3e38;
      if (g) g[2] = -1;
    }
    const want = { scale: new Float64Array(C), bias: bias0.slice() };
    foldLoop(C, want.bias, want.scale, mean, variance, g, be, 1e-3);
    h.reset();
    const at = h.put(2 * C + 5 * C + 8);
    const got = { scale: new Float64Array(C), bias: bias0.slice() };
    wasmLoadMath(h.k as unknown as Parameters<typeof wasmLoadMath>[0], at).foldLoop(C, got.bias, got.scale, mean, variance, g, be, 1e-3);
    expect(bits(got.scale)).toEqual(bits(want.scale));
    expect(bits(got.bias)).toEqual(bits(want.bias));
    expect(h.guardIntact(at, 2 * C + 5 * C + 8)).toBe(true);
  });
  it('vectors of the wrong length fall back to the JavaScript loop (NaN where it reads past the end)', () => {
    h.reset();
    const at = h.put(64);
    const scale = new Float64Array(4);
    const bias = new Float32Array(4);
    wasmLoadMath(h.k as unknown as Parameters<typeof wasmLoadMath>[0], at).foldLoop(
      4, bias, scale, new Float32Array(3), new Float32Array(4).fill(1), undefined, undefined, 0);
    expect(Array.from(scale)).toEqual([1, 1, 1, 1]);
    expect(Number.isNaN(bias[3])).toBe(true);
  });
});
