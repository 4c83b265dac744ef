// Turning stored weights into what the kernels read: dequantized f32, batch-norm folded into
// each convolution's weights and bias, then packed in the kernels' layouts (see
// assembly/pointwise.ts and assembly/depthwise.ts). At load the wasm packers in
// assembly/pack.ts do the per-weight work; the per-channel fold factors are computed here, and
// the JavaScript packers below are the reference the tests hold them to, bit for bit.

import type { BatchNormRef, StoredTensor } from './desc.js';
import { dequantize, dequantizeU8, dequantizeWith, show, type DequantizeU8 } from './format.js';
import { ModelFormatError } from './errors.js';
import type { KernelExports } from './wasm.js';

/** Weights of one layer after folding: `w` with the output channel as the last (fastest) axis. */
export interface Folded {
  w: Float32Array;
  b: Float32Array;
}

/** Per-output-channel factors of a batch-norm fold: w' = w * scale[c], b' as given. */
export interface FoldFactors {
  scale: Float64Array;
  bias: Float32Array;
}

/**
 * The per-channel loop of a batch-norm fold over outC channels: fills `scale` (f64) and turns
 * `bias` (f32, in place) into the folded bias. Absent gamma and beta count as 1 and 0.
 */
export type FoldLoop = (
  outC: number, bias: Float32Array, scale: Float64Array, mean: Float32Array, variance: Float32Array,
  gamma: Float32Array | undefined, beta: Float32Array | undefined, epsilon: number,
) => void;

/** The fold's arithmetic in JavaScript: the reference (see fold_factors_f64 for the wasm form). */
export const foldLoop: FoldLoop = (outC, bias, scale, mean, variance, gamma, beta, epsilon) => {
  for (let c = 0; c < outC; c++) {
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon);
    bias[c] = (bias[c] - mean[c]) * scale[c] + (beta ? beta[c] : 0);
  }
};

/**
 * The fold of inference batch-norm into a convolution with outC output channels:
 * y = (conv(x) + b - mean) * gamma / sqrt(var + eps) + beta. Scales in f64, bias stored as f32.
 * Without batch-norm the scale is 1 and the bias is b (or zero). `loop` does the per-channel
 * arithmetic (the planner passes the same on the wasm module, see wasmLoadMath).
 */
export function foldFactors(
  b: Float32Array | undefined,
  outC: number,
  bn: BatchNormRef | undefined,
  get: (name: string) => Float32Array,
  loop: FoldLoop = foldLoop,
): FoldFactors {
  const bias = new Float32Array(outC);
  if (b) bias.set(b);
  const scale = new Float64Array(outC).fill(1);
  if (!bn) return { scale, bias };
  const gamma = bn.gamma ? get(bn.gamma) : undefined;
  const beta = bn.beta ? get(bn.beta) : undefined;
  loop(outC, bias, scale, get(bn.mean), get(bn.variance), gamma, beta, bn.epsilon);
  return { scale, bias };
}

/**
 * Folds inference batch-norm into a convolution whose output channel is w's last axis.
 * The JavaScript form of what the wasm packers do at load (assembly/pack.ts), bit for bit;
 * used by the ONNX exporter and as the reference in tests.
 */
export function foldBatchNorm(
  w: Float32Array,
  b: Float32Array | undefined,
  outC: number,
  bn: BatchNormRef | undefined,
  get: (name: string) => Float32Array,
): Folded {
  const { scale, bias } = foldFactors(b, outC, bn, get);
  const folded = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) folded[i] = w[i] * scale[i % outC];
  return { w: folded, b: bias };
}

/** Float count of a packed K x N GEMM: blocks of 8 outputs, each [8 biases][K rows of 8]. */
export function gemmPackedFloats(K: number, N: number): number {
  return Math.ceil(N / 8) * (K + 1) * 8;
}

