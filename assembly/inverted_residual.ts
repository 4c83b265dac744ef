// The fused MobileNetV2 inverted-residual block (and, without the expansion, the MobileNetV1
// depthwise-separable pair):
//   expand 1x1 + clamp -> depthwise 3x3 (stride 1|2) + clamp -> project 1x1 + clamp -> (+ input)
//
// It streams over strips of S output rows. Expanded rows live in a ring of `cap` rows (row y in
// slot y % cap), so the expanded tensor (6x the input channels) never exists whole: the arena
// holds the block's input, its output and ibottleneck_scratch_floats() of scratch. Rows are
// expanded exactly once, in order, by one GEMM per contiguous run of slots, and nothing is
// ever copied: a strip reads at most (S - 1) * stride + 3 <= cap consecutive rows, so a new
// row only overwrites one no strip needs any more. Strips let narrow layers (7x7, 14x14) run
// their GEMMs on S * W pixels at a time instead of W, which keeps the register tiles busy.

import { gemm } from "./pointwise";
import { dwconv3x3_row } from "./depthwise";
import { conv3x3 } from "./conv";
import { SCALAR, X86, ARM } from "./simd";

/** Input rows one strip of S output rows reads. */
// @ts-ignore: decorator
@inline function stripRows(S: i32, stride: i32): i32 {
  return (S - 1) * stride + 3;
}

/** Floats of scratch the block needs: the row ring, one zero row and S depthwise output rows. */
export function ibottleneck_scratch_floats(W: i32, Cexp: i32, outW: i32, hasExpand: i32, S: i32, cap: i32): i32 {
  return (hasExpand ? cap * W * Cexp : 0) + W * Cexp + S * outW * Cexp;
}

/** Smallest ring (in rows) the block accepts for strips of S rows. */
export function ibottleneck_min_cap(S: i32, stride: i32): i32 {
  return stripRows(S, stride);
}

/** Where input row y of the depthwise stage is: the ring (expanded), the input, or padding. */
// @ts-ignore: decorator
@inline function rowAt(
  y: i32, H: i32, hasExpand: bool, ring: usize, cap: i32, expRow: usize, inp: usize, inRow: usize, zero: usize,
): usize {
  if (y < 0 || y >= H) return zero;
  return hasExpand ? ring + <usize>(y % cap) * expRow : inp + <usize>y * inRow;
}

// @ts-ignore: decorator
@inline function block(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, res: usize,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize, v: i32,
  conv: bool = false, cInp: usize = 0, cH: i32 = 0, cW: i32 = 0, cC: i32 = 0,
  cStride: i32 = 0, cPadTop: i32 = 0, cPadLeft: i32 = 0, im2col: usize = 0,
): void {
  assert(S >= 1 && cap >= stripRows(S, stride), "ibottleneck: ring smaller than a strip");
  assert(ew != 0 || Cexp == Cin, "ibottleneck: no expansion needs Cexp == Cin");
  assert(res == 0 || (stride == 1 && Cin == Cout && outW == W), "ibottleneck: bad residual");
  const hasExpand = ew != 0;
  const expRow = <usize>W * Cexp << 2;
  const inRow = <usize>W * Cin << 2;
  const outRow = <usize>outW * Cout << 2;
  const dwRow = <usize>outW * Cexp << 2;
  const ring = scratch;
  const zero = scratch + (hasExpand ? <usize>cap * expRow : 0);
  const dwOut = zero + expRow;
  memory.fill(zero, 0, expRow);
  // The next input row to expand. A row range (padTop < 0, see below) starts at its own first
  // input row.
  let next = padTop < 0 ? -padTop : 0;
  for (let oy0 = 0; oy0 < outH; oy0 += S) {
    const rows = outH - oy0 < S ? outH - oy0 : S;
    const yLo = oy0 * stride - padTop;
    if (hasExpand) {
      const yHi = yLo + (rows - 1) * stride + 2;
      const last = yHi < H ? yHi : H - 1;
      while (next <= last) {
        const slot = next % cap;
        const n = last - next + 1 < cap - slot ? last - next + 1 : cap - slot;
        if (conv) {
          // One stem output row at a time: the im2col row buffer holds one row.
          for (let i = 0; i < n; i++) {
            conv3x3(v, cInp, cH, cW, cC, ew, Cexp, ring + <usize>(slot + i) * expRow, 1, W,
              cStride, cPadTop - (next + i) * cStride, cPadLeft, elo, ehi, im2col);
          }
        } else {
          gemm(v, n * W, Cin, Cexp, inp + <usize>next * inRow, ew, ring + <usize>slot * expRow, elo, ehi, 0, Cexp);
        }
        next += n;
      }
    }
    for (let r = 0; r < rows; r++) {
      const y = yLo + r * stride;
      const r0 = rowAt(y, H, hasExpand, ring, cap, expRow, inp, inRow, zero);
      const r1 = rowAt(y + 1, H, hasExpand, ring, cap, expRow, inp, inRow, zero);
      const r2 = rowAt(y + 2, H, hasExpand, ring, cap, expRow, inp, inRow, zero);
      dwconv3x3_row(v, r0, r1, r2, W, Cexp, dw, dwOut + <usize>r * dwRow, outW, stride, padLeft, dlo, dhi);
    }
    const dst = out + <usize>oy0 * outRow;
    gemm(v, rows * outW, Cexp, Cout, dwOut, pw, dst, plo, phi, res == 0 ? 0 : res + <usize>oy0 * outRow, Cout);
  }
}

