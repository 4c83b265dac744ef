// Every kernel, in every variant (x86, ARM), against its scalar twin and against a plain
// JavaScript reference, over a seeded random grid of shapes: channel counts that are not
// multiples of 4 or 8, odd sizes, both strides, SAME / VALID / explicit padding, every clamp.
// A NaN guard after each output buffer catches writes past the end. The same suite runs on the
// plain SIMD build (this file) and on the relaxed-SIMD build (kernels-relaxed.test.ts).
import { describe, expect, it, beforeAll } from 'vitest';
import type { WasmBuild } from '../../src/wasm.js';
import { packDepthwise, packGemm } from '../../src/pack.js';
import {
  Heap, kernels, mulberry32, randomArray, maxRelDiff, gemmRef, dwRef, convRef, pads3, clampJs,
} from './wasm.js';

const CLAMPS: [number, number][] = [[-Infinity, Infinity], [0, 6], [0, Infinity]];
const PADS = ['same', 'valid', 'explicit'] as const;
const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const VARIANTS = ['x86', 'arm'] as const;
type Variant = (typeof VARIANTS)[number];
const GEMM = { x86: 'gemm_4x8_f32_x86', arm: 'gemm_6x8_f32_arm' } as const;
const REF_TOL = 1e-5;

export function kernelSuite(build: WasmBuild): void {
// The plain SIMD build does the same f32 operations in the same order as the scalar twins, so
// they agree to rounding noise; relaxed SIMD fuses multiply-adds (one rounding instead of two).
// The JS references sum in f64, hence the looser bound.
const TWIN_TOL = build === 'relaxed' ? 1e-5 : 1e-6;

let h: Heap;
beforeAll(async () => {
  h = await kernels(build);
});

describe('gemm_4x8_f32_x86 / gemm_6x8_f32_arm (pointwise 1x1, dense)', () => {
  const rand = mulberry32(11);
  const cases = Array.from({ length: 80 }, () => ({
    M: pick(rand, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 49, 56]),
    K: pick(rand, [1, 3, 4, 7, 8, 16, 17, 27, 32, 96, 144]),
    N: pick(rand, [1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 31, 40]),
    clamp: pick(rand, CLAMPS),
    residual: rand() < 0.4,
    variant: pick(rand, VARIANTS) as Variant,
  }));
  it.each(cases)('$variant M=$M K=$K N=$N clamp=$clamp residual=$residual', ({ M, K, N, clamp, residual, variant }) => {
    h.reset();
    const r = mulberry32(M * 10007 + K * 101 + N);
    const a = randomArray(r, M * K), w = randomArray(r, K * N), b = randomArray(r, N);
    const res = residual ? randomArray(r, M * N) : undefined;
    const pa = h.put(a), pw = h.put(packGemm(w, b, K, N)), pr = res ? h.put(res) : 0;
    const o1 = h.put(M * N), o2 = h.put(M * N);
    h.k[GEMM[variant]](M, K, N, pa, pw, o1, clamp[0], clamp[1], pr, N);
    h.k.gemm_f32_scalar(M, K, N, pa, pw, o2, clamp[0], clamp[1], pr, N);
    const simd = h.get(o1, M * N), twin = h.get(o2, M * N);
    expect(maxRelDiff(simd, twin)).toBeLessThanOrEqual(TWIN_TOL);
    expect(maxRelDiff(twin, gemmRef(M, K, N, a, w, b, clamp[0], clamp[1], res))).toBeLessThanOrEqual(REF_TOL);
    expect(h.guardIntact(o1, M * N)).toBe(true);
  });
});

