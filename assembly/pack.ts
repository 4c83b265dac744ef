// Load-time weight packing, run once per model: stored weights (f32, or uint8 affine-quantized
// as value = q * qscale + qmin) are dequantized, scaled per output channel by the folded
// batch-norm factor and written in the layouts the kernels read (see pointwise.ts and
// depthwise.ts).
//
// These run once, so V8 runs them in its baseline compiler (Liftoff), where each wasm
// instruction costs several machine instructions: the loops handle 4 weights per step to keep
// load time low (~2.6 M weights for MobileNetV2). The arithmetic is exactly src/pack.ts's: a
// uint8 weight is looked up in a 256-entry table of f32(q * scale + min) computed in f64 by
// the host (so weights are bit-identical to the ones TF.js loads from the same file), then
// multiplied by the folded batch-norm scale in f64 and rounded once to f32.

/** 4 stored weights at element i as f32x4: a table look-up for uint8, a load for f32. */
// @ts-ignore: decorator
@inline function load4(src: usize, i: usize, quantized: bool, lut: usize): v128 {
  if (quantized) {
    let v = f32x4.splat(load<f32>(lut + (<usize>load<u8>(src + i) << 2)));
    v = f32x4.replace_lane(v, 1, load<f32>(lut + (<usize>load<u8>(src + i + 1) << 2)));
    v = f32x4.replace_lane(v, 2, load<f32>(lut + (<usize>load<u8>(src + i + 2) << 2)));
    return f32x4.replace_lane(v, 3, load<f32>(lut + (<usize>load<u8>(src + i + 3) << 2)));
  }
  return v128.load(src + (i << 2));
}

/** One stored weight at element i. */
// @ts-ignore: decorator
@inline function load1(src: usize, i: usize, quantized: bool, lut: usize): f32 {
  if (quantized) return load<f32>(lut + (<usize>load<u8>(src + i) << 2));
  return load<f32>(src + (i << 2));
}

/** f32(w * s) with the product in f64, 4 lanes; s points at 4 f64 scales. */
// @ts-ignore: decorator
@inline function scale4(w: v128, s: usize): v128 {
  const lo = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(w), v128.load(s)));
  const hi = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(v128.swizzle(w, i8x16(8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0))), v128.load(s + 16)));
  return v128.shuffle<u32>(lo, hi, 0, 1, 4, 5);
}

// @ts-ignore: decorator
@inline function packGemm(
  src: usize, quantized: bool, lut: usize,
  K: i32, N: i32, colScale: usize, bias: usize, dst: usize,
): void {
  const blocks = (N + 7) >> 3;
  for (let b = 0; b < blocks; b++) {
    const base = dst + <usize>b * (<usize>K + 1) * 32;
    const n0 = b << 3;
    const width = N - n0 < 8 ? N - n0 : 8;
    memory.fill(base, 0, (<usize>K + 1) * 32);
    memory.copy(base, bias + (<usize>n0 << 2), <usize>width << 2);
    const s0 = colScale + (<usize>n0 << 3);
    if (width == 8) {
      for (let k = 0; k < K; k++) {
        const i = <usize>k * N + n0;
        const row = base + 32 + (<usize>k << 5);
        v128.store(row, scale4(load4(src, i, quantized, lut), s0));
        v128.store(row + 16, scale4(load4(src, i + 4, quantized, lut), s0 + 32));
      }
    } else {
      for (let k = 0; k < K; k++) {
        const row = base + 32 + (<usize>k << 5);
        for (let j = 0; j < width; j++) {
          const w = load1(src, <usize>k * N + n0 + j, quantized, lut);
          store<f32>(row + (<usize>j << 2), <f32>(<f64>w * load<f64>(s0 + (<usize>j << 3))));
        }
      }
    }
  }
}

/** K x N f32 weights (row-major) -> packed GEMM blocks; colScale: N f64, bias: N f32. */
export function pack_gemm_f32(src: usize, K: i32, N: i32, colScale: usize, bias: usize, dst: usize): void {
  packGemm(src, false, 0, K, N, colScale, bias, dst);
}

/** The same from uint8 weights; lut: 256 f32, the dequantized value of each byte. */
export function pack_gemm_u8(src: usize, lut: usize, K: i32, N: i32, colScale: usize, bias: usize, dst: usize): void {
  packGemm(src, true, lut, K, N, colScale, bias, dst);
}

