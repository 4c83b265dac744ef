// Depthwise 3x3 convolution, NHWC, channel multiplier 1, stride 1 or 2, with fused bias and clamp.
//
// Packed weights (built once at load): C biases, then the 9 taps in (ky, kx) order, C floats
// each: tap t of channel c is at w + (C + t * C + c) * 4. Batch-norm is already folded in.
//
// The unit of work is one output row computed from three input rows. Rows that fall in the
// vertical padding are passed as a zero row, so only the horizontal edges need bounds checks;
// the fused inverted-residual block feeds the same row kernel from its ring of expanded rows.

import { madd, clamp4, clamp1, SCALAR, X86, ARM } from "./simd";

/** First output column whose 3 input columns are all inside the row. */
// @ts-ignore: decorator
@inline function interiorStart(stride: i32, padLeft: i32): i32 {
  return (padLeft + stride - 1) / stride;
}

/** One past the last output column whose 3 input columns are all inside the row. */
// @ts-ignore: decorator
@inline function interiorEnd(inW: i32, outW: i32, stride: i32, padLeft: i32): i32 {
  const last = inW - 3 + padLeft;
  if (last < 0) return 0;
  const end = last / stride + 1;
  return end < outW ? end : outW;
}

/** One output pixel near the left/right edge, every channel, skipping taps outside the row. */
function edgePixel(
  r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, out: usize, ix0: i32,
  vlo: v128, vhi: v128, lo: f32, hi: f32, v: i32,
): void {
  const rowBytes = <usize>C << 2;
  let c = 0;
  if (v != SCALAR) {
    for (; c + 4 <= C; c += 4) {
      const cb = <usize>c << 2;
      let acc = v128.load(w + cb);
      for (let ky = 0; ky < 3; ky++) {
        const r = ky == 0 ? r0 : ky == 1 ? r1 : r2;
        for (let kx = 0; kx < 3; kx++) {
          const ix = ix0 + kx;
          if (ix < 0 || ix >= inW) continue;
          const tap = w + rowBytes * <usize>(1 + ky * 3 + kx) + cb;
          acc = madd(v128.load(r + <usize>ix * rowBytes + cb), v128.load(tap), acc);
        }
      }
      v128.store(out + cb, clamp4(acc, vlo, vhi, v == ARM));
    }
  }
  for (; c < C; c++) {
    const cb = <usize>c << 2;
    let acc = load<f32>(w + cb);
    for (let ky = 0; ky < 3; ky++) {
      const r = ky == 0 ? r0 : ky == 1 ? r1 : r2;
      for (let kx = 0; kx < 3; kx++) {
        const ix = ix0 + kx;
        if (ix < 0 || ix >= inW) continue;
        const tap = w + rowBytes * <usize>(1 + ky * 3 + kx) + cb;
        acc += load<f32>(r + <usize>ix * rowBytes + cb) * load<f32>(tap);
      }
    }
    store<f32>(out + cb, clamp1(acc, lo, hi));
  }
}

// @ts-ignore: decorator
@inline function dwRow(
  r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, out: usize, outW: i32,
  stride: i32, padLeft: i32, lo: f32, hi: f32, v: i32,
): void {
  assert(C > 0 && inW > 0 && outW > 0 && (stride == 1 || stride == 2), "dwconv3x3: bad sizes");
  assert(((r0 | r1 | r2 | w | out) & 3) == 0, "dwconv3x3: unaligned pointer");
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  const pix = <usize>C << 2;
  const step = <usize>stride * pix;
  const x0 = interiorStart(stride, padLeft);
  const x1 = interiorEnd(inW, outW, stride, padLeft);
  for (let ox = 0; ox < outW && ox < x0; ox++) {
    edgePixel(r0, r1, r2, inW, C, w, out + <usize>ox * pix, ox * stride - padLeft, vlo, vhi, lo, hi, v);
  }
  let c = 0;
  if (v != SCALAR) {
    // Channels outer, pixels inner: the 9 taps and the bias of 4 channels stay in registers
    // for the whole row. Successive pixels are independent, which hides the 9-deep chain.
    for (; c + 4 <= C; c += 4) {
      const cb = <usize>c << 2;
      const b = v128.load(w + cb);
      const wt = w + pix + cb;
      const k0 = v128.load(wt), k1 = v128.load(wt + pix), k2 = v128.load(wt + 2 * pix);
      const k3 = v128.load(wt + 3 * pix), k4 = v128.load(wt + 4 * pix), k5 = v128.load(wt + 5 * pix);
      const k6 = v128.load(wt + 6 * pix), k7 = v128.load(wt + 7 * pix), k8 = v128.load(wt + 8 * pix);
      let off = <usize>(x0 * stride - padLeft) * pix + cb;
      let o = out + <usize>x0 * pix + cb;
      for (let ox = x0; ox < x1; ox++) {
        let acc = madd(v128.load(r0 + off), k0, b);
        acc = madd(v128.load(r0 + off + pix), k1, acc);
        acc = madd(v128.load(r0 + off + 2 * pix), k2, acc);
        acc = madd(v128.load(r1 + off), k3, acc);
        acc = madd(v128.load(r1 + off + pix), k4, acc);
        acc = madd(v128.load(r1 + off + 2 * pix), k5, acc);
        acc = madd(v128.load(r2 + off), k6, acc);
        acc = madd(v128.load(r2 + off + pix), k7, acc);
        acc = madd(v128.load(r2 + off + 2 * pix), k8, acc);
        v128.store(o, clamp4(acc, vlo, vhi, v == ARM));
        off += step;
        o += pix;
      }
    }
  }
  for (; c < C; c++) {
    const cb = <usize>c << 2;
    const wt = w + pix + cb;
    for (let ox = x0; ox < x1; ox++) {
      const off = <usize>(ox * stride - padLeft) * pix + cb;
      let acc = load<f32>(w + cb);
      acc += load<f32>(r0 + off) * load<f32>(wt);
      acc += load<f32>(r0 + off + pix) * load<f32>(wt + pix);
      acc += load<f32>(r0 + off + 2 * pix) * load<f32>(wt + 2 * pix);
      acc += load<f32>(r1 + off) * load<f32>(wt + 3 * pix);
      acc += load<f32>(r1 + off + pix) * load<f32>(wt + 4 * pix);
      acc += load<f32>(r1 + off + 2 * pix) * load<f32>(wt + 5 * pix);
      acc += load<f32>(r2 + off) * load<f32>(wt + 6 * pix);
      acc += load<f32>(r2 + off + pix) * load<f32>(wt + 7 * pix);
      acc += load<f32>(r2 + off + 2 * pix) * load<f32>(wt + 8 * pix);
      store<f32>(out + <usize>ox * pix + cb, clamp1(acc, lo, hi));
    }
  }
  for (let ox = x0 > x1 ? x0 : x1; ox < outW; ox++) {
    edgePixel(r0, r1, r2, inW, C, w, out + <usize>ox * pix, ox * stride - padLeft, vlo, vhi, lo, hi, v);
  }
}