describe('gemm_* over a range of columns (ldo > N), as threads split layers with few pixels', () => {
  const rand = mulberry32(17);
  const cases = Array.from({ length: 30 }, () => ({
    M: pick(rand, [1, 3, 5, 7, 13, 49]),
    K: pick(rand, [1, 7, 16, 27, 96]),
    N: pick(rand, [9, 17, 24, 31, 40, 61]),
    cuts: 1 + Math.floor(rand() * 3),
    residual: rand() < 0.5,
    variant: pick(rand, [...VARIANTS, 'scalar'] as const),
  }));
  it.each(cases)('$variant M=$M K=$K N=$N in $cuts+1 column ranges residual=$residual', ({ M, K, N, cuts, residual, variant }) => {
    h.reset();
    const r = mulberry32(M * 7919 + K * 31 + N);
    const a = randomArray(r, M * K), w = randomArray(r, K * N), b = randomArray(r, N);
    const pa = h.put(a), pw = h.put(packGemm(w, b, K, N)), pr = residual ? h.put(randomArray(r, M * N)) : 0;
    const whole = h.put(M * N), parts = h.put(M * N);
    const f = h.k[variant === 'scalar' ? 'gemm_f32_scalar' : GEMM[variant]];
    f(M, K, N, pa, pw, whole, 0, 6, pr, N);
    // Boundaries on multiples of 8 (whole packed blocks), the last range holding the partial block.
    const blocks = Math.ceil(N / 8);
    const at = [0, ...Array.from({ length: cuts }, (_, i) => Math.round(((i + 1) * blocks) / (cuts + 1)) * 8), N];
    for (let i = 0; i + 1 < at.length; i++) {
      const [n0, n1] = [at[i], Math.min(at[i + 1], N)];
      if (n1 <= n0) continue;
      f(M, K, n1 - n0, pa, pw + (n0 / 8) * (K + 1) * 32, parts + n0 * 4, 0, 6, pr ? pr + n0 * 4 : 0, N);
    }
    expect(h.get(parts, M * N)).toEqual(h.get(whole, M * N));
    expect(h.guardIntact(parts, M * N)).toBe(true);
  });
});

describe('dwconv3x3_nhwc_f32_* (depthwise)', () => {
  const rand = mulberry32(12);
  const cases = Array.from({ length: 90 }, () => ({
    H: pick(rand, [1, 2, 3, 4, 5, 7, 8, 13, 14]),
    // Up to 29: interior runs of 4-pixel quads, a pair and a single, at both strides.
    W: pick(rand, [1, 2, 3, 4, 5, 7, 8, 13, 14, 17, 22, 29]),
    C: pick(rand, [1, 2, 3, 4, 5, 7, 8, 13, 16, 24, 33]),
    stride: pick(rand, [1, 2]),
    pad: pick(rand, PADS),
    clamp: pick(rand, CLAMPS),
    variant: pick(rand, VARIANTS) as Variant,
  })).filter(({ H, W, pad }) => pad !== 'valid' || (H >= 3 && W >= 3));
  it.each(cases)('$variant H=$H W=$W C=$C s=$stride pad=$pad clamp=$clamp', ({ H, W, C, stride, pad, clamp, variant }) => {
    h.reset();
    const p = pads3(H, W, stride, pad);
    const r = mulberry32(H * 1009 + W * 101 + C * 7 + stride);
    const x = randomArray(r, H * W * C), w = randomArray(r, 9 * C), b = randomArray(r, C);
    const n = p.outH * p.outW * C;
    const px = h.put(x), pw = h.put(packDepthwise(w, b, C)), zero = h.put(W * C);
    const o1 = h.put(n), o2 = h.put(n);
    h.k[`dwconv3x3_nhwc_f32_${variant}`](px, H, W, C, pw, o1, p.outH, p.outW, stride, p.top, p.left, clamp[0], clamp[1], zero);
    h.k.dwconv3x3_nhwc_f32_scalar(px, H, W, C, pw, o2, p.outH, p.outW, stride, p.top, p.left, clamp[0], clamp[1], zero);
    const simd = h.get(o1, n), twin = h.get(o2, n);
    expect(maxRelDiff(simd, twin)).toBeLessThanOrEqual(TWIN_TOL);
    expect(maxRelDiff(twin, dwRef(x, H, W, C, w, b, stride, p, clamp[0], clamp[1]))).toBeLessThanOrEqual(REF_TOL);
    expect(h.guardIntact(o1, n)).toBe(true);
    expect(h.guardIntact(zero, W * C)).toBe(true);
  });
});

