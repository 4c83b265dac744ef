// The TF.js kernels this backend runs on the package's wasm kernels. Each implementation
// returns the output tensor, or a string saying why it cannot run the call, in which case the
// registered tfjs-backend-cpu kernel runs it instead (see `overrideConfig` in index.ts).
//
// All of them are NHWC float32: convolutions 1x1 (the GEMM) and 3x3 (im2col + GEMM),
// depthwise 3x3 with channel multiplier 1, bias and linear / relu / relu6 fused into the
// kernel's clamp; other activations run after, on the cpu kernels, as tfjs-backend-cpu's own
// fused kernels do.

import { backend_util, getKernel, util } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { packDepthwise, packGemm } from '../pack.js';
import { Arena, type MobileNetWasmBackend } from './backend.js';

/** A kernel's result: the output, or why it falls back to the cpu kernel. */
export type Result = TensorInfo | string;

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

/** [lo, hi] of the clamp fused into the kernels, for the activations the clamp can express. */
function clampRange(activation: string | undefined): [number, number] | null {
  if (activation === undefined || activation === null || activation === 'linear') return [-Infinity, Infinity];
  if (activation === 'relu') return [0, Infinity];
  if (activation === 'relu6') return [0, 6];
  return null;
}

/** Activations applied after our kernel by running the cpu kernel (what tfjs-backend-cpu does itself). */
const POST_ACTIVATIONS = new Set(['elu', 'sigmoid', 'leakyrelu', 'prelu']);

