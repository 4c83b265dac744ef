// Turning stored weights into what the kernels read: dequantized f32, batch-norm folded into
// each convolution's weights and bias, then packed in the kernels' layouts (see
// assembly/pointwise.ts and assembly/depthwise.ts). Done once, at load.

import type { BatchNormRef } from './desc.js';

/** Weights of one layer after folding: `w` with the output channel as the last (fastest) axis. */
export interface Folded {
  w: Float32Array;
  b: Float32Array;
}

/**
 * Folds inference batch-norm into a convolution whose output channel is w's last axis:
 * y = (conv(x) + b - mean) * gamma / sqrt(var + eps) + beta. Computed in f64, stored as f32.
 */
export function foldBatchNorm(
  w: Float32Array,
  b: Float32Array | undefined,
  outC: number,
  bn: BatchNormRef | undefined,
  get: (name: string) => Float32Array,
): Folded {
  const bias = new Float32Array(outC);
  if (b) bias.set(b);
  if (!bn) return { w: Float32Array.from(w), b: bias };
  const mean = get(bn.mean);
  const variance = get(bn.variance);
  const gamma = bn.gamma ? get(bn.gamma) : undefined;
  const beta = bn.beta ? get(bn.beta) : undefined;
  const scale = new Float64Array(outC);
  for (let c = 0; c < outC; c++) {
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + bn.epsilon);
    bias[c] = (bias[c] - mean[c]) * scale[c] + (beta ? beta[c] : 0);
  }
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

/** Packs a 3x3 depthwise kernel ([3][3][C], channel fastest) and bias: [C biases][9 taps x C]. */
export function packDepthwise(w: Float32Array, b: Float32Array, C: number): Float32Array {
  const out = new Float32Array(10 * C);
  out.set(b.subarray(0, C), 0);
  out.set(w.subarray(0, 9 * C), C);
  return out;
}