describe('conv3x3_nhwc_f32_* (full convolution, the stem)', () => {
  const rand = mulberry32(13);
  const cases = Array.from({ length: 40 }, () => ({
    H: pick(rand, [1, 2, 3, 5, 7, 8, 15, 16]),
    W: pick(rand, [1, 2, 3, 5, 7, 8, 15, 16]),
    Cin: pick(rand, [1, 2, 3, 4, 5, 8]),
    N: pick(rand, [1, 3, 8, 13, 16, 32]),
    stride: pick(rand, [1, 2]),
    pad: pick(rand, PADS),
    clamp: pick(rand, CLAMPS),
    variant: pick(rand, VARIANTS) as Variant,
  })).filter(({ H, W, pad }) => pad !== 'valid' || (H >= 3 && W >= 3));
  it.each(cases)('$variant H=$H W=$W Cin=$Cin N=$N s=$stride pad=$pad', ({ H, W, Cin, N, stride, pad, clamp, variant }) => {
    h.reset();
    const p = pads3(H, W, stride, pad);
    const r = mulberry32(H * 1009 + W * 101 + Cin * 7 + N);
    const x = randomArray(r, H * W * Cin), w = randomArray(r, 9 * Cin * N), b = randomArray(r, N);
    const n = p.outH * p.outW * N;
    const px = h.put(x), pw = h.put(packGemm(w, b, 9 * Cin, N)), scratch = h.put(h.k.conv3x3_scratch_floats(Cin, p.outW));
    const o1 = h.put(n), o2 = h.put(n);
    h.k[`conv3x3_nhwc_f32_${variant}`](px, H, W, Cin, pw, N, o1, p.outH, p.outW, stride, p.top, p.left, clamp[0], clamp[1], scratch);
    h.k.conv3x3_nhwc_f32_scalar(px, H, W, Cin, pw, N, o2, p.outH, p.outW, stride, p.top, p.left, clamp[0], clamp[1], scratch);
    const ref = convRef(x, H, W, Cin, w, b, N, stride, p, clamp[0], clamp[1]);
    expect(maxRelDiff(h.get(o1, n), ref)).toBeLessThanOrEqual(REF_TOL);
    expect(maxRelDiff(h.get(o2, n), ref)).toBeLessThanOrEqual(REF_TOL);
    expect(h.guardIntact(o1, n)).toBe(true);
  });
});

