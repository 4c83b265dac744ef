// Depthwise 3x3 convolution, NHWC, channel multiplier 1, stride 1 or 2, with fused bias and clamp.
//
// Packed weights (built once at load), with G = ceil(C / 4) groups of 4 channels:
//   [4G biases][G groups x 9 taps x 4 channels]
// tap t (ky * 3 + kx) of channel c is at w + (4G + (c >> 2) * 36 + t * 4 + (c & 3)) * 4, and
// the padding lanes of the last group are zero. A group's 9 taps are 144 contiguous bytes, so
// the kernel reaches them with constant offsets from one pointer. Batch-norm is folded in.
//
// The unit of work is one output row computed from three input rows. Rows that fall in the
// vertical padding are passed as a zero row, so only the horizontal edges need bounds checks;
// the fused inverted-residual block feeds the same row kernel from its window of expanded rows.
//
// Loops go pixel by pixel, channels innermost: all loads of a step are near each other. The
// other order (a channel group across the whole row) steps by whole pixels between loads,
// which on power-of-two channel counts (MobileNetV1: 256-1024) lands every load in the same
// L1 sets 2-4 KB apart and ran 2x slower.

import { madd, clamp4, clamp1, SCALAR, X86, ARM } from "./simd";

/** Floats of packed weights for C channels. */
// @ts-ignore: decorator
@inline export function dwPackedFloats(C: i32): i32 {
  return ((C + 3) >> 2) * 40;
}

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

/**
 * One output pixel, every channel. a0..a2 point at the pixel's leftmost input column in each
 * row (it may lie outside the row: then only columns with has0/has1/has2 set are read).
 * Taps are summed in (ky, kx) order, skipping columns outside the row, as the scalar twin does.
 */
// @ts-ignore: decorator
@inline function pixel(
  a0: usize, a1: usize, a2: usize, C: i32, w: usize, o: usize,
  has0: bool, has1: bool, has2: bool, vlo: v128, vhi: v128, lo: f32, hi: f32, v: i32,
): void {
  const pix = <usize>C << 2;
  const taps = w + (<usize>((C + 3) >> 2) << 4);
  let c = 0;
  let wg = taps;
  if (v != SCALAR) {
    for (; c + 4 <= C; c += 4) {
      const cb = <usize>c << 2;
      let acc = v128.load(w + cb);
      if (has0) acc = madd(v128.load(a0 + cb), v128.load(wg), acc);
      if (has1) acc = madd(v128.load(a0 + cb + pix), v128.load(wg + 16), acc);
      if (has2) acc = madd(v128.load(a0 + cb + 2 * pix), v128.load(wg + 32), acc);
      if (has0) acc = madd(v128.load(a1 + cb), v128.load(wg + 48), acc);
      if (has1) acc = madd(v128.load(a1 + cb + pix), v128.load(wg + 64), acc);
      if (has2) acc = madd(v128.load(a1 + cb + 2 * pix), v128.load(wg + 80), acc);
      if (has0) acc = madd(v128.load(a2 + cb), v128.load(wg + 96), acc);
      if (has1) acc = madd(v128.load(a2 + cb + pix), v128.load(wg + 112), acc);
      if (has2) acc = madd(v128.load(a2 + cb + 2 * pix), v128.load(wg + 128), acc);
      v128.store(o + cb, clamp4(acc, vlo, vhi, v == ARM));
      wg += 144;
    }
  }
  for (; c < C; c++) {
    const cb = <usize>c << 2;
    const t = taps + <usize>(c >> 2) * 144 + (<usize>(c & 3) << 2);
    let acc = load<f32>(w + cb);
    if (has0) acc += load<f32>(a0 + cb) * load<f32>(t);
    if (has1) acc += load<f32>(a0 + cb + pix) * load<f32>(t + 16);
    if (has2) acc += load<f32>(a0 + cb + 2 * pix) * load<f32>(t + 32);
    if (has0) acc += load<f32>(a1 + cb) * load<f32>(t + 48);
    if (has1) acc += load<f32>(a1 + cb + pix) * load<f32>(t + 64);
    if (has2) acc += load<f32>(a1 + cb + 2 * pix) * load<f32>(t + 80);
    if (has0) acc += load<f32>(a2 + cb) * load<f32>(t + 96);
    if (has1) acc += load<f32>(a2 + cb + pix) * load<f32>(t + 112);
    if (has2) acc += load<f32>(a2 + cb + 2 * pix) * load<f32>(t + 128);
    store<f32>(o + cb, clamp1(acc, lo, hi));
  }
}

