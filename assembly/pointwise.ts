// Pointwise (1x1) convolution over NHWC pixels is a GEMM: out[M x N] = a[M x K] * W[K x N] + bias,
// then clamp, then an optional residual add. The same kernel serves dense layers (M = 1) and,
// after im2col, full convolutions.
//
// Packed weights (built once at load by the host): N is split into blocks of 8 output channels,
// zero-padded at the end. Each block holds its 8 biases, then K rows of 8 weights:
//   block b at w + b * (K + 1) * 8 floats: [bias x8][w(k=0) x8][w(k=1) x8]...
// so the inner loop reads one contiguous stream of weights per block.

import { madd, clamp4, clamp1, storeLanes, X86, ARM } from "./simd";

/** Bytes of packed weights for a K x N GEMM. */
export function gemm_packed_bytes(K: i32, N: i32): i32 {
  return ((N + 7) >> 3) * (K + 1) * 32;
}

// @ts-ignore: decorator
@inline function finishRow8(
  o: usize, c0: v128, c1: v128, nrem: i32, vlo: v128, vhi: v128, r: usize, arm: bool,
): void {
  c0 = clamp4(c0, vlo, vhi, arm);
  c1 = clamp4(c1, vlo, vhi, arm);
  if (nrem >= 8) {
    if (r != 0) {
      c0 = f32x4.add(c0, v128.load(r));
      c1 = f32x4.add(c1, v128.load(r, 16));
    }
    v128.store(o, c0);
    v128.store(o, c1, 16);
    return;
  }
  // Last, partial block: only nrem lanes belong to this row.
  storeLanes(o, c0, nrem);
  storeLanes(o + 16, c1, nrem - 4);
  if (r != 0) {
    for (let j = 0; j < nrem; j++) {
      const p = o + (<usize>j << 2);
      store<f32>(p, load<f32>(p) + load<f32>(r + (<usize>j << 2)));
    }
  }
}

/**
 * One tile: MR rows (1..6, a compile-time constant after inlining) x one block of 8 columns,
 * 2 * MR accumulators; each k step loads the block's 8 weights once for all MR rows.
 */
// @ts-ignore: decorator
@inline function tile(
  MR: i32, arm: bool, K: i32, a0: usize, rowA: usize, wb: usize,
  o: usize, rowO: usize, r: usize, nrem: i32, vlo: v128, vhi: v128,
): void {
  const aEnd = a0 + (<usize>K << 2);
  let c00 = v128.load(wb);
  let c01 = v128.load(wb, 16);
  let c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01;
  let c40 = c00, c41 = c01, c50 = c00, c51 = c01;
  let wp = wb + 32;
  for (let ap = a0; ap < aEnd; ap += 4) {
    const w0 = v128.load(wp);
    const w1 = v128.load(wp, 16);
    const x0 = v128.load32_splat(ap);
    c00 = madd(x0, w0, c00);
    c01 = madd(x0, w1, c01);
    if (MR > 1) {
      const x1 = v128.load32_splat(ap + rowA);
      c10 = madd(x1, w0, c10);
      c11 = madd(x1, w1, c11);
    }
    if (MR > 2) {
      const x2 = v128.load32_splat(ap + 2 * rowA);
      c20 = madd(x2, w0, c20);
      c21 = madd(x2, w1, c21);
    }
    if (MR > 3) {
      const x3 = v128.load32_splat(ap + 3 * rowA);
      c30 = madd(x3, w0, c30);
      c31 = madd(x3, w1, c31);
    }
    if (MR > 4) {
      const x4 = v128.load32_splat(ap + 4 * rowA);
      c40 = madd(x4, w0, c40);
      c41 = madd(x4, w1, c41);
    }
    if (MR > 5) {
      const x5 = v128.load32_splat(ap + 5 * rowA);
      c50 = madd(x5, w0, c50);
      c51 = madd(x5, w1, c51);
    }
    wp += 32;
  }
  finishRow8(o, c00, c01, nrem, vlo, vhi, r, arm);
  if (MR > 1) finishRow8(o + rowO, c10, c11, nrem, vlo, vhi, r == 0 ? 0 : r + rowO, arm);
  if (MR > 2) finishRow8(o + 2 * rowO, c20, c21, nrem, vlo, vhi, r == 0 ? 0 : r + 2 * rowO, arm);
  if (MR > 3) finishRow8(o + 3 * rowO, c30, c31, nrem, vlo, vhi, r == 0 ? 0 : r + 3 * rowO, arm);
  if (MR > 4) finishRow8(o + 4 * rowO, c40, c41, nrem, vlo, vhi, r == 0 ? 0 : r + 4 * rowO, arm);
  if (MR > 5) finishRow8(o + 5 * rowO, c50, c51, nrem, vlo, vhi, r == 0 ? 0 : r + 5 * rowO, arm);
}

/** Bytes of input rows one chunk may span: inside L2 (1 MB per core on current x86 and ARM
 *  cores) next to the streaming weights, and large enough that a 7x7 layer is one chunk. */
const CHUNK_BYTES: i32 = 256 * 1024;

