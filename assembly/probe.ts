// The peak probe: how many f32x4 multiply-adds per second this wasm engine can issue, measured
// in the same module and run as the kernels, so kernel figures can be given as a % of it.

import { madd } from "./simd";

/**
 * Runs `iters` rounds of 12 independent multiply-add chains (enough to cover the mul + add
 * latency on current x86 and ARM cores: fewer chains measured lower here) and stores a checksum at `out` so nothing is optimized away.
 * Flops = iters * 12 chains * 4 lanes * 2.
 */
export function peak_madd_f32(iters: i32, seed: f32, out: usize): void {
  const a = f32x4.splat(0.999);
  const b = f32x4.splat(seed * 1e-3);
  let c0 = f32x4.splat(seed), c1 = f32x4.splat(seed + 1), c2 = f32x4.splat(seed + 2);
  let c3 = f32x4.splat(seed + 3), c4 = f32x4.splat(seed + 4), c5 = f32x4.splat(seed + 5);
  let c6 = f32x4.splat(seed + 6), c7 = f32x4.splat(seed + 7), c8 = f32x4.splat(seed + 8);
  let c9 = f32x4.splat(seed + 9), c10 = f32x4.splat(seed + 10), c11 = f32x4.splat(seed + 11);
  for (let i = 0; i < iters; i++) {
    c0 = madd(c0, a, b);
    c1 = madd(c1, a, b);
    c2 = madd(c2, a, b);
    c3 = madd(c3, a, b);
    c4 = madd(c4, a, b);
    c5 = madd(c5, a, b);
    c6 = madd(c6, a, b);
    c7 = madd(c7, a, b);
    c8 = madd(c8, a, b);
    c9 = madd(c9, a, b);
    c10 = madd(c10, a, b);
    c11 = madd(c11, a, b);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)),
    f32x4.add(f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)), f32x4.add(f32x4.add(c8, c9), f32x4.add(c10, c11))));
  v128.store(out, s);
}
