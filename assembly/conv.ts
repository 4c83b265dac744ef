// Full 3x3 convolution, NHWC (the MobileNet stem: 3 input channels, stride 2).
//
// The SIMD version gathers one output row's receptive fields into a small contiguous buffer
// (im2col, K = 9 * Cin values per pixel, zeros where the window leaves the image) and hands it
// to the register-tiled GEMM, so the stem reuses the pointwise kernel and its packed weights:
// weights [3,3,Cin,N] (HWIO) are exactly a (9*Cin) x N matrix.

import { gemm } from "./pointwise";
import { clamp1, X86, ARM } from "./simd";

// Short copies: memory.copy/fill calls cost more than the 9-36 bytes they move here.
// @ts-ignore: decorator
@inline function copyFloats(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

// @ts-ignore: decorator
@inline function fillZero(dst: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), f32x4.splat(0));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}

/** Floats of scratch conv3x3_nhwc_f32 needs: one im2col row. */
export function conv3x3_scratch_floats(Cin: i32, outW: i32): i32 {
  return outW * 9 * Cin;
}

/*
 * inp H x W x Cin -> out outH x outW x N, weights packed for a (9*Cin) x N GEMM
 * (see pointwise.ts), TF padding given by its top/left pads. scratch: outW * 9 * Cin floats.
 */
// @ts-ignore: decorator
@inline export function conv3x3(
  v: i32,
  inp: usize, H: i32, W: i32, Cin: i32, w: usize, N: i32, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, scratch: usize,
): void {
  const pix = <usize>Cin << 2;
  const K = 9 * Cin;
  const outRow = <usize>outW * N << 2;
  const seg = 3 * Cin; // one kernel row's window: 3 neighbouring pixels, contiguous in NHWC
  const pixK = <usize>K << 2;
  for (let oy = 0; oy < outH; oy++) {
    // Kernel row by kernel row: the row's bounds are checked once, and at 3 input channels
    // (the RGB stem) a window row is 9 floats, copied without a loop.
    for (let ky = 0; ky < 3; ky++) {
      const iy = oy * stride - padTop + ky;
      let dst = scratch + (<usize>(ky * seg) << 2);
      if (iy < 0 || iy >= H) {
        for (let ox = 0; ox < outW; ox++, dst += pixK) fillZero(dst, seg);
        continue;
      }
      const row = inp + <usize>iy * W * pix;
      for (let ox = 0; ox < outW; ox++, dst += pixK) {
        const ix0 = ox * stride - padLeft;
        if (ix0 >= 0 && ix0 + 3 <= W) {
          const src = row + <usize>ix0 * pix;
          if (seg == 9) {
            v128.store(dst, v128.load(src));
            v128.store(dst, v128.load(src, 16), 16);
            store<f32>(dst, load<f32>(src, 32), 32);
          } else {
            copyFloats(dst, src, seg);
          }
        } else {
          for (let kx = 0; kx < 3; kx++) {
            const ix = ix0 + kx;
            const d = dst + <usize>kx * pix;
            if (ix < 0 || ix >= W) fillZero(d, Cin);
            else copyFloats(d, row + <usize>ix * pix, Cin);
          }
        }
      }
    }
    gemm(v, outW, K, N, scratch, w, out + <usize>oy * outRow, lo, hi, 0, N);
  }
}

/** x86 variant of the 3x3 convolution (see conv3x3 above). */
export function conv3x3_nhwc_f32_x86(
  inp: usize, H: i32, W: i32, Cin: i32, w: usize, N: i32, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, scratch: usize,
): void {
  conv3x3(X86, inp, H, W, Cin, w, N, out, outH, outW, stride, padTop, padLeft, lo, hi, scratch);
}

/** ARM variant of the 3x3 convolution. */
export function conv3x3_nhwc_f32_arm(
  inp: usize, H: i32, W: i32, Cin: i32, w: usize, N: i32, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, scratch: usize,
): void {
  conv3x3(ARM, inp, H, W, Cin, w, N, out, outH, outW, stride, padTop, padLeft, lo, hi, scratch);
}

/** Scalar twin: direct convolution over the same packed weights, no scratch used. */
export function conv3x3_nhwc_f32_scalar(
  inp: usize, H: i32, W: i32, Cin: i32, w: usize, N: i32, out: usize, outH: i32, outW: i32,
  stride: i32, padTop: i32, padLeft: i32, lo: f32, hi: f32, scratch: usize,
): void {
  const K = 9 * Cin;
  const blockBytes = (<usize>K + 1) << 5;
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      for (let n = 0; n < N; n++) {
        const wb = w + <usize>(n >> 3) * blockBytes + (<usize>(n & 7) << 2);
        let acc = load<f32>(wb);
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy * stride - padTop + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox * stride - padLeft + kx;
            if (ix < 0 || ix >= W) continue;
            for (let ci = 0; ci < Cin; ci++) {
              const k = (ky * 3 + kx) * Cin + ci;
              const x = load<f32>(inp + ((<usize>(iy * W + ix) * Cin + ci) << 2));
              acc += x * load<f32>(wb + 32 + (<usize>k << 5));
            }
          }
        }
        store<f32>(out + ((<usize>(oy * outW + ox) * N + n) << 2), clamp1(acc, lo, hi));
      }
    }
  }
}
