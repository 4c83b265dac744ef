// Load-time weight packing, run once per model: stored weights (f32, or uint8 affine-quantized
// as value = q * qscale + qmin) are dequantized, scaled per output channel by the folded
// batch-norm factor and written in the layouts the kernels read (see pointwise.ts and
// depthwise.ts). Doing this in wasm instead of JavaScript keeps load time low: the loops run
// compiled from the first call instead of in the JS interpreter.
//
// The arithmetic matches src/pack.ts exactly (f64 products rounded once to f32), so a model
// packs to the same bits either way; a test checks it.

// @ts-ignore: decorator
@inline function weightAt(src: usize, i: usize, quantized: bool, qscale: f64, qmin: f64): f32 {
  if (quantized) return <f32>(<f64>load<u8>(src + i) * qscale + qmin);
  return load<f32>(src + (i << 2));
}

// @ts-ignore: decorator
@inline function packGemm(
  src: usize, quantized: bool, qscale: f64, qmin: f64,
  K: i32, N: i32, colScale: usize, bias: usize, dst: usize,
): void {
  const blocks = (N + 7) >> 3;
  for (let b = 0; b < blocks; b++) {
    const base = dst + <usize>b * (<usize>K + 1) * 32;
    const n0 = b << 3;
    memory.fill(base, 0, (<usize>K + 1) * 32);
    const width = N - n0 < 8 ? N - n0 : 8;
    for (let j = 0; j < width; j++) {
      store<f32>(base + (<usize>j << 2), load<f32>(bias + (<usize>(n0 + j) << 2)));
    }
    for (let k = 0; k < K; k++) {
      const row = base + 32 + (<usize>k << 5);
      for (let j = 0; j < width; j++) {
        const n = n0 + j;
        const w = weightAt(src, <usize>k * N + n, quantized, qscale, qmin);
        store<f32>(row + (<usize>j << 2), <f32>(<f64>w * load<f64>(colScale + (<usize>n << 3))));
      }
    }
  }
}

/** K x N f32 weights (row-major) -> packed GEMM blocks; colScale: N f64, bias: N f32. */
export function pack_gemm_f32(src: usize, K: i32, N: i32, colScale: usize, bias: usize, dst: usize): void {
  packGemm(src, false, 0, 0, K, N, colScale, bias, dst);
}

/** The same from uint8 affine-quantized weights. */
export function pack_gemm_u8(
  src: usize, qscale: f64, qmin: f64, K: i32, N: i32, colScale: usize, bias: usize, dst: usize,
): void {
  packGemm(src, true, qscale, qmin, K, N, colScale, bias, dst);
}

// @ts-ignore: decorator
@inline function packDw(
  src: usize, quantized: bool, qscale: f64, qmin: f64, C: i32, colScale: usize, bias: usize, dst: usize,
): void {
  const G = (C + 3) >> 2;
  memory.fill(dst, 0, <usize>G * 160);
  memory.copy(dst, bias, <usize>C << 2);
  const taps = dst + (<usize>G << 4);
  for (let t = 0; t < 9; t++) {
    for (let c = 0; c < C; c++) {
      const w = weightAt(src, <usize>t * C + c, quantized, qscale, qmin);
      const at = taps + <usize>(c >> 2) * 144 + <usize>t * 16 + (<usize>(c & 3) << 2);
      store<f32>(at, <f32>(<f64>w * load<f64>(colScale + (<usize>c << 3))));
    }
  }
}

/** 3x3 depthwise f32 weights ([3][3][C]) -> [4G biases][G groups x 9 taps x 4] (see depthwise.ts). */
export function pack_dw3x3_f32(src: usize, C: i32, colScale: usize, bias: usize, dst: usize): void {
  packDw(src, false, 0, 0, C, colScale, bias, dst);
}

/** The same from uint8 affine-quantized weights. */
export function pack_dw3x3_u8(
  src: usize, qscale: f64, qmin: f64, C: i32, colScale: usize, bias: usize, dst: usize,
): void {
  packDw(src, true, qscale, qmin, C, colScale, bias, dst);
}