/**
 * The GEMM: rows in chunks whose inputs stay in L2; within a chunk, column blocks outermost,
 * so each block's weights (K x 8 floats, 4 KB at K = 128, 32 KB at K = 1024) stay in L1 while
 * every row tile of the chunk uses them. The other order re-reads all weights per row tile,
 * which costs up to 2.5x on layers whose weights exceed L2 (MobileNetV1's 512/1024-wide 1x1s).
 * Rows go in tiles of MR, then one 4-row tile if it fits, then single rows.
 */
// @ts-ignore: decorator
@inline export function gemmTiled(
  MR: i32, arm: bool,
  M: i32, K: i32, N: i32, a: usize, w: usize, out: usize, lo: f32, hi: f32, res: usize, ldo: i32,
): void {
  // Checked in the debug build only (release builds use --noAssert).
  assert(M >= 0 && K > 0 && N > 0 && ldo >= N, "gemm: bad sizes");
  assert(((a | w | out | res) & 3) == 0, "gemm: unaligned pointer");
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  const rowA = <usize>K << 2;
  const rowO = <usize>ldo << 2;
  const blockBytes = (<usize>K + 1) << 5;
  let chunk = CHUNK_BYTES / (K << 2);
  chunk = chunk < MR ? MR : chunk - chunk % MR;
  for (let m0 = 0; m0 < M; m0 += chunk) {
    const mEnd = M - m0 < chunk ? M : m0 + chunk;
    let wb = w;
    for (let n = 0; n < N; n += 8) {
      const nrem = N - n;
      const colO = out + (<usize>n << 2);
      const colR: usize = res == 0 ? 0 : res + (<usize>n << 2);
      let m = m0;
      for (; m + MR <= mEnd; m += MR) {
        tile(MR, arm, K, a + <usize>m * rowA, rowA, wb, colO + <usize>m * rowO, rowO,
          colR == 0 ? <usize>0 : colR + <usize>m * rowO, nrem, vlo, vhi);
      }
      if (MR > 4 && m + 4 <= mEnd) {
        tile(4, arm, K, a + <usize>m * rowA, rowA, wb, colO + <usize>m * rowO, rowO,
          colR == 0 ? <usize>0 : colR + <usize>m * rowO, nrem, vlo, vhi);
        m += 4;
      }
      for (; m < mEnd; m++) {
        tile(1, arm, K, a + <usize>m * rowA, rowA, wb, colO + <usize>m * rowO, rowO,
          colR == 0 ? <usize>0 : colR + <usize>m * rowO, nrem, vlo, vhi);
      }
      wb += blockBytes;
    }
  }
}

/**
 * SIMD GEMM, x86 variant: 4 x 8 register tile (8 accumulators; V8 on x86 has 15 usable xmm
 * registers and larger tiles spill), clamp with pmin/pmax.
 * a: M x K floats, row-major; w: packed as above; out, res: M x N floats (res = 0 for none),
 * ldo floats apart from row to row: N, or more when the call computes a range of columns of a
 * wider result (w then starts at the range's first block, out and res at its first column).
 * out = clamp(a * W + bias, lo, hi) + res.
 */
export function gemm_4x8_f32_x86(
  M: i32, K: i32, N: i32, a: usize, w: usize, out: usize, lo: f32, hi: f32, res: usize, ldo: i32,
): void {
  gemmTiled(4, false, M, K, N, a, w, out, lo, hi, res, ldo);
}

/** SIMD GEMM, ARM variant: 6 x 8 tile (12 accumulators fit ARM's 32 vector registers), min/max clamp. */
export function gemm_6x8_f32_arm(
  M: i32, K: i32, N: i32, a: usize, w: usize, out: usize, lo: f32, hi: f32, res: usize, ldo: i32,
): void {
  gemmTiled(6, true, M, K, N, a, w, out, lo, hi, res, ldo);
}

/** Scalar twin of the SIMD GEMMs: same arguments, same packed layout, same result order. */
export function gemm_f32_scalar(
  M: i32, K: i32, N: i32, a: usize, w: usize, out: usize, lo: f32, hi: f32, res: usize, ldo: i32,
): void {
  const blockBytes = (<usize>K + 1) << 5;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const wb = w + <usize>(n >> 3) * blockBytes + (<usize>(n & 7) << 2);
      let acc = load<f32>(wb);
      for (let k = 0; k < K; k++) {
        acc += load<f32>(a + ((<usize>m * K + k) << 2)) * load<f32>(wb + 32 + (<usize>k << 5));
      }
      let v = clamp1(acc, lo, hi);
      const i = (<usize>m * ldo + n) << 2;
      if (res != 0) v += load<f32>(res + i);
      store<f32>(out + i, v);
    }
  }
}

/** Calls the GEMM of variant v (a constant at every call site, so this folds to one call). */
// @ts-ignore: decorator
@inline export function gemm(
  v: i32, M: i32, K: i32, N: i32, a: usize, w: usize, out: usize, lo: f32, hi: f32, res: usize, ldo: i32,
): void {
  if (v == X86) gemm_4x8_f32_x86(M, K, N, a, w, out, lo, hi, res, ldo);
  else if (v == ARM) gemm_6x8_f32_arm(M, K, N, a, w, out, lo, hi, res, ldo);
  else gemm_f32_scalar(M, K, N, a, w, out, lo, hi, res, ldo);
}
