// A bump allocator over one kernel instance, and plain JavaScript references (f64 math)
// that the kernel tests compare against.
import { instantiateKernels, type KernelExports, type WasmBuild } from '../../src/wasm.js';
import { mulberry32 } from '../../src/builders.js';

export { mulberry32 };

export class Heap {
  private top: number;
  constructor(readonly k: KernelExports, private readonly grow: (bytes: number) => void) {
    this.top = Math.ceil(k.heap_base() / 64) * 64;
  }
  /** Allocates and fills `data` (or zeros); returns the byte pointer. */
  put(data: Float32Array | number): number {
    const n = typeof data === 'number' ? data : data.length;
    const p = this.top;
    this.top += Math.ceil((n * 4 + 64) / 64) * 64; // a gap after each buffer catches overruns
    this.grow(this.top + 64);
    const view = new Float32Array(this.k.memory.buffer, p, n + 16);
    view.fill(NaN); // NaN guard after the data
    if (typeof data !== 'number') view.set(data);
    else view.fill(0, 0, n);
    return p;
  }
  get(p: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, p, n).slice();
  }
  /** The guard floats right after a buffer of n floats: must still be NaN. */
  guardIntact(p: number, n: number): boolean {
    return new Float32Array(this.k.memory.buffer, p + n * 4, 16).every((v) => Number.isNaN(v));
  }
  reset(): void {
    this.top = Math.ceil(this.k.heap_base() / 64) * 64;
  }
}

export async function kernels(build: WasmBuild = 'simd'): Promise<Heap> {
  const inst = await instantiateKernels(build);
  return new Heap(inst.exports, (b) => inst.ensureMemory(b));
}

export function randomArray(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

/** max |a-b| / max(1, |b|) over all elements: relative for large values, absolute near zero. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** max |a-b| over all elements (Infinity where either is NaN). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export const clampJs = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

/** out = clamp(a(MxK) * w(KxN) + b) + res */
export function gemmRef(M: number, K: number, N: number, a: Float32Array, w: Float32Array, b: Float32Array,
  lo: number, hi: number, res?: Float32Array): Float32Array {
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = b[n];
      for (let k = 0; k < K; k++) acc += a[m * K + k] * w[k * N + n];
      out[m * N + n] = clampJs(acc, lo, hi) + (res ? res[m * N + n] : 0);
    }
  }
  return out;
}

export interface Pads { top: number; left: number; outH: number; outW: number }

/** TF SAME / VALID / explicit pads -> top/left pads and output size for a 3x3 window. */
export function pads3(H: number, W: number, stride: number, mode: 'same' | 'valid' | 'explicit'): Pads {
  if (mode === 'valid') return { top: 0, left: 0, outH: Math.floor((H - 3) / stride) + 1, outW: Math.floor((W - 3) / stride) + 1 };
  if (mode === 'explicit') {
    // Keras ZeroPadding2D(((0,1),(0,1))) then valid.
    return { top: 0, left: 0, outH: Math.floor((H + 1 - 3) / stride) + 1, outW: Math.floor((W + 1 - 3) / stride) + 1 };
  }
  const outH = Math.ceil(H / stride), outW = Math.ceil(W / stride);
  const ph = Math.max((outH - 1) * stride + 3 - H, 0), pw = Math.max((outW - 1) * stride + 3 - W, 0);
  return { top: Math.floor(ph / 2), left: Math.floor(pw / 2), outH, outW };
}

/** Depthwise 3x3: w is [3][3][C], b is [C]. */
export function dwRef(x: Float32Array, H: number, W: number, C: number, w: Float32Array, b: Float32Array,
  stride: number, p: Pads, lo: number, hi: number): Float32Array {
  const out = new Float32Array(p.outH * p.outW * C);
  for (let oy = 0; oy < p.outH; oy++) for (let ox = 0; ox < p.outW; ox++) for (let c = 0; c < C; c++) {
    let acc = b[c];
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
      const iy = oy * stride - p.top + ky, ix = ox * stride - p.left + kx;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      acc += x[(iy * W + ix) * C + c] * w[(ky * 3 + kx) * C + c];
    }
    out[(oy * p.outW + ox) * C + c] = clampJs(acc, lo, hi);
  }
  return out;
}

/** Full 3x3 convolution: w is [3][3][Cin][N] (HWIO), b is [N]. */
export function convRef(x: Float32Array, H: number, W: number, Cin: number, w: Float32Array, b: Float32Array, N: number,
  stride: number, p: Pads, lo: number, hi: number): Float32Array {
  const out = new Float32Array(p.outH * p.outW * N);
  for (let oy = 0; oy < p.outH; oy++) for (let ox = 0; ox < p.outW; ox++) for (let n = 0; n < N; n++) {
    let acc = b[n];
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
      const iy = oy * stride - p.top + ky, ix = ox * stride - p.left + kx;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      for (let c = 0; c < Cin; c++) acc += x[(iy * W + ix) * Cin + c] * w[((ky * 3 + kx) * Cin + c) * N + n];
    }
    out[(oy * p.outW + ox) * N + n] = clampJs(acc, lo, hi);
  }
  return out;
}
