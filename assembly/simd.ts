// Inline building blocks shared by the kernels. Each is resolved at compile time, so a
// kernel that uses them costs exactly the instructions it would cost written out.

// Kernel variants. Every op has a scalar twin (for tests) and two SIMD forms that differ only in
// speed: x86 (4-row GEMM tiles, pmin/pmax clamps) and ARM (6-row tiles, min/max clamps).
// Wasm semantics are identical everywhere, so every variant is tested on every machine.
export const SCALAR = 0;
export const X86 = 1;
export const ARM = 2;

/** a * b + c. The relaxed build gets a fused multiply-add (one instruction on x86 and
 *  ARM); the plain build a mul and an add, which V8 cannot fuse on its own. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  }
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Clamp to [lo, hi]. On x86 pmin/pmax are one instruction each while min/max expand to 7-8
 *  for IEEE NaN rules; on ARM min/max are single instructions and pmin/pmax are not. Inputs
 *  are finite (the host rejects NaN), where both forms give the same values. */
// @ts-ignore: decorator
@inline export function clamp4(v: v128, lo: v128, hi: v128, arm: bool = false): v128 {
  if (arm) return f32x4.min(f32x4.max(v, lo), hi);
  return f32x4.pmin(f32x4.pmax(v, lo), hi);
}

/** Scalar clamp with the same NaN behaviour as clamp4. */
// @ts-ignore: decorator
@inline export function clamp1(v: f32, lo: f32, hi: f32): f32 {
  let r = v < lo ? lo : v;
  return hi < r ? hi : r;
}

/** Stores the first `n` (0..4) lanes of `v` at `p`. Lane indices must be constants. */
// @ts-ignore: decorator
@inline export function storeLanes(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
    return;
  }
  if (n > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p + 4, f32x4.extract_lane(v, 1));
  if (n > 2) store<f32>(p + 8, f32x4.extract_lane(v, 2));
}