describe('ibottleneck3x3_nhwc_f32_* (fused inverted residual) equals the unfused sequence', () => {
  const rand = mulberry32(14);
  const cases = Array.from({ length: 90 }, () => {
    const Cin = pick(rand, [3, 4, 5, 8, 16, 24]);
    const expand = rand() < 0.75;
    const stride = pick(rand, [1, 2]);
    const residual = stride === 1 && rand() < 0.6;
    return {
      H: pick(rand, [1, 2, 3, 4, 5, 7, 8, 14]),
      W: pick(rand, [1, 2, 3, 4, 5, 7, 8, 14]),
      Cin, expand, stride, residual,
      Cexp: expand ? pick(rand, [Cin * 6, Cin * 2 + 1, 13]) : Cin,
      Cout: residual ? Cin : pick(rand, [3, 8, 12, 16, 17]),
      pad: pick(rand, ['same', 'explicit'] as const),
      // Strip height and spare window rows: 1 row at a time, several, more than the output has.
      S: pick(rand, [1, 2, 3, 5, 16]),
      extra: pick(rand, [0, 1, 4]),
      variant: pick(rand, VARIANTS) as Variant,
    };
  }).filter(({ pad, stride }) => !(pad === 'explicit' && stride === 1));
  it.each(cases)('$variant H=$H W=$W Cin=$Cin Cexp=$Cexp Cout=$Cout s=$stride expand=$expand res=$residual pad=$pad S=$S extra=$extra',
    ({ H, W, Cin, Cexp, Cout, stride, expand, residual, pad, S, extra, variant }) => {
      h.reset();
      const p = pads3(H, W, stride, pad);
      const r = mulberry32(H * 1009 + W * 101 + Cin * 7 + Cexp + Cout * 3 + stride);
      const x = randomArray(r, H * W * Cin, -2, 2);
      const ew = randomArray(r, Cin * Cexp), eb = randomArray(r, Cexp);
      const dw = randomArray(r, 9 * Cexp), db = randomArray(r, Cexp);
      const pw = randomArray(r, Cexp * Cout), pb = randomArray(r, Cout);
      const px = h.put(x);
      const pew = expand ? h.put(packGemm(ew, eb, Cin, Cexp)) : 0;
      const pdw = h.put(packDepthwise(dw, db, Cexp));
      const ppw = h.put(packGemm(pw, pb, Cexp, Cout));
      const n = p.outH * p.outW * Cout;
      const cap = h.k.ibottleneck_min_cap(S, stride) + extra;
      const scratchFloats = h.k.ibottleneck_scratch_floats(W, Cexp, p.outW, expand ? 1 : 0, S, cap);
      const scratch = h.put(scratchFloats);
      const fused = h.put(n), fusedTwin = h.put(n);
      const args = (out: number): number[] => [px, H, W, Cin, pew, Cexp, 0, 6, pdw, stride, p.top, p.left, 0, 6,
        ppw, Cout, -Infinity, Infinity, residual ? px : 0, out, p.outH, p.outW, S, cap, scratch];
      type Args = Parameters<typeof h.k.ibottleneck3x3_nhwc_f32_x86>;
      h.k[`ibottleneck3x3_nhwc_f32_${variant}`](...(args(fused) as Args));
      h.k.ibottleneck3x3_nhwc_f32_scalar(...(args(fusedTwin) as Args));
      // The unfused sequence on the same SIMD kernels: whole expanded tensor, then depthwise, then project.
      const e = expand ? h.put(H * W * Cexp) : px;
      if (expand) h.k[GEMM[variant]](H * W, Cin, Cexp, px, pew, e, 0, 6, 0, Cexp);
      const d = h.put(p.outH * p.outW * Cexp), zero = h.put(W * Cexp);
      h.k[`dwconv3x3_nhwc_f32_${variant}`](e, H, W, Cexp, pdw, d, p.outH, p.outW, stride, p.top, p.left, 0, 6, zero);
      const seq = h.put(n);
      h.k[GEMM[variant]](p.outH * p.outW, Cexp, Cout, d, ppw, seq, -Infinity, Infinity, residual ? px : 0, Cout);
      const want = h.get(seq, n);
      expect(maxRelDiff(h.get(fused, n), want)).toBeLessThanOrEqual(1e-5);
      expect(maxRelDiff(h.get(fusedTwin, n), want)).toBeLessThanOrEqual(1e-5);
      // And the sequence itself against plain JS.
      const eRef = expand ? gemmRef(H * W, Cin, Cexp, x, ew, eb, 0, 6) : x;
      const dRef = dwRef(eRef, H, W, Cexp, dw, db, stride, p, 0, 6);
      const oRef = gemmRef(p.outH * p.outW, Cexp, Cout, dRef, pw, pb, -Infinity, Infinity, residual ? x : undefined);
      expect(maxRelDiff(want, oRef)).toBeLessThanOrEqual(1e-4);
      expect(h.guardIntact(fused, n)).toBe(true);
      expect(h.guardIntact(scratch, scratchFloats)).toBe(true);
      // Computed in row ranges (as threads split it), every element is bit-identical.
      const split = h.put(n);
      const cuts = [0, Math.floor(p.outH / 3), Math.floor((2 * p.outH) / 3), p.outH];
      const rowOut = p.outW * Cout * 4;
      for (let i = 0; i < 3; i++) {
        const [r0, r1] = [cuts[i], cuts[i + 1]];
        if (r1 <= r0) continue;
        h.k[`ibottleneck3x3_nhwc_f32_${variant}`](px, H, W, Cin, pew, Cexp, 0, 6, pdw, stride, p.top - r0 * stride, p.left, 0, 6,
          ppw, Cout, -Infinity, Infinity, residual ? px + r0 * rowOut : 0, split + r0 * rowOut, r1 - r0, p.outW, S, cap, scratch);
      }
      expect(h.get(split, n)).toEqual(h.get(fused, n));
    });
});