/**
 * N = 2 or 4 neighbouring interior output pixels, every channel. Per kernel row the N outputs
 * read (N - 1) * S + 3 input columns, each loaded once and used at once by every output that
 * needs it, and share the 3 weights: loads per multiply-add fall from 2 (one pixel) to 1.2 /
 * 0.75 at stride 1 (1.3 / 1.0 at stride 2) for pairs / quads. Each output still adds its taps
 * in (ky, kx) order, so the sums are the scalar twin's. S and N are constants after inlining.
 */
// @ts-ignore: decorator
@inline function pixelRun(
  a0: usize, a1: usize, a2: usize, C: i32, w: usize, o: usize, S: i32, N: i32,
  vlo: v128, vhi: v128, lo: f32, hi: f32, v: i32,
): void {
  const pix = <usize>C << 2;
  const taps = w + (<usize>((C + 3) >> 2) << 4);
  const quad = N == 4;
  let c = 0;
  let wg = taps;
  const arm = v == ARM;
  for (; c + 4 <= C; c += 4) {
    const cb = <usize>c << 2;
    const bias = v128.load(w + cb);
    let A = bias;
    let B = bias;
    let D = bias;
    let E = bias;
    // The kernel row's input and weights: advanced after each row (a select and a multiply per
    // row otherwise, in V8's code for this loop).
    let a = a0 + cb;
    let wk = wg;
    for (let ky = 0; ky < 3; ky++) {
      const k0 = v128.load(wk);
      const k1 = v128.load(wk + 16);
      const k2 = v128.load(wk + 32);
      // Input column j feeds output i with tap j - i * S.
      if (S == 1) {
        A = madd(v128.load(a), k0, A);
        let x = v128.load(a + pix);
        A = madd(x, k1, A);
        B = madd(x, k0, B);
        x = v128.load(a + 2 * pix);
        A = madd(x, k2, A);
        B = madd(x, k1, B);
        if (quad) D = madd(x, k0, D);
        x = v128.load(a + 3 * pix);
        B = madd(x, k2, B);
        if (quad) {
          D = madd(x, k1, D);
          E = madd(x, k0, E);
          x = v128.load(a + 4 * pix);
          D = madd(x, k2, D);
          E = madd(x, k1, E);
          E = madd(v128.load(a + 5 * pix), k2, E);
        }
      } else {
        A = madd(v128.load(a), k0, A);
        A = madd(v128.load(a + pix), k1, A);
        let x = v128.load(a + 2 * pix);
        A = madd(x, k2, A);
        B = madd(x, k0, B);
        B = madd(v128.load(a + 3 * pix), k1, B);
        x = v128.load(a + 4 * pix);
        B = madd(x, k2, B);
        if (quad) {
          D = madd(x, k0, D);
          D = madd(v128.load(a + 5 * pix), k1, D);
          x = v128.load(a + 6 * pix);
          D = madd(x, k2, D);
          E = madd(x, k0, E);
          E = madd(v128.load(a + 7 * pix), k1, E);
          E = madd(v128.load(a + 8 * pix), k2, E);
        }
      }
      a = (ky == 0 ? a1 : a2) + cb;
      wk += 48;
    }
    v128.store(o + cb, clamp4(A, vlo, vhi, arm));
    v128.store(o + pix + cb, clamp4(B, vlo, vhi, arm));
    if (quad) {
      v128.store(o + 2 * pix + cb, clamp4(D, vlo, vhi, arm));
      v128.store(o + 3 * pix + cb, clamp4(E, vlo, vhi, arm));
    }
    wg += 144;
  }
  if (c < C) {
    // Channels past the last group of 4: the single-pixel code, for each pixel.
    const so = <usize>S * pix;
    for (let i = 0; i < N; i++) {
      const at = <usize>i * so;
      pixelTail(a0 + at, a1 + at, a2 + at, C, w, o + <usize>i * pix, c, lo, hi);
    }
  }
}

