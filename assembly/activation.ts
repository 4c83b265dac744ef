// Elementwise kernels: clamp (ReLU6 = clamp to [0, 6], ReLU = [0, +inf]), add, and softmax.

import { clamp4, clamp1 } from "./simd";

/** out[i] = clamp(x[i], lo, hi) for n floats; out may equal x. */
export function clamp_f32(x: usize, n: i32, lo: f32, hi: f32, out: usize): void {
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, clamp4(v128.load(x + o), vlo, vhi));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, clamp1(load<f32>(x + o), lo, hi));
  }
}

/** Scalar twin of clamp_f32. */
export function clamp_f32_scalar(x: usize, n: i32, lo: f32, hi: f32, out: usize): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, clamp1(load<f32>(x + o), lo, hi));
  }
}

/** out[i] = a[i] + b[i] for n floats; out may equal a or b. */
export function add_f32(a: usize, b: usize, n: i32, out: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** Scalar twin of add_f32. */
export function add_f32_scalar(a: usize, b: usize, n: i32, out: usize): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** Numerically stable softmax of n floats (scalar: n is a class count, and exp has no SIMD form). */
export function softmax_f32(x: usize, n: i32, out: usize): void {
  let m = -Infinity as f32;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v > m) m = v;
  }
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(<f64>(load<f32>(x + (<usize>i << 2)) - m));
    store<f32>(out + (<usize>i << 2), <f32>e);
    sum += e;
  }
  const inv = <f32>(1.0 / sum);
  for (let i = 0; i < n; i++) {
    const o = out + (<usize>i << 2);
    store<f32>(o, load<f32>(o) * inv);
  }
}