describe('stem3x3_block_nhwc_f32_* (3x3 conv fused with depthwise + project) equals the unfused sequence', () => {
  const rand = mulberry32(15);
  const cases = Array.from({ length: 60 }, () => ({
    cH: pick(rand, [1, 2, 3, 5, 8, 9, 15, 16]),
    cW: pick(rand, [1, 2, 3, 5, 8, 9, 15, 16]),
    cC: pick(rand, [1, 3, 4]),
    cStride: pick(rand, [1, 2]),
    cPad: pick(rand, PADS),
    Cexp: pick(rand, [3, 5, 8, 13, 16]),
    Cout: pick(rand, [3, 8, 9, 16]),
    stride: pick(rand, [1, 2]),
    pad: pick(rand, ['same', 'explicit'] as const),
    S: pick(rand, [1, 2, 3, 16]),
    extra: pick(rand, [0, 2]),
    variant: pick(rand, VARIANTS) as Variant,
  })).filter(({ pad, stride }) => !(pad === 'explicit' && stride === 1));
  it.each(cases)('$variant conv ${cH}x${cW}x$cC s=$cStride $cPad -> Cexp=$Cexp, dw s=$stride $pad -> Cout=$Cout S=$S extra=$extra',
    ({ cH, cW, cC, cStride, cPad, Cexp, Cout, stride, pad, S, extra, variant }) => {
      h.reset();
      const c = pads3(cH, cW, cStride, cPad);
      const [H, W] = [c.outH, c.outW];
      if (H < 1 || W < 1) return;
      const p = pads3(H, W, stride, pad);
      const r = mulberry32(cH * 1009 + cW * 101 + cC * 7 + Cexp + Cout * 3 + stride);
      const x = randomArray(r, cH * cW * cC, -2, 2);
      const cw = randomArray(r, 9 * cC * Cexp), cb = randomArray(r, Cexp);
      const dw = randomArray(r, 9 * Cexp), db = randomArray(r, Cexp);
      const pw = randomArray(r, Cexp * Cout), pb = randomArray(r, Cout);
      const px = h.put(x), pcw = h.put(packGemm(cw, cb, 9 * cC, Cexp));
      const pdw = h.put(packDepthwise(dw, db, Cexp)), ppw = h.put(packGemm(pw, pb, Cexp, Cout));
      const n = p.outH * p.outW * Cout;
      const cap = h.k.ibottleneck_min_cap(S, stride) + extra;
      const scratchFloats = h.k.stem_block_scratch_floats(W, Cexp, p.outW, S, cap, cC);
      const scratch = h.put(scratchFloats);
      const fused = h.put(n), fusedTwin = h.put(n);
      const args = (out: number, r0 = 0, r1 = p.outH): number[] => [px, cH, cW, cC, cStride, c.top, c.left, pcw, H, W, Cexp, 0, 6,
        pdw, stride, p.top - r0 * stride, p.left, 0, 6, ppw, Cout, -Infinity, Infinity, out + r0 * p.outW * Cout * 4, r1 - r0, p.outW, S, cap, scratch];
      type Args = Parameters<typeof h.k.stem3x3_block_nhwc_f32_x86>;
      h.k[`stem3x3_block_nhwc_f32_${variant}`](...(args(fused) as Args));
      h.k.stem3x3_block_nhwc_f32_scalar(...(args(fusedTwin) as Args));
      // The unfused sequence on the same SIMD kernels: whole conv output, then depthwise, then project.
      const e = h.put(H * W * Cexp), im2col = h.put(h.k.conv3x3_scratch_floats(cC, W));
      h.k[`conv3x3_nhwc_f32_${variant}`](px, cH, cW, cC, pcw, Cexp, e, H, W, cStride, c.top, c.left, 0, 6, im2col);
      const d = h.put(p.outH * p.outW * Cexp), zero = h.put(W * Cexp);
      h.k[`dwconv3x3_nhwc_f32_${variant}`](e, H, W, Cexp, pdw, d, p.outH, p.outW, stride, p.top, p.left, 0, 6, zero);
      const seq = h.put(n);
      h.k[GEMM[variant]](p.outH * p.outW, Cexp, Cout, d, ppw, seq, -Infinity, Infinity, 0, Cout);
      const want = h.get(seq, n);
      // Same kernels, same order: bit-identical to the sequence.
      expect(h.get(fused, n)).toEqual(want);
      expect(maxRelDiff(h.get(fusedTwin, n), want)).toBeLessThanOrEqual(1e-5);
      const eRef = convRef(x, cH, cW, cC, cw, cb, Cexp, cStride, c, 0, 6);
      const oRef = gemmRef(p.outH * p.outW, Cexp, Cout, dwRef(eRef, H, W, Cexp, dw, db, stride, p, 0, 6), pw, pb, -Infinity, Infinity);
      expect(maxRelDiff(want, oRef)).toBeLessThanOrEqual(1e-4);
      expect(h.guardIntact(fused, n)).toBe(true);
      expect(h.guardIntact(scratch, scratchFloats)).toBe(true);
      // In row ranges (as threads split it): bit-identical.
      const split = h.put(n);
      const cuts = [0, Math.floor(p.outH / 3), Math.floor((2 * p.outH) / 3), p.outH];
      for (let i = 0; i < 3; i++) {
        if (cuts[i + 1] > cuts[i]) h.k[`stem3x3_block_nhwc_f32_${variant}`](...(args(split, cuts[i], cuts[i + 1]) as Args));
      }
      expect(h.get(split, n)).toEqual(want);
    });
});