/** Channels c0..C of one interior pixel, scalar. */
// @ts-ignore: decorator
@inline function pixelTail(a0: usize, a1: usize, a2: usize, C: i32, w: usize, o: usize, c0: i32, lo: f32, hi: f32): void {
  const pix = <usize>C << 2;
  const taps = w + (<usize>((C + 3) >> 2) << 4);
  for (let c = c0; c < C; c++) {
    const cb = <usize>c << 2;
    const t = taps + <usize>(c >> 2) * 144 + (<usize>(c & 3) << 2);
    let acc = load<f32>(w + cb);
    acc += load<f32>(a0 + cb) * load<f32>(t);
    acc += load<f32>(a0 + cb + pix) * load<f32>(t + 16);
    acc += load<f32>(a0 + cb + 2 * pix) * load<f32>(t + 32);
    acc += load<f32>(a1 + cb) * load<f32>(t + 48);
    acc += load<f32>(a1 + cb + pix) * load<f32>(t + 64);
    acc += load<f32>(a1 + cb + 2 * pix) * load<f32>(t + 80);
    acc += load<f32>(a2 + cb) * load<f32>(t + 96);
    acc += load<f32>(a2 + cb + pix) * load<f32>(t + 112);
    acc += load<f32>(a2 + cb + 2 * pix) * load<f32>(t + 128);
    store<f32>(o + cb, clamp1(acc, lo, hi));
  }
}

/** A pixel near the left or right edge: some of its three input columns are outside the row. */
function edgePixel(
  r0: usize, r1: usize, r2: usize, inW: i32, C: i32, w: usize, o: usize, ix0: i32,
  vlo: v128, vhi: v128, lo: f32, hi: f32, v: i32,
): void {
  // Columns outside the row are never read, so the base may point outside it.
  const base = <usize>ix0 * (<usize>C << 2);
  const has0 = ix0 >= 0 && ix0 < inW;
  const has1 = ix0 + 1 >= 0 && ix0 + 1 < inW;
  const has2 = ix0 + 2 >= 0 && ix0 + 2 < inW;
  pixel(r0 + base, r1 + base, r2 + base, C, w, o, has0, has1, has2, vlo, vhi, lo, hi, v);
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
  const x0 = interiorStart(stride, padLeft);
  const x1 = interiorEnd(inW, outW, stride, padLeft);
  for (let ox = 0; ox < outW && ox < x0; ox++) {
    edgePixel(r0, r1, r2, inW, C, w, out + <usize>ox * pix, ox * stride - padLeft, vlo, vhi, lo, hi, v);
  }
  let ox = x0;
  if (v != SCALAR) {
    // Quads, then a pair, of interior pixels; the stride becomes a constant inside each loop.
    if (stride == 1) {
      for (; ox + 3 < x1; ox += 4) {
        const base = <usize>(ox - padLeft) * pix;
        pixelRun(r0 + base, r1 + base, r2 + base, C, w, out + <usize>ox * pix, 1, 4, vlo, vhi, lo, hi, v);
      }
      for (; ox + 1 < x1; ox += 2) {
        const base = <usize>(ox - padLeft) * pix;
        pixelRun(r0 + base, r1 + base, r2 + base, C, w, out + <usize>ox * pix, 1, 2, vlo, vhi, lo, hi, v);
      }
    } else {
      for (; ox + 3 < x1; ox += 4) {
        const base = <usize>(ox * 2 - padLeft) * pix;
        pixelRun(r0 + base, r1 + base, r2 + base, C, w, out + <usize>ox * pix, 2, 4, vlo, vhi, lo, hi, v);
      }
      for (; ox + 1 < x1; ox += 2) {
        const base = <usize>(ox * 2 - padLeft) * pix;
        pixelRun(r0 + base, r1 + base, r2 + base, C, w, out + <usize>ox * pix, 2, 2, vlo, vhi, lo, hi, v);
      }
    }
  }
  for (; ox < x1; ox++) {
    const base = <usize>(ox * stride - padLeft) * pix;
    pixel(r0 + base, r1 + base, r2 + base, C, w, out + <usize>ox * pix, true, true, true, vlo, vhi, lo, hi, v);
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