// @ts-ignore: decorator
@inline function packDw(
  src: usize, quantized: bool, lut: usize, C: i32, colScale: usize, bias: usize, dst: usize,
): void {
  const G = (C + 3) >> 2;
  memory.fill(dst, 0, <usize>G * 160);
  memory.copy(dst, bias, <usize>C << 2);
  const taps = dst + (<usize>G << 4);
  for (let g = 0; g < G; g++) {
    const c0 = g << 2;
    const out = taps + <usize>g * 144;
    const s = colScale + (<usize>c0 << 3);
    for (let t = 0; t < 9; t++) {
      const i = <usize>t * C + c0;
      if (c0 + 4 <= C) {
        v128.store(out + (<usize>t << 4), scale4(load4(src, i, quantized, lut), s));
      } else {
        for (let j = 0; c0 + j < C; j++) {
          const w = load1(src, i + j, quantized, lut);
          store<f32>(out + (<usize>t << 4) + (<usize>j << 2), <f32>(<f64>w * load<f64>(s + (<usize>j << 3))));
        }
      }
    }
  }
}

/** 3x3 depthwise f32 weights ([3][3][C]) -> [4G biases][G groups x 9 taps x 4] (see depthwise.ts). */
export function pack_dw3x3_f32(src: usize, C: i32, colScale: usize, bias: usize, dst: usize): void {
  packDw(src, false, 0, C, colScale, bias, dst);
}

/** The same from uint8 weights; lut: 256 f32, the dequantized value of each byte. */
export function pack_dw3x3_u8(src: usize, lut: usize, C: i32, colScale: usize, bias: usize, dst: usize): void {
  packDw(src, true, lut, C, colScale, bias, dst);
}

/**
 * Index of the first NaN or infinity among n floats at p, or -1. Run over each packed tensor
 * at load: a model whose weights are not finite is refused there rather than giving NaN later.
 * x - x is NaN exactly when x is NaN or infinite.
 */
export function first_nonfinite_f32(p: usize, n: i32): i32 {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(p + (<usize>i << 2));
    const d = f32x4.sub(v, v);
    if (v128.any_true(f32x4.ne(d, d))) break;
  }
  for (; i < n; i++) {
    const x = load<f32>(p + (<usize>i << 2));
    if (x - x != x - x) return i;
  }
  return -1;
}

/**
 * dst[i] = f32(src[i] * scale + min), computed in f64 and rounded once: the host's
 * dequantize() of a uint8 tensor, value for value. The planner dequantizes the biases and
 * batch-norm vectors (~70 K values for MobileNetV2) here at load, where the same loop in
 * JavaScript, still interpreted then, cost ~10 ms.
 */
export function dequantize_u8_f32(src: usize, n: i32, scale: f64, min: f64, dst: usize): void {
  for (let i = 0; i < n; i++) {
    store<f32>(dst + (<usize>i << 2), <f32>(<f64>load<u8>(src + <usize>i) * scale + min));
  }
}

/**
 * The per-channel factors of a batch-norm fold, as the host's foldFactors() computes them, value
 * for value: scale[c] = gamma[c] / sqrt(variance[c] + eps) in f64, and bias[c] (in place, f32)
 * = (bias[c] - mean[c]) * scale[c] + beta[c], in f64 and rounded once. gamma or beta at address
 * 0 means absent (1 and 0). Cold JavaScript took ~10 ms over MobileNetV2's 17 K channels.
 */
export function fold_factors_f64(
  C: i32, bias: usize, mean: usize, variance: usize, gamma: usize, beta: usize, eps: f64, scale: usize,
): void {
  for (let c = 0; c < C; c++) {
    const at = <usize>c << 2;
    const g: f64 = gamma ? <f64>load<f32>(gamma + at) : 1.0;
    const s = g / Math.sqrt(<f64>load<f32>(variance + at) + eps);
    store<f64>(scale + (<usize>c << 3), s);
    const b: f64 = beta ? <f64>load<f32>(beta + at) : 0.0;
    store<f32>(bias + at, <f32>((<f64>load<f32>(bias + at) - <f64>load<f32>(mean + at)) * s + b));
  }
}