describe('elementwise, pooling and softmax', () => {
  const sizes = [1, 3, 4, 5, 8, 13, 100, 1001];
  it.each(sizes)('clamp_f32 n=%i', (n) => {
    h.reset();
    const x = randomArray(mulberry32(n), n, -10, 10);
    for (const [lo, hi] of CLAMPS) {
      const px = h.put(x), o1 = h.put(n), o2 = h.put(n);
      h.k.clamp_f32(px, n, lo, hi, o1);
      h.k.clamp_f32_scalar(px, n, lo, hi, o2);
      const ref = Float32Array.from(x, (v) => clampJs(v, lo, hi));
      expect(h.get(o1, n)).toEqual(ref);
      expect(h.get(o2, n)).toEqual(ref);
      expect(h.guardIntact(o1, n)).toBe(true);
    }
  });
  it.each(sizes)('add_f32 n=%i', (n) => {
    h.reset();
    const r = mulberry32(n + 1);
    const a = randomArray(r, n), b = randomArray(r, n);
    const pa = h.put(a), pb = h.put(b), o1 = h.put(n), o2 = h.put(n);
    h.k.add_f32(pa, pb, n, o1);
    h.k.add_f32_scalar(pa, pb, n, o2);
    const ref = Float32Array.from(a, (v, i) => v + b[i]);
    expect(h.get(o1, n)).toEqual(ref);
    expect(h.get(o2, n)).toEqual(ref);
  });
  it.each([[1, 1], [1, 5], [49, 1280], [7, 13], [4, 3], [196, 8]])('global_avgpool HW=%i C=%i', (HW, C) => {
    h.reset();
    const x = randomArray(mulberry32(HW * C), HW * C, 0, 6);
    const px = h.put(x), o1 = h.put(C), o2 = h.put(C);
    h.k.global_avgpool_nhwc_f32(px, HW, C, o1);
    h.k.global_avgpool_nhwc_f32_scalar(px, HW, C, o2);
    const ref = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let i = 0; i < HW; i++) s += x[i * C + c];
      ref[c] = s / HW;
    }
    expect(maxRelDiff(h.get(o1, C), ref)).toBeLessThanOrEqual(1e-5);
    expect(maxRelDiff(h.get(o2, C), ref)).toBeLessThanOrEqual(1e-5);
    expect(h.guardIntact(o1, C)).toBe(true);
  });
  it.each([1, 2, 5, 1000])('softmax_f32 n=%i', (n) => {
    h.reset();
    const x = randomArray(mulberry32(n), n, -30, 30);
    const px = h.put(x), o = h.put(n);
    h.k.softmax_f32(px, n, o);
    const m = Math.max(...x);
    const e = Array.from(x, (v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    expect(maxRelDiff(h.get(o, n), e.map((v) => v / s))).toBeLessThanOrEqual(1e-6);
  });
});
}
