// The raw kernel ABI of docs/ABI.md, used the way another runtime would use it: the .wasm file
// instantiated with plain WebAssembly.instantiate (no loader, no src/ host), memory laid out by
// hand from heap_base(), inputs and packed weights written per the documented layouts (not
// with src/pack.ts), one depthwise and one pointwise kernel run in every variant and checked
// against naive JavaScript loops.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';

const file = (name: string): Uint8Array => readFileSync(new URL(`../build/${name}`, import.meta.url));

/** A small deterministic generator (values in [-1, 1)). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}
const randoms = (r: () => number, n: number): Float32Array => Float32Array.from({ length: n }, r);

type Fn = (...args: number[]) => number;
interface Raw {
  memory: WebAssembly.Memory;
  heap_base: Fn;
  gemm_packed_bytes: Fn;
  [kernel: string]: Fn | WebAssembly.Memory;
}

/** A bump allocator over the host's part of memory (from heap_base(), 64-byte aligned). */
class Layout {
  private at: number;
  constructor(private readonly k: Raw) {
    this.at = align(k.heap_base(), 64);
  }
  /** Reserves n floats (plus 4 guard floats set to a sentinel) and returns the byte offset. */
  floats(n: number, values?: Float32Array): number {
    const p = this.at;
    this.at = align(p + (n + 4) * 4, 64);
    const need = this.at - this.k.memory.buffer.byteLength;
    if (need > 0) this.k.memory.grow(Math.ceil(need / 65536));
    const view = new Float32Array(this.k.memory.buffer, p, n + 4);
    view.fill(0);
    if (values) view.set(values);
    view.fill(GUARD, n);
    return p;
  }
  read(p: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, p, n).slice();
  }
  guardIntact(p: number, n: number): boolean {
    return new Float32Array(this.k.memory.buffer, p + n * 4, 4).every((x) => x === GUARD);
  }
}
const GUARD = -12345.5;
const align = (n: number, a: number): number => Math.ceil(n / a) * a;

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

// ---- the packed layouts, written from docs/ABI.md --------------------------------------

/** GEMM: ceil(N/8) blocks of (K + 1) x 8 floats: [8 biases][K rows of 8 weights], zero-padded. */
function packGemmByHand(w: Float32Array, bias: Float32Array, K: number, N: number): Float32Array {
  const blocks = Math.ceil(N / 8);
  const out = new Float32Array(blocks * (K + 1) * 8);
  for (let n = 0; n < N; n++) {
    const b = n >> 3, j = n & 7;
    const base = b * (K + 1) * 8;
    out[base + j] = bias[n];
    for (let k = 0; k < K; k++) out[base + 8 + k * 8 + j] = w[k * N + n];
  }
  return out;
}

/** Depthwise 3x3: G = ceil(C/4); [4G biases][G groups x 9 taps x 4 lanes], zero-padded. */
function packDwByHand(w: Float32Array, bias: Float32Array, C: number): Float32Array {
  const G = Math.ceil(C / 4);
  const out = new Float32Array(40 * G);
  for (let c = 0; c < C; c++) {
    out[c] = bias[c];
    for (let t = 0; t < 9; t++) out[4 * G + (c >> 2) * 36 + t * 4 + (c & 3)] = w[t * C + c];
  }
  return out;
}

// ---- naive references (f64 sums) ---------------------------------------------------------

const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

function gemmNaive(M: number, K: number, N: number, a: Float32Array, w: Float32Array, bias: Float32Array,
  lo: number, hi: number, res: Float32Array | null): Float32Array {
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias[n];
      for (let k = 0; k < K; k++) s += a[m * K + k] * w[k * N + n];
      out[m * N + n] = clamp(s, lo, hi) + (res ? res[m * N + n] : 0);
    }
  }
  return out;
}

function dwNaive(inp: Float32Array, H: number, W: number, C: number, w: Float32Array, bias: Float32Array,
  outH: number, outW: number, stride: number, padTop: number, padLeft: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(outH * outW * C);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      for (let c = 0; c < C; c++) {
        let s = bias[c];
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const y = oy * stride - padTop + ky, x = ox * stride - padLeft + kx;
            if (y < 0 || y >= H || x < 0 || x >= W) continue;
            s += inp[(y * W + x) * C + c] * w[(ky * 3 + kx) * C + c];
          }
        }
        out[(oy * outW + ox) * C + c] = clamp(s, lo, hi);
      }
    }
  }
  return out;
}

/** TF "SAME" padding for a 3x3 window: output size and the top/left pad. */
function same(size: number, stride: number): { out: number; pad: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + 3 - size, 0);
  return { out, pad: Math.floor(total / 2) };
}

// ---------------------------------------------------------------------------------------

let k: Raw;
beforeAll(async () => {
  const { instance } = await WebAssembly.instantiate(file('mobilenet.wasm'), {});
  k = instance.exports as unknown as Raw;
});