/** One output row from input rows r0..r2 (each inW x C; a zero row stands for padding), x86 variant. */
export function dwconv3x3_row_nhwc_f32_x86(
  r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, out: usize, outW: i32,
  stride: i32, padLeft: i32, lo: f32, hi: f32,
): void {
  dwRow(r0, r1, r2, inW, C, w, out, outW, stride, padLeft, lo, hi, X86);
}

/** ARM variant of dwconv3x3_row_nhwc_f32_x86 (min/max clamp). */
export function dwconv3x3_row_nhwc_f32_arm(
  r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, out: usize, outW: i32,
  stride: i32, padLeft: i32, lo: f32, hi: f32,
): void {
  dwRow(r0, r1, r2, inW, C, w, out, outW, stride, padLeft, lo, hi, ARM);
}

/** Scalar twin of the row kernels. */
export function dwconv3x3_row_nhwc_f32_scalar(
  r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, out: usize, outW: i32,
  stride: i32, padLeft: i32, lo: f32, hi: f32,
): void {
  dwRow(r0, r1, r2, inW, C, w, out, outW, stride, padLeft, lo, hi, SCALAR);
}

/** Calls the row kernel of variant v (constant at each call site). */
// @ts-ignore: decorator
@inline export function dwconv3x3_row(
  v: i32, r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, out: usize, outW: i32,
  stride: i32, padLeft: i32, lo: f32, hi: f32,
): void {
  if (v == X86) dwconv3x3_row_nhwc_f32_x86(r0, r1, r2, inW, C, w, out, outW, stride, padLeft, lo, hi);
  else if (v == ARM) dwconv3x3_row_nhwc_f32_arm(r0, r1, r2, inW, C, w, out, outW, stride, padLeft, lo, hi);
  else dwconv3x3_row_nhwc_f32_scalar(r0, r1, r2, inW, C, w, out, outW, stride, padLeft, lo, hi);
}

/** Row pointer for input row `y`, or the zero row when `y` is vertical padding. */
// @ts-ignore: decorator
@inline export function rowOrZero(base: usize, y: i32, H: i32, rowBytes: usize, zero: usize): usize {
  return y < 0 || y >= H ? zero : base + <usize>y * rowBytes;
}

// @ts-ignore: decorator
@inline function dwWhole(
  inp: usize, H: i32, W: i32, C: i32, w: usize, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, zero: usize, v: i32,
): void {
  const inRow = <usize>W * C << 2;
  memory.fill(zero, 0, inRow);
  const outRow = <usize>outW * C << 2;
  for (let oy = 0; oy < outH; oy++) {
    const y = oy * stride - padTop;
    const r0 = rowOrZero(inp, y, H, inRow, zero);
    const r1 = rowOrZero(inp, y + 1, H, inRow, zero);
    const r2 = rowOrZero(inp, y + 2, H, inRow, zero);
    dwconv3x3_row(v, r0, r1, r2, W, C, w, out + <usize>oy * outRow, outW, stride, padLeft, lo, hi);
  }
}

/**
 * Whole-tensor depthwise 3x3: inp H x W x C -> out outH x outW x C. Padding is given as the
 * top and left pads (bottom/right follow from the output size); `zero` is W * C floats of
 * scratch, zero-filled here to stand for the padding rows. x86 variant.
 */
export function dwconv3x3_nhwc_f32_x86(
  inp: usize, H: i32, W: i32, C: i32, w: usize, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, zero: usize,
): void {
  dwWhole(inp, H, W, C, w, out, outH, outW, stride, padTop, padLeft, lo, hi, zero, X86);
}

/** ARM variant of dwconv3x3_nhwc_f32_x86. */
export function dwconv3x3_nhwc_f32_arm(
  inp: usize, H: i32, W: i32, C: i32, w: usize, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, zero: usize,
): void {
  dwWhole(inp, H, W, C, w, out, outH, outW, stride, padTop, padLeft, lo, hi, zero, ARM);
}

/** Scalar twin of the whole-tensor depthwise kernels. */
export function dwconv3x3_nhwc_f32_scalar(
  inp: usize, H: i32, W: i32, C: i32, w: usize, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, zero: usize,
): void {
  dwWhole(inp, H, W, C, w, out, outH, outW, stride, padTop, padLeft, lo, hi, zero, SCALAR);
}