function applyPostActivation(
  b: MobileNetWasmBackend, y: TensorInfo, activation: string, prelu: TensorInfo | undefined, alpha: number | undefined,
): TensorInfo {
  let out: TensorInfo;
  const run = (name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo =>
    getKernel(name, 'cpu').kernelFunc({ inputs, backend: b, attrs }) as TensorInfo;
  if (activation === 'elu') out = run('Elu', { x: y });
  else if (activation === 'sigmoid') out = run('Sigmoid', { x: y });
  else if (activation === 'leakyrelu') out = run('LeakyRelu', { x: y }, { alpha: alpha ?? 0.2 });
  else out = run('Prelu', { x: y, alpha: prelu as TensorInfo });
  b.disposeIntermediateTensorInfo(y);
  return out;
}

/**
 * The bias as one value per output channel, or a reason it cannot be folded: it must broadcast
 * along the last axis only (shape [N], [1, ..., N] or a single value) without raising the rank.
 */
function biasVector(b: MobileNetWasmBackend, bias: TensorInfo | undefined, N: number, outRank: number): Float32Array | string | null {
  if (!bias) return null;
  const v = b.values(bias);
  if (!v) return `bias dtype ${bias.dtype}`;
  if (bias.shape.length > outRank) return 'bias of higher rank';
  const size = util.sizeFromShape(bias.shape);
  const last = bias.shape.length ? bias.shape[bias.shape.length - 1] : 1;
  if (size === 1) return new Float32Array(N).fill(v[0]);
  if (size === N && last === N) return v;
  return `bias shape [${bias.shape}]`;
}

/** Activation handling shared by the fused kernels: the clamp range, and what to run after. */
function activationPlan(activation: string | undefined): { lo: number; hi: number; post: string | null } | string {
  const r = clampRange(activation);
  if (r) return { lo: r[0], hi: r[1], post: null };
  if (activation && POST_ACTIVATIONS.has(activation)) return { lo: -Infinity, hi: Infinity, post: activation };
  return `activation ${activation}`;
}

export interface ConvArgs {
  x: TensorInfo;
  filter: TensorInfo;
  bias?: TensorInfo;
  preluActivationWeights?: TensorInfo;
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: string;
  dilations?: number | [number, number];
  dimRoundingMode?: Rounding;
  activation?: string;
  leakyreluAlpha?: number;
}

/** The input and filter values, or why the kernel cannot take them (checked before anything else). */
function convInputs(b: MobileNetWasmBackend, a: ConvArgs): { xv: Float32Array; fv: Float32Array } | string {
  const { x, filter } = a;
  if (a.dataFormat && a.dataFormat !== 'NHWC') return `dataFormat ${a.dataFormat}`;
  if (x.shape.length !== 4 || filter.shape.length !== 4) return 'rank';
  const xv = b.values(x);
  const fv = b.values(filter);
  if (!xv || !fv) return `dtype ${x.dtype}/${filter.dtype}`;
  return { xv, fv };
}

/** Activation, folded bias and geometry shared by both convolutions, or why they don't fit. */
function convPlan(b: MobileNetWasmBackend, a: ConvArgs, outC: number, depthwise: boolean) {
  const act = activationPlan(a.activation);
  if (typeof act === 'string') return act;
  const bv = biasVector(b, a.bias, outC, 4);
  if (typeof bv === 'string') return bv;
  const info = backend_util.computeConv2DInfo(
    a.x.shape as Shape4, a.filter.shape as Shape4, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, depthwise, 'channelsLast',
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return 'dilations';
  return { act, bv, info };
}

/** Conv2D / FusedConv2D: 1x1 on the GEMM, 3x3 on conv3x3 (im2col rows + GEMM). */
export function conv2d(b: MobileNetWasmBackend, a: ConvArgs): Result {
  const { x, filter } = a;
  const inputs = convInputs(b, a);
  if (typeof inputs === 'string') return inputs;
  const { xv, fv } = inputs;
  const [fh, fw, Cin, N] = filter.shape;
  const is1x1 = fh === 1 && fw === 1;
  if (!is1x1 && !(fh === 3 && fw === 3)) return `${fh}x${fw} filter`;
  if (x.shape[3] !== Cin) return 'channel mismatch';
  const plan = convPlan(b, a, N, false);
  if (typeof plan === 'string') return plan;
  const { act, bv, info } = plan;
  const { batchSize: B, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw } = info;
  const p = info.padInfo;
  if (is1x1 && (p.top || p.left || p.bottom || p.right)) return 'padded 1x1';
  if (!is1x1 && sh !== sw) return 'unequal strides';

  const K = fh * fw * Cin;
  const w = b.packed(`gemm:${K}x${N}`, filter, a.bias ?? null, () => packGemm(fv, bv ?? new Float32Array(N), K, N));
  const direct = is1x1 && sh === 1 && sw === 1;
  const arena = new Arena(b);
  const inp = is1x1 && !direct ? 0 : arena.floats(xv.length);
  const outN = B * OH * OW * N;
  const out = arena.floats(outN);
  const gathered = is1x1 && !direct ? arena.floats(OH * OW * Cin) : 0;
  const scratch = is1x1 ? 0 : arena.floats(b.k.conv3x3_scratch_floats(Cin, OW));
  arena.ready();

  if (direct) {
    b.f32(inp, xv.length).set(xv);
    b.gemm(B * H * W, K, N, inp, w, out, act.lo, act.hi, 0, N);
  } else if (is1x1) {
    // Strided 1x1: gather the sampled pixels straight from the tensor, one image at a time.
    const g = b.f32(gathered, OH * OW * Cin);
    for (let n = 0; n < B; n++) {
      let d = 0;
      for (let oy = 0; oy < OH; oy++) {
        const row = (n * H + oy * sh) * W;
        for (let ox = 0; ox < OW; ox++) {
          const s = (row + ox * sw) * Cin;
          g.set(xv.subarray(s, s + Cin), d);
          d += Cin;
        }
      }
      b.gemm(OH * OW, K, N, gathered, w, out + n * OH * OW * N * 4, act.lo, act.hi, 0, N);
    }
  } else {
    b.f32(inp, xv.length).set(xv);
    for (let n = 0; n < B; n++) {
      b.conv3x3(inp + n * H * W * Cin * 4, H, W, Cin, w, N, out + n * OH * OW * N * 4, OH, OW,
        sh, p.top, p.left, act.lo, act.hi, scratch);
    }
  }
  const y = b.makeTensorInfo([B, OH, OW, N], 'float32', b.f32(out, outN).slice());
  return act.post ? applyPostActivation(b, y, act.post, a.preluActivationWeights, a.leakyreluAlpha) : y;
}

/** DepthwiseConv2dNative / FusedDepthwiseConv2D: 3x3, channel multiplier 1, stride 1 or 2. */
export function depthwise(b: MobileNetWasmBackend, a: ConvArgs): Result {
  const { x, filter } = a;
  const inputs = convInputs(b, a);
  if (typeof inputs === 'string') return inputs;
  const { xv, fv } = inputs;
  const [fh, fw, C, mult] = filter.shape;
  if (fh !== 3 || fw !== 3) return `${fh}x${fw} filter`;
  if (mult !== 1) return `channel multiplier ${mult}`;
  if (x.shape[3] !== C) return 'channel mismatch';
  const plan = convPlan(b, a, C, true);
  if (typeof plan === 'string') return plan;
  const { act, bv, info } = plan;
  const { batchSize: B, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw } = info;
  if (sh !== sw || (sh !== 1 && sh !== 2)) return `strides ${sh}x${sw}`;

  const w = b.packed(`dw3x3:${C}`, filter, a.bias ?? null, () => packDepthwise(fv, bv ?? new Float32Array(C), C));
  const arena = new Arena(b);
  const inp = arena.floats(xv.length);
  const outN = B * OH * OW * C;
  const out = arena.floats(outN);
  const zero = arena.floats(W * C);
  arena.ready();
  b.f32(inp, xv.length).set(xv);
  for (let n = 0; n < B; n++) {
    b.dwconv(inp + n * H * W * C * 4, H, W, C, w, out + n * OH * OW * C * 4, OH, OW,
      sh, info.padInfo.top, info.padInfo.left, act.lo, act.hi, zero);
  }
  const y = b.makeTensorInfo([B, OH, OW, C], 'float32', b.f32(out, outN).slice());
  return act.post ? applyPostActivation(b, y, act.post, a.preluActivationWeights, a.leakyreluAlpha) : y;
}

export interface MatMulArgs {
  a: TensorInfo;
  b: TensorInfo;
  bias?: TensorInfo;
  preluActivationWeights?: TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  activation?: string;
  leakyreluAlpha?: number;
}

/**
 * BatchMatMul / _FusedMatMul on the GEMM, when `b` is one matrix (its batch dimensions are all
 * 1, as for dense layers): every row of every batch of `a` goes through one GEMM call.
 */
export function matMul(be: MobileNetWasmBackend, m: MatMulArgs): Result {
  const { a, b } = m;
  const av = be.values(a);
  const bvals = be.values(b);
  if (!av || !bvals) return `dtype ${a.dtype}/${b.dtype}`;
  const ar = a.shape.length;
  const br = b.shape.length;
  if (ar < 2 || br < 2) return 'rank';
  const M = m.transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const K = m.transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const Kb = m.transposeB ? b.shape[br - 1] : b.shape[br - 2];
  const N = m.transposeB ? b.shape[br - 2] : b.shape[br - 1];
  if (K !== Kb) return 'inner dimensions differ';
  if (K === 0 || M === 0 || N === 0) return 'empty';
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  if (util.sizeFromShape(outerB) !== 1) return 'batched b';
  const outer = backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batches = util.sizeFromShape(outerA);
  const outShape = [...outer, M, N];
  const act = activationPlan(m.activation);
  if (typeof act === 'string') return act;
  const bias = biasVector(be, m.bias, N, outShape.length);
  if (typeof bias === 'string') return bias;

  const w = be.packed(`mm:${K}x${N}:${m.transposeB ? 't' : 'n'}`, b, m.bias ?? null, () => {
    let kn = bvals;
    if (m.transposeB) {
      kn = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) kn[k * N + n] = bvals[n * K + k];
    }
    return packGemm(kn, bias ?? new Float32Array(N), K, N);
  });
  const rows = batches * M;
  const arena = new Arena(be);
  const inp = arena.floats(rows * K);
  const out = arena.floats(rows * N);
  arena.ready();
  const x = be.f32(inp, rows * K);
  if (!m.transposeA) x.set(av.subarray(0, rows * K));
  else {
    for (let t = 0; t < batches; t++) {
      const base = t * M * K;
      for (let k = 0; k < K; k++) for (let i = 0; i < M; i++) x[base + i * K + k] = av[base + k * M + i];
    }
  }
  be.gemm(rows, K, N, inp, w, out, act.lo, act.hi, 0, N);
  const y = be.makeTensorInfo(outShape, 'float32', be.f32(out, rows * N).slice());
  return act.post ? applyPostActivation(be, y, act.post, m.preluActivationWeights, m.leakyreluAlpha) : y;
}

/** Relu6 / Relu / ClipByValue on the SIMD clamp. */
export function clamp(b: MobileNetWasmBackend, x: TensorInfo, lo: number, hi: number): Result {
  const xv = b.values(x);
  if (!xv) return `dtype ${x.dtype}`;
  if (!(lo <= hi)) return 'empty range';
  const arena = new Arena(b);
  const p = arena.floats(xv.length);
  arena.ready();
  b.f32(p, xv.length).set(xv);
  b.clamp(p, xv.length, lo, hi, p);
  return b.makeTensorInfo(x.shape.slice(), 'float32', b.f32(p, xv.length).slice());
}

/** Add of two float32 tensors of the same shape (broadcasting adds run on the cpu kernel). */
export function add(b: MobileNetWasmBackend, x: TensorInfo, y: TensorInfo): Result {
  if (!util.arraysEqual(x.shape, y.shape)) return 'broadcast';
  const xv = b.values(x);
  const yv = b.values(y);
  if (!xv || !yv) return `dtype ${x.dtype}/${y.dtype}`;
  const n = xv.length;
  const arena = new Arena(b);
  const p = arena.floats(n);
  const q = arena.floats(n);
  arena.ready();
  b.f32(p, n).set(xv);
  b.f32(q, n).set(yv);
  if (b.variant === 'scalar') b.k.add_f32_scalar(p, q, n, p);
  else b.k.add_f32(p, q, n, p);
  return b.makeTensorInfo(x.shape.slice(), 'float32', b.f32(p, n).slice());
}

/** AvgPool over the whole map (global average pooling): every other pooling runs on the cpu kernel. */
export function avgPool(
  b: MobileNetWasmBackend, x: TensorInfo, filterSize: number | [number, number], strides: number | [number, number],
  pad: Pad, dimRoundingMode: Rounding,
): Result {
  if (x.shape.length !== 4) return 'rank';
  const xv = b.values(x);
  if (!xv) return `dtype ${x.dtype}`;
  const info = backend_util.computePool2DInfo(x.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
  const p = info.padInfo;
  if (info.outHeight !== 1 || info.outWidth !== 1 || info.filterHeight !== info.inHeight ||
      info.filterWidth !== info.inWidth || p.top || p.left || p.bottom || p.right) return 'not a global pool';
  const [B, H, W, C] = x.shape;
  const arena = new Arena(b);
  const inp = arena.floats(xv.length);
  const out = arena.floats(B * C);
  arena.ready();
  b.f32(inp, xv.length).set(xv);
  const pool = b.variant === 'scalar' ? b.k.global_avgpool_nhwc_f32_scalar : b.k.global_avgpool_nhwc_f32;
  for (let n = 0; n < B; n++) pool(inp + n * H * W * C * 4, H * W, C, out + n * C * 4);
  return b.makeTensorInfo([B, 1, 1, C], 'float32', b.f32(out, B * C).slice());
}

// ---------------------------------------------------------------------------------------
// Two kernels in plain JavaScript (no wasm): tfjs-backend-cpu's forms of them are slow enough
// to dominate a MobileNet run (PadV2 computes coordinates with fresh arrays per element;
// FusedBatchNorm takes a square root and a division per element), and both are memory-bound.

/** PadV2 (tf.pad) of a numeric tensor of any rank: one copy per contiguous run. */
export function padV2(b: MobileNetWasmBackend, x: TensorInfo, paddings: [number, number][], constantValue: number): Result {
  if (x.dtype === 'string' || x.dtype === 'complex64') return `dtype ${x.dtype}`;
  const xv = b.data.get(x.dataId).values as Float32Array | Int32Array | Uint8Array;
  const r = x.shape.length;
  if (r === 0 || paddings.length !== r) return 'rank';
  for (const [lo, hi] of paddings) if (!(lo >= 0 && hi >= 0)) return 'negative padding';
  const outShape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
  const out = util.getTypedArrayFromDType(x.dtype, util.sizeFromShape(outShape)) as Float32Array | Int32Array | Uint8Array;
  if (constantValue !== 0) out.fill(constantValue);
  if (xv.length === 0) return b.makeTensorInfo(outShape, x.dtype, out);
  const outStrides = [...util.computeStrides(outShape), 1];
  // j: the last padded axis. Axes j.. of the input are one contiguous run in the output too.
  let j = r - 1;
  while (j > 0 && paddings[j][0] === 0 && paddings[j][1] === 0) j--;
  const run = x.shape.slice(j).reduce((p, d) => p * d, 1);
  let o = paddings.reduce((s, p, i) => s + p[0] * outStrides[i], 0);
  const idx = new Array<number>(j).fill(0);
  for (let i = 0; i < xv.length; i += run) {
    out.set(xv.subarray(i, i + run), o);
    for (let d = j - 1; d >= 0; d--) {
      idx[d]++;
      o += outStrides[d];
      if (idx[d] < x.shape[d]) break;
      o -= idx[d] * outStrides[d];
      idx[d] = 0;
    }
  }
  return b.makeTensorInfo(outShape, x.dtype, out);
}

/**
 * FusedBatchNorm (tf.batchNorm) when mean, variance, scale and offset are per-channel vectors
 * of the last axis (or single values): y = x * k + (offset - mean * k), k = scale / sqrt(variance + eps),
 * both factors computed once per channel in f64.
 */
export function batchNorm(
  b: MobileNetWasmBackend, x: TensorInfo, mean: TensorInfo, variance: TensorInfo,
  scale: TensorInfo | undefined, offset: TensorInfo | undefined, epsilon: number | undefined,
): Result {
  const xv = b.values(x);
  if (!xv || x.shape.length === 0) return `dtype ${x.dtype}`;
  const C = x.shape[x.shape.length - 1];
  const per = (t: TensorInfo | undefined, dflt: number): Float64Array | null => {
    const out = new Float64Array(C);
    if (!t) return out.fill(dflt);
    const v = b.values(t);
    if (!v || t.shape.length > 1) return null;
    if (v.length === 1) return out.fill(v[0]);
    if (v.length !== C) return null;
    out.set(v);
    return out;
  };
  const m = per(mean, 0);
  const va = per(variance, 1);
  const s = per(scale, 1);
  const off = per(offset, 0);
  if (!m || !va || !s || !off) return 'not per-channel';
  const eps = epsilon ?? 0.001;
  // y = x * k + (offset - mean * k) in f64: TF.js's (x - mean) * scale / sqrt(var + eps) + offset up to f64 rounding.
  const k = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    k[c] = s[c] / Math.sqrt(va[c] + eps);
    shift[c] = off[c] - m[c] * k[c];
  }
  const out = new Float32Array(xv.length);
  const n = xv.length;
  for (let i = 0; i < n; i += C) {
    for (let c = 0; c < C; c++) out[i + c] = xv[i + c] * k[c] + shift[c];
  }
  return b.makeTensorInfo(x.shape.slice(), 'float32', out);
}
