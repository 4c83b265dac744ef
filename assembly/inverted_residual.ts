// The fused MobileNetV2 inverted-residual block (and, without the expansion, the MobileNetV1
// depthwise-separable pair):
//   expand 1x1 + clamp -> depthwise 3x3 (stride 1|2) + clamp -> project 1x1 + clamp -> (+ input)
//
// It streams over output rows. Expanded rows are produced on demand into a ring of 3 rows, so
// the expanded tensor (6x the input channels) never exists whole: the arena holds only the
// block's input, its output, and (3 * W + outW) * Cexp floats of scratch. Each output row
// needs expanded rows oy*stride - padTop + {0,1,2}; those increase with oy and 3 consecutive
// rows never collide modulo 3, so a row is computed exactly once.

import { gemm_4x8_f32, gemm_f32_scalar } from "./pointwise";
import { dwconv3x3_row_nhwc_f32, dwconv3x3_row_nhwc_f32_scalar } from "./depthwise";

/** Floats of scratch the block needs: the ring, one zero row and one depthwise output row. */
export function ibottleneck_scratch_floats(W: i32, Cexp: i32, outW: i32, hasExpand: i32): i32 {
  return (hasExpand ? 3 * W * Cexp : 0) + W * Cexp + outW * Cexp;
}

// @ts-ignore: decorator
@inline function block(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, residual: i32,
  out: usize, outH: i32, outW: i32, scratch: usize, simd: bool,
): void {
  const hasExpand = ew != 0;
  const expRow = <usize>W * Cexp << 2;
  const inRow = <usize>W * Cin << 2;
  const outRow = <usize>outW * Cout << 2;
  const ring = scratch;
  const zero = scratch + (hasExpand ? 3 * expRow : 0);
  const dwOut = zero + expRow;
  memory.fill(zero, 0, expRow);
  let done = -1; // highest input row expanded so far
  for (let oy = 0; oy < outH; oy++) {
    const y0 = oy * stride - padTop;
    let r0: usize, r1: usize, r2: usize;
    if (hasExpand) {
      const last = y0 + 2 < H ? y0 + 2 : H - 1;
      for (let y = done + 1; y <= last; y++) {
        if (y < 0) continue;
        const dst = ring + <usize>(y % 3) * expRow;
        const src = inp + <usize>y * inRow;
        if (simd) gemm_4x8_f32(W, Cin, Cexp, src, ew, dst, elo, ehi, 0);
        else gemm_f32_scalar(W, Cin, Cexp, src, ew, dst, elo, ehi, 0);
        done = y;
      }
      r0 = y0 < 0 || y0 >= H ? zero : ring + <usize>(y0 % 3) * expRow;
      r1 = y0 + 1 < 0 || y0 + 1 >= H ? zero : ring + <usize>((y0 + 1) % 3) * expRow;
      r2 = y0 + 2 < 0 || y0 + 2 >= H ? zero : ring + <usize>((y0 + 2) % 3) * expRow;
    } else {
      r0 = y0 < 0 || y0 >= H ? zero : inp + <usize>y0 * inRow;
      r1 = y0 + 1 < 0 || y0 + 1 >= H ? zero : inp + <usize>(y0 + 1) * inRow;
      r2 = y0 + 2 < 0 || y0 + 2 >= H ? zero : inp + <usize>(y0 + 2) * inRow;
    }
    if (simd) dwconv3x3_row_nhwc_f32(r0, r1, r2, W, Cexp, dw, dwOut, outW, stride, padLeft, dlo, dhi);
    else dwconv3x3_row_nhwc_f32_scalar(r0, r1, r2, W, Cexp, dw, dwOut, outW, stride, padLeft, dlo, dhi);
    // The residual exists only when stride is 1 and shapes match, so input row oy lines up.
    const res = residual ? inp + <usize>oy * inRow : 0;
    const dst = out + <usize>oy * outRow;
    if (simd) gemm_4x8_f32(outW, Cexp, Cout, dwOut, pw, dst, plo, phi, res);
    else gemm_f32_scalar(outW, Cexp, Cout, dwOut, pw, dst, plo, phi, res);
  }
}

/**
 * inp H x W x Cin -> out outH x outW x Cout. ew: packed expand GEMM weights (Cin x Cexp), or 0
 * for no expansion (then Cexp == Cin); dw: packed depthwise weights; pw: packed project GEMM
 * weights (Cexp x Cout). residual != 0 adds the input (needs stride 1 and Cin == Cout).
 * scratch: ibottleneck_scratch_floats(...) floats, must not overlap inp or out.
 */
export function ibottleneck3x3_nhwc_f32(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, residual: i32,
  out: usize, outH: i32, outW: i32, scratch: usize,
): void {
  block(inp, H, W, Cin, ew, Cexp, elo, ehi, dw, stride, padTop, padLeft, dlo, dhi,
    pw, Cout, plo, phi, residual, out, outH, outW, scratch, true);
}

/** Scalar twin of ibottleneck3x3_nhwc_f32 (same streaming schedule, scalar kernels). */
export function ibottleneck3x3_nhwc_f32_scalar(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, residual: i32,
  out: usize, outH: i32, outW: i32, scratch: usize,
): void {
  block(inp, H, W, Cin, ew, Cexp, elo, ehi, dw, stride, padTop, padLeft, dlo, dhi,
    pw, Cout, plo, phi, residual, out, outH, outW, scratch, false);
}