describe('raw ABI (docs/ABI.md): build/mobilenet.wasm without the host', () => {
  it('imports nothing and exports its memory, heap_base() and the documented functions', () => {
    const mod = new WebAssembly.Module(file('mobilenet.wasm'));
    expect(WebAssembly.Module.imports(mod)).toEqual([]);
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const name of ['memory', 'heap_base', 'gemm_packed_bytes', 'gemm_4x8_f32_x86', 'gemm_6x8_f32_arm',
      'gemm_f32_scalar', 'dwconv3x3_nhwc_f32_x86', 'dwconv3x3_nhwc_f32_arm', 'dwconv3x3_nhwc_f32_scalar',
      'dwconv3x3_row_nhwc_f32_x86', 'conv3x3_nhwc_f32_x86', 'ibottleneck3x3_nhwc_f32_x86', 'clamp_f32',
      'add_f32', 'softmax_f32', 'global_avgpool_nhwc_f32', 'pack_gemm_f32', 'pack_dw3x3_f32']) {
      expect(names, name).toContain(name);
    }
    expect(k.heap_base()).toBeGreaterThan(0);
    expect(k.heap_base()).toBeLessThanOrEqual(k.memory.buffer.byteLength);
  });

  it('gemm_packed_bytes(K, N) = ceil(N / 8) * (K + 1) * 32', () => {
    for (const [K, N] of [[1, 1], [7, 8], [7, 9], [96, 24], [1280, 5]]) {
      expect(k.gemm_packed_bytes(K, N)).toBe(Math.ceil(N / 8) * (K + 1) * 32);
    }
  });

  for (const variant of ['gemm_4x8_f32_x86', 'gemm_6x8_f32_arm', 'gemm_f32_scalar']) {
    it(`${variant}: out = clamp(a W + bias) + res, hand-packed weights, N not a multiple of 8`, () => {
      const M = 13, K = 19, N = 11, lo = 0, hi = 6;
      const r = rng(7);
      const a = randoms(r, M * K), w = randoms(r, K * N), bias = randoms(r, N), res = randoms(r, M * N);
      const L = new Layout(k);
      const packed = packGemmByHand(w, bias, K, N);
      expect(packed.length * 4).toBe(k.gemm_packed_bytes(K, N));
      const pa = L.floats(M * K, a), pw = L.floats(packed.length, packed), pr = L.floats(M * N, res);
      const po = L.floats(M * N);
      const before = new Uint8Array(k.memory.buffer).slice(pa, po); // inputs must not change
      const pages = k.memory.buffer.byteLength;
      (k[variant] as Fn)(M, K, N, pa, pw, po, lo, hi, pr, N);
      expect(maxRelDiff(L.read(po, M * N), gemmNaive(M, K, N, a, w, bias, lo, hi, res))).toBeLessThan(1e-5);
      expect(L.guardIntact(po, M * N)).toBe(true);
      expect(new Uint8Array(k.memory.buffer).slice(pa, po)).toEqual(before);
      expect(k.memory.buffer.byteLength).toBe(pages); // no allocation, no growth
      // res = 0: no residual.
      (k[variant] as Fn)(M, K, N, pa, pw, po, -Infinity, Infinity, 0, N);
      expect(maxRelDiff(L.read(po, M * N), gemmNaive(M, K, N, a, w, bias, -Infinity, Infinity, null))).toBeLessThan(1e-5);
    });
  }

  for (const variant of ['dwconv3x3_nhwc_f32_x86', 'dwconv3x3_nhwc_f32_arm', 'dwconv3x3_nhwc_f32_scalar']) {
    for (const stride of [1, 2]) {
      it(`${variant}: stride ${stride}, SAME padding, C = 6 (a partial channel group), hand-packed weights`, () => {
        const H = 9, W = 11, C = 6, lo = 0, hi = 6;
        const r = rng(100 + stride);
        const inp = randoms(r, H * W * C), w = randoms(r, 9 * C), bias = randoms(r, C);
        const { out: outH, pad: padTop } = same(H, stride);
        const { out: outW, pad: padLeft } = same(W, stride);
        const L = new Layout(k);
        const packed = packDwByHand(w, bias, C);
        const pi = L.floats(H * W * C, inp), pw = L.floats(packed.length, packed);
        const po = L.floats(outH * outW * C);
        const zero = L.floats(W * C, randoms(r, W * C)); // scratch: the kernel zero-fills it
        (k[variant] as Fn)(pi, H, W, C, pw, po, outH, outW, stride, padTop, padLeft, lo, hi, zero);
        const want = dwNaive(inp, H, W, C, w, bias, outH, outW, stride, padTop, padLeft, lo, hi);
        expect(maxRelDiff(L.read(po, outH * outW * C), want)).toBeLessThan(1e-5);
        expect(L.guardIntact(po, outH * outW * C)).toBe(true);
        expect(L.guardIntact(zero, W * C)).toBe(true);
        expect(L.read(pi, H * W * C)).toEqual(inp);
      });
    }
  }

  it('the threaded build runs the same kernel on an imported shared memory', async () => {
    const pages = 4;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: 32768, shared: true });
    const { instance } = await WebAssembly.instantiate(file('mobilenet-threads.wasm'), { env: { memory } });
    const t = instance.exports as unknown as Raw;
    expect(t.memory).toBe(memory);
    const M = 5, K = 8, N = 9;
    const r = rng(3);
    const a = randoms(r, M * K), w = randoms(r, K * N), bias = randoms(r, N);
    const L = new Layout(t);
    const packed = packGemmByHand(w, bias, K, N);
    const pa = L.floats(M * K, a), pw = L.floats(packed.length, packed), po = L.floats(M * N);
    (t.gemm_4x8_f32_x86 as Fn)(M, K, N, pa, pw, po, -Infinity, Infinity, 0, N);
    expect(maxRelDiff(L.read(po, M * N), gemmNaive(M, K, N, a, w, bias, -Infinity, Infinity, null))).toBeLessThan(1e-5);
  });
});

describe('npm run bench against this ABI', () => {
  it('bench/kernels.mjs starts: its table of kernel arities matches the exports of every build', () => {
    // A smoke run of one tiny group (~2 s): the benchmark refuses to start when a kernel's
    // signature changed and its calls were not updated.
    const r = spawnSync(process.execPath, ['bench/kernels.mjs', '--quick', '--filter', 'softmax', '--no-write'], {
      cwd: new URL('..', import.meta.url), encoding: 'utf8', timeout: 120_000,
    });
    expect(r.stderr).not.toMatch(/update bench\/kernels\.mjs/);
    expect(r.status).toBe(0);
  }, 150_000);
});