/**
 * inp H x W x Cin -> out outH x outW x Cout. ew: packed expand GEMM weights (Cin x Cexp), or 0
 * for no expansion (then Cexp == Cin); dw: packed depthwise weights; pw: packed project GEMM
 * weights (Cexp x Cout). res: a tensor of the output's shape to add (the residual input; it
 * needs stride 1 and Cin == Cout), or 0.
 * A range of output rows [r0, r1) is computed by passing out + r0 * outW * Cout floats,
 * outH = r1 - r0 and padTop - r0 * stride (res moved like out): how threads split a block.
 * S: output rows per strip (>= 1); cap: ring rows, >= ibottleneck_min_cap(S, stride).
 * scratch: ibottleneck_scratch_floats(...) floats, must not overlap inp or out. x86 variant.
 */
export function ibottleneck3x3_nhwc_f32_x86(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, res: usize,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize,
): void {
  block(inp, H, W, Cin, ew, Cexp, elo, ehi, dw, stride, padTop, padLeft, dlo, dhi,
    pw, Cout, plo, phi, res, out, outH, outW, S, cap, scratch, X86);
}

/** ARM variant of ibottleneck3x3_nhwc_f32_x86. */
export function ibottleneck3x3_nhwc_f32_arm(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, res: usize,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize,
): void {
  block(inp, H, W, Cin, ew, Cexp, elo, ehi, dw, stride, padTop, padLeft, dlo, dhi,
    pw, Cout, plo, phi, res, out, outH, outW, S, cap, scratch, ARM);
}

/** Scalar twin (same streaming schedule, scalar kernels). */
export function ibottleneck3x3_nhwc_f32_scalar(
  inp: usize, H: i32, W: i32, Cin: i32,
  ew: usize, Cexp: i32, elo: f32, ehi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32, res: usize,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize,
): void {
  block(inp, H, W, Cin, ew, Cexp, elo, ehi, dw, stride, padTop, padLeft, dlo, dhi,
    pw, Cout, plo, phi, res, out, outH, outW, S, cap, scratch, SCALAR);
}

/** Floats of scratch stem3x3_block_nhwc_f32_* needs: the block's, plus one im2col row. */
export function stem_block_scratch_floats(W: i32, Cexp: i32, outW: i32, S: i32, cap: i32, cC: i32): i32 {
  return ibottleneck_scratch_floats(W, Cexp, outW, 1, S, cap) + W * 9 * cC;
}

/** The block with the stem's convolution as its expansion; the im2col row after the block's scratch. */
// @ts-ignore: decorator
@inline function stemBlock(
  cInp: usize, cH: i32, cW: i32, cC: i32, cStride: i32, cPadTop: i32, cPadLeft: i32,
  cw: usize, H: i32, W: i32, Cexp: i32, clo: f32, chi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize, v: i32,
): void {
  const im2col = scratch + (<usize>ibottleneck_scratch_floats(W, Cexp, outW, 1, S, cap) << 2);
  block(0, H, W, 0, cw, Cexp, clo, chi, dw, stride, padTop, padLeft, dlo, dhi, pw, Cout, plo, phi, 0,
    out, outH, outW, S, cap, scratch, v, true, cInp, cH, cW, cC, cStride, cPadTop, cPadLeft, im2col);
}

/**
 * The stem fused with the first block: a 3x3 convolution (inp cH x cW x cC, stride cStride,
 * pads cPadTop / cPadLeft, weights cw packed as a (9 * cC) x Cexp GEMM, clamp clo..chi) makes
 * the H x W x Cexp rows that ibottleneck3x3_nhwc_f32_x86's expansion would: depthwise and
 * project follow as there. The stem's output (the largest tensor of a MobileNet) is never
 * stored whole. Row ranges work as for ibottleneck: shift padTop (not cPadTop).
 * scratch: stem_block_scratch_floats(...) floats. x86 variant.
 */
export function stem3x3_block_nhwc_f32_x86(
  cInp: usize, cH: i32, cW: i32, cC: i32, cStride: i32, cPadTop: i32, cPadLeft: i32,
  cw: usize, H: i32, W: i32, Cexp: i32, clo: f32, chi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize,
): void {
  stemBlock(cInp, cH, cW, cC, cStride, cPadTop, cPadLeft, cw, H, W, Cexp, clo, chi,
    dw, stride, padTop, padLeft, dlo, dhi, pw, Cout, plo, phi, out, outH, outW, S, cap, scratch, X86);
}

/** ARM variant of stem3x3_block_nhwc_f32_x86. */
export function stem3x3_block_nhwc_f32_arm(
  cInp: usize, cH: i32, cW: i32, cC: i32, cStride: i32, cPadTop: i32, cPadLeft: i32,
  cw: usize, H: i32, W: i32, Cexp: i32, clo: f32, chi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize,
): void {
  stemBlock(cInp, cH, cW, cC, cStride, cPadTop, cPadLeft, cw, H, W, Cexp, clo, chi,
    dw, stride, padTop, padLeft, dlo, dhi, pw, Cout, plo, phi, out, outH, outW, S, cap, scratch, ARM);
}

/** Scalar twin (same schedule, scalar GEMM under the im2col rows). */
export function stem3x3_block_nhwc_f32_scalar(
  cInp: usize, cH: i32, cW: i32, cC: i32, cStride: i32, cPadTop: i32, cPadLeft: i32,
  cw: usize, H: i32, W: i32, Cexp: i32, clo: f32, chi: f32,
  dw: usize, stride: i32, padTop: i32, padLeft: i32, dlo: f32, dhi: f32,
  pw: usize, Cout: i32, plo: f32, phi: f32,
  out: usize, outH: i32, outW: i32, S: i32, cap: i32, scratch: usize,
): void {
  stemBlock(cInp, cH, cW, cC, cStride, cPadTop, cPadLeft, cw, H, W, Cexp, clo, chi,
    dw, stride, padTop, padLeft, dlo, dhi, pw, Cout, plo, phi, out, outH, outW, S, cap, scratch, SCALAR);
}