/** Packs w (K x N, row-major) and b (N) for gemm_4x8_f32; missing columns are zero. */
export function packGemm(w: Float32Array, b: Float32Array, K: number, N: number): Float32Array {
  const out = new Float32Array(gemmPackedFloats(K, N));
  const blocks = Math.ceil(N / 8);
  for (let blk = 0; blk < blocks; blk++) {
    const base = blk * (K + 1) * 8;
    const n0 = blk * 8;
    const width = Math.min(8, N - n0);
    for (let j = 0; j < width; j++) out[base + j] = b[n0 + j];
    for (let k = 0; k < K; k++) {
      const row = base + 8 + k * 8;
      for (let j = 0; j < width; j++) out[row + j] = w[k * N + n0 + j];
    }
  }
  return out;
}

/** Float count of a packed 3x3 depthwise kernel of C channels (see assembly/depthwise.ts). */
export function dwPackedFloats(C: number): number {
  return Math.ceil(C / 4) * 40;
}

/**
 * Packs a 3x3 depthwise kernel ([3][3][C], channel fastest) and bias for the kernels:
 * [4G biases][G groups x 9 taps x 4 channels], G = ceil(C / 4), zero-padded lanes.
 */
export function packDepthwise(w: Float32Array, b: Float32Array, C: number): Float32Array {
  const G = Math.ceil(C / 4);
  const out = new Float32Array(G * 40);
  out.set(b.subarray(0, C), 0);
  for (let c = 0; c < C; c++) {
    for (let t = 0; t < 9; t++) out[4 * G + (c >> 2) * 36 + t * 4 + (c & 3)] = w[t * C + c];
  }
  return out;
}

/** What packWeights and wasmLoadMath need from the kernel module (signatures: KernelExports). */
type Packers = Pick<KernelExports,
  'memory' | 'pack_gemm_f32' | 'pack_gemm_u8' | 'pack_dw3x3_f32' | 'pack_dw3x3_u8' | 'first_nonfinite_f32' |
  'dequantize_u8_f32' | 'fold_factors_f64'>;

/** The load-time arithmetic of the planner: dequantizing small tensors, folding batch-norm. */
export interface LoadMath {
  dequantize(t: StoredTensor): Float32Array;
  foldLoop: FoldLoop;
}

/** LoadMath in JavaScript: the reference. */
export const JS_LOAD_MATH: LoadMath = { dequantize, foldLoop };

/**
 * LoadMath on the wasm module, value for value the same (dequantize_u8_f32: q * scale + min
 * in f64, rounded once; fold_factors_f64: the fold in f64), in its memory from byte `at` on
 * (8-byte aligned), which must be free; it grows the memory if needed and falls back to the
 * JavaScript loops where it cannot. At load V8 still interprets JavaScript: the ~70 K bias and
 * batch-norm values and 17 K fold channels of MobileNetV2 took ~20 ms there.
 */
export function wasmLoadMath(k: Packers, at: number): LoadMath {
  const room = (bytes: number): boolean => {
    const need = at + bytes - k.memory.buffer.byteLength;
    if (need <= 0) return true;
    try {
      k.memory.grow(Math.ceil(need / 65536));
      return true;
    } catch {
      return false;
    }
  };
  const u8: DequantizeU8 = (data, scale, min, out) => {
    const n = data.byteLength;
    const dst = at + Math.ceil(n / 4) * 4;
    if (!room(dst - at + 4 * n)) return dequantizeU8(data, scale, min, out);
    new Uint8Array(k.memory.buffer, at, n).set(data);
    k.dequantize_u8_f32(at, n, scale, min, dst);
    out.set(new Float32Array(k.memory.buffer, dst, n));
  };
  const fold: FoldLoop = (outC, bias, scale, mean, variance, gamma, beta, epsilon) => {
    const vectors = [bias, mean, variance, gamma, beta];
    if (vectors.some((v) => v !== undefined && v.length !== outC) || !room(8 * outC + 4 * outC * vectors.length)) {
      return foldLoop(outC, bias, scale, mean, variance, gamma, beta, epsilon);
    }
    // [outC f64 scales][bias][mean][variance][gamma][beta], f32 each.
    const addr = vectors.map((v, i) => {
      const p = at + 8 * outC + 4 * outC * i;
      if (v) new Float32Array(k.memory.buffer, p, outC).set(v);
      return v ? p : 0;
    });
    k.fold_factors_f64(outC, addr[0], addr[1], addr[2], addr[3], addr[4], epsilon, at);
    scale.set(new Float64Array(k.memory.buffer, at, outC));
    bias.set(new Float32Array(k.memory.buffer, addr[0], outC));
  };
  return { dequantize: (t) => dequantizeWith(t, u8), foldLoop: fold };
}

/**
 * One weight tensor to pack at load: `gemm` (K x N, row-major, -> GEMM blocks) or `dw` (3x3
 * depthwise, N = channels). The planner lists them; packWeights writes each at float offset
 * `at` of the weights region.
 */
export interface WeightJob {
  kind: 'gemm' | 'dw';
  tensor: StoredTensor;
  K: number;
  N: number;
  fold: FoldFactors;
  at: number;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** Bytes of staging memory packWeights needs: the largest tensor plus its fold factors. */
export function stagingBytes(jobs: readonly WeightJob[]): number {
  let most = 0;
  for (const j of jobs) {
    const stored = j.tensor.dtype === 'f16' ? j.tensor.data.byteLength * 2 : j.tensor.data.byteLength;
    most = Math.max(most, align8(stored) + 12 * j.N + 1024 + 64);
  }
  return most;
}

/**
 * Packs every job into the weights region at `weightsAt`, staging each stored tensor (as
 * stored: uint8 stays uint8, with a 256-entry table of its values) at `stagingAt`, which may
 * be the not-yet-used arena. Bit-identical to foldBatchNorm + packGemm/packDepthwise.
 */
export function packWeights(k: Packers, jobs: readonly WeightJob[], weightsAt: number, stagingAt: number): void {
  for (const j of jobs) {
    const t = j.tensor;
    const data = t.dtype === 'f16' ? new Uint8Array(dequantize(t).buffer) : t.data;
    const mem = k.memory.buffer;
    new Uint8Array(mem, stagingAt, data.byteLength).set(data);
    // 16-byte aligned: the packers read the f64 scales 2 at a time.
    const lutAt = stagingAt + Math.ceil(data.byteLength / 16) * 16;
    const scaleAt = lutAt + 1024;
    const biasAt = scaleAt + 8 * j.N;
    new Float64Array(mem, scaleAt, j.N).set(j.fold.scale);
    new Float32Array(mem, biasAt, j.N).set(j.fold.bias);
    if (t.dtype === 'u8') {
      // Each byte's value, computed as dequantize() does: q * scale + min in f64, rounded once.
      const lut = new Float32Array(mem, lutAt, 256);
      for (let q = 0; q < 256; q++) lut[q] = q * (t.scale ?? 0) + (t.min ?? 0);
    }
    const dst = weightsAt + 4 * j.at;
    const quantized = t.dtype === 'u8';
    if (j.kind === 'gemm') {
      if (quantized) k.pack_gemm_u8(stagingAt, lutAt, j.K, j.N, scaleAt, biasAt, dst);
      else k.pack_gemm_f32(stagingAt, j.K, j.N, scaleAt, biasAt, dst);
    } else {
      if (quantized) k.pack_dw3x3_u8(stagingAt, lutAt, j.N, scaleAt, biasAt, dst);
      else k.pack_dw3x3_f32(stagingAt, j.N, scaleAt, biasAt, dst);
    }
    // One pass over what the kernels will read: NaN or infinite weights (stored, or from a
    // quantization scale or batch-norm variance that overflows when folded) would make every
    // output NaN, so such a model is refused here, naming the tensor.
    const floats = j.kind === 'gemm' ? gemmPackedFloats(j.K, j.N) : dwPackedFloats(j.N);
    if (k.first_nonfinite_f32(dst, floats) >= 0) {
      throw new ModelFormatError(
        `weights of tensor ${show(t.name)} are not all finite after dequantization and batch-norm folding ` +
          '(NaN or Infinity stored, a quantization scale that overflows, or a batch-norm variance + epsilon <= 0)',
      );
    }
  }
}
