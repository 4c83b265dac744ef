// Loading the kernel module: pick the build the runtime can run, compile it once per process,
// give every model its own instance (and so its own linear memory).

import { EnvironmentError, OutOfMemoryError } from './errors.js';

/** Which compiled module runs the kernels. */
export type WasmBuild = 'simd' | 'relaxed' | 'debug';

type Gemm = (M: number, K: number, N: number, a: number, w: number, out: number, lo: number, hi: number, res: number,
  ldo: number) => void;
type DwRow = (r0: number, r1: number, r2: number, inW: number, C: number, w: number, out: number, outW: number,
  stride: number, padLeft: number, lo: number, hi: number) => void;
type Dw = (inp: number, H: number, W: number, C: number, w: number, out: number, outH: number, outW: number,
  stride: number, padTop: number, padLeft: number, lo: number, hi: number, zero: number) => void;
type Conv3x3 = (inp: number, H: number, W: number, Cin: number, w: number, N: number, out: number, outH: number,
  outW: number, stride: number, padTop: number, padLeft: number, lo: number, hi: number, scratch: number) => void;
type Bottleneck = (inp: number, H: number, W: number, Cin: number, ew: number, Cexp: number, elo: number, ehi: number,
  dw: number, stride: number, padTop: number, padLeft: number, dlo: number, dhi: number,
  pw: number, Cout: number, plo: number, phi: number, res: number,
  out: number, outH: number, outW: number, S: number, cap: number, scratch: number) => void;

type StemBlock = (
  cInp: number, cH: number, cW: number, cC: number, cStride: number, cPadTop: number, cPadLeft: number,
  cw: number, H: number, W: number, Cexp: number, clo: number, chi: number,
  dw: number, stride: number, padTop: number, padLeft: number, dlo: number, dhi: number,
  pw: number, Cout: number, plo: number, phi: number,
  out: number, outH: number, outW: number, S: number, cap: number, scratch: number) => void;

/** Kernel variants: x86 and ARM SIMD forms (same results, different speed) and the scalar twins. */
export type KernelVariant = 'x86' | 'arm' | 'scalar';

/** The module's exports, as declared in assembly/index.ts (pointers and sizes are numbers). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  heap_base(): number;
  build_is_relaxed(): number;
  probe_nan_sign(inf: number): number;
  gemm_packed_bytes(K: number, N: number): number;
  gemm_4x8_f32_x86: Gemm;
  gemm_6x8_f32_arm: Gemm;
  gemm_f32_scalar: Gemm;
  dwconv3x3_row_nhwc_f32_x86: DwRow;
  dwconv3x3_row_nhwc_f32_arm: DwRow;
  dwconv3x3_row_nhwc_f32_scalar: DwRow;
  dwconv3x3_nhwc_f32_x86: Dw;
  dwconv3x3_nhwc_f32_arm: Dw;
  dwconv3x3_nhwc_f32_scalar: Dw;
  conv3x3_nhwc_f32_x86: Conv3x3;
  conv3x3_nhwc_f32_arm: Conv3x3;
  conv3x3_nhwc_f32_scalar: Conv3x3;
  conv3x3_scratch_floats(Cin: number, outW: number): number;
  ibottleneck3x3_nhwc_f32_x86: Bottleneck;
  ibottleneck3x3_nhwc_f32_arm: Bottleneck;
  ibottleneck3x3_nhwc_f32_scalar: Bottleneck;
  ibottleneck_scratch_floats(W: number, Cexp: number, outW: number, hasExpand: number, S: number, cap: number): number;
  ibottleneck_min_cap(S: number, stride: number): number;
  stem3x3_block_nhwc_f32_x86: StemBlock;
  stem3x3_block_nhwc_f32_arm: StemBlock;
  stem3x3_block_nhwc_f32_scalar: StemBlock;
  stem_block_scratch_floats(W: number, Cexp: number, outW: number, S: number, cap: number, cC: number): number;
  clamp_f32(x: number, n: number, lo: number, hi: number, out: number): void;
  clamp_f32_scalar(x: number, n: number, lo: number, hi: number, out: number): void;
  add_f32(a: number, b: number, n: number, out: number): void;
  add_f32_scalar(a: number, b: number, n: number, out: number): void;
  softmax_f32(x: number, n: number, out: number): void;
  global_avgpool_nhwc_f32(inp: number, HW: number, C: number, out: number): void;
  global_avgpool_nhwc_f32_scalar(inp: number, HW: number, C: number, out: number): void;
  peak_madd_f32(iters: number, seed: number, out: number): void;
  pack_gemm_f32(src: number, K: number, N: number, colScale: number, bias: number, dst: number): void;
  pack_gemm_u8(src: number, lut: number, K: number, N: number, colScale: number, bias: number, dst: number): void;
  pack_dw3x3_f32(src: number, C: number, colScale: number, bias: number, dst: number): void;
  pack_dw3x3_u8(src: number, lut: number, C: number, colScale: number, bias: number, dst: number): void;
  first_nonfinite_f32(p: number, n: number): number;
  dequantize_u8_f32(src: number, n: number, scale: number, min: number, dst: number): void;
  fold_factors_f64(C: number, bias: number, mean: number, variance: number, gamma: number, beta: number, eps: number,
    scale: number): void;
}

/** The export implementing op `base` in a variant: gemm has its tile in the name, others a suffix. */
export function variantName(
  base: 'gemm' | 'dwconv3x3_nhwc_f32' | 'conv3x3_nhwc_f32' | 'ibottleneck3x3_nhwc_f32' | 'stem3x3_block_nhwc_f32',
  v: KernelVariant): keyof KernelExports {
  if (base === 'gemm') return v === 'x86' ? 'gemm_4x8_f32_x86' : v === 'arm' ? 'gemm_6x8_f32_arm' : 'gemm_f32_scalar';
  return `${base}_${v}`;
}

/**
 * The variant set for this CPU: ARM where Node says so, or where wasm's inf - inf gives a
 * positive NaN (x86 gives a negative one; this is how XNNPACK tells them apart in a browser).
 */
export function detectVariant(k: KernelExports): 'x86' | 'arm' {
  const arch = (globalThis as { process?: { arch?: string } }).process?.arch;
  if (arch === 'arm64' || arch === 'arm') return 'arm';
  if (arch === 'x64' || arch === 'ia32') return 'x86';
  return k.probe_nan_sign(Infinity) ? 'x86' : 'arm';
}

/** A live kernel module instance with its own memory. */
export interface KernelInstance {
  readonly build: WasmBuild;
  readonly exports: KernelExports;
  /** The compiled module (threads instantiate it again on the same shared memory). */
  readonly module: WebAssembly.Module;
  /** Size of the .wasm file this instance was compiled from. */
  readonly moduleBytes: number;
  /** Grows linear memory to at least `bytes`. Views over the old buffer are detached. */
  ensureMemory(bytes: number): void;
}

const FILES: Record<WasmBuild, string> = {
  simd: 'mobilenet.wasm',
  relaxed: 'mobilenet-relaxed.wasm',
  debug: 'mobilenet-debug.wasm',
};

/** The same kernels built for threads: memory imported and shared (asconfig *-threads targets). */
const THREADED_FILES: Partial<Record<WasmBuild, string>> = {
  simd: 'mobilenet-threads.wasm',
  relaxed: 'mobilenet-relaxed-threads.wasm',
};

/** Pages the threaded builds declare as their maximum (2 GiB): shared memory needs one. */
export const THREADED_MAX_PAGES = 32768;

interface Compiled {
  module: WebAssembly.Module;
  size: number;
}

const compiled = new Map<string, Promise<Compiled | null>>();

/**
 * Where each wasm file is: build/ next to the package. Each URL is written out literally
 * (`new URL('../build/x.wasm', import.meta.url)`) so that bundlers (Vite, webpack 5, esbuild's
 * file loader) see it and copy the file into their output.
 */
const BUILD_URLS: Record<string, () => URL> = {
  'mobilenet.wasm': () => new URL('../build/mobilenet.wasm', import.meta.url),
  'mobilenet-relaxed.wasm': () => new URL('../build/mobilenet-relaxed.wasm', import.meta.url),
  'mobilenet-debug.wasm': () => new URL('../build/mobilenet-debug.wasm', import.meta.url),
  'mobilenet-threads.wasm': () => new URL('../build/mobilenet-threads.wasm', import.meta.url),
  'mobilenet-relaxed-threads.wasm': () => new URL('../build/mobilenet-relaxed-threads.wasm', import.meta.url),
};

/** Reads a wasm file of the build/ directory next to the package (Node: from disk). */
async function readBuild(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    try {
      return new Uint8Array(await readFile(url));
    } catch (e) {
      throw new EnvironmentError(
        `cannot read ${url.pathname}: the wasm build is missing (run \`npm run build\`): ${(e as Error).message}`,
      );
    }
  }
  return new Uint8Array(await (await fetchBuild(url)).arrayBuffer());
}

async function fetchBuild(url: URL): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new EnvironmentError(`cannot fetch ${url.href}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new EnvironmentError(`cannot fetch ${url.href}: HTTP ${res.status}`);
  return res;
}

function compileBytes(bytes: Uint8Array<ArrayBuffer>): Compiled | null {
  if (!WebAssembly.validate(bytes)) return null;
  return { module: new WebAssembly.Module(bytes), size: bytes.byteLength };
}

/**
 * Compiles one wasm file; null when this runtime cannot validate it. Over http(s) (browsers)
 * the response is compiled as it streams in (WebAssembly.compileStreaming), which needs the
 * server to send `Content-Type: application/wasm`; otherwise it is compiled from its bytes.
 */
async function compileFile(file: string): Promise<Compiled | null> {
  const url = BUILD_URLS[file]();
  if (url.protocol === 'file:' || typeof WebAssembly.compileStreaming !== 'function') {
    return compileBytes(await readBuild(url));
  }
  const res = await fetchBuild(url);
  const copy = res.clone(); // for the file size, and for the fallback below
  try {
    const module = await WebAssembly.compileStreaming(res);
    return { module, size: (await copy.arrayBuffer()).byteLength };
  } catch (e) {
    if (e instanceof WebAssembly.CompileError) return null; // e.g. relaxed SIMD unsupported
    // A TypeError: served with another Content-Type. Compile from the bytes instead.
    return compileBytes(new Uint8Array(await copy.arrayBuffer()));
  }
}

/** Compiles a build once per process; null when this runtime cannot validate it. */
export function compile(build: WasmBuild, threaded = false): Promise<Compiled | null> {
  const file = threaded ? THREADED_FILES[build] : FILES[build];
  if (!file) throw new EnvironmentError(`the ${build} build has no threaded form; use threads: 1`);
  let p = compiled.get(file);
  if (!p) {
    p = compileFile(file);
    compiled.set(file, p);
  }
  return p;
}

/**
 * The build to use: the one asked for, or for 'auto' relaxed SIMD where the runtime accepts it
 * (Node 22+, Chrome 114+, Firefox 145+) and plain SIMD otherwise.
 */
export async function chooseBuild(requested: WasmBuild | 'auto'): Promise<WasmBuild> {
  if (requested !== 'auto') {
    if (!(await compile(requested))) {
      throw new EnvironmentError(
        requested === 'relaxed'
          ? 'this WebAssembly runtime does not support relaxed SIMD (Node 22+, Chrome 114+, Firefox 145+; Node 20 needs --experimental-wasm-relaxed-simd)'
          : 'this WebAssembly runtime does not support 128-bit SIMD (needs Node 16.4+, Chrome 91+, Firefox 89+, Safari 16.4+)',
      );
    }
    return requested;
  }
  if (await compile('relaxed')) return 'relaxed';
  if (await compile('simd')) return 'simd';
  throw new EnvironmentError(
    'this WebAssembly runtime does not support 128-bit SIMD (needs Node 16.4+, Chrome 91+, Firefox 89+, Safari 16.4+)',
  );
}

const PAGE = 65536;

/**
 * A fresh instance of a build, with its own memory. Release builds import nothing and are
 * instantiated directly (the loader's set-up costs ~50 ms at startup). The debug build keeps
 * its assertions, so it goes through @assemblyscript/loader, which turns an assertion's
 * abort() into a readable message with the kernel's file and line (imported only then: importing
 * it cost every load ~3 ms).
 */
export async function instantiateKernels(build: WasmBuild, shared?: WebAssembly.Memory): Promise<KernelInstance> {
  const c = await compile(build, shared !== undefined);
  if (!c) throw new EnvironmentError(`the ${build} wasm build does not validate in this runtime`);
  const exports =
    build === 'debug'
      ? (await (await import('@assemblyscript/loader')).instantiate<Record<string, unknown>>(c.module, {})).exports
      : new WebAssembly.Instance(c.module, shared ? { env: { memory: shared } } : {}).exports;
  const k = exports as unknown as KernelExports;
  return {
    build,
    exports: k,
    module: c.module,
    moduleBytes: c.size,
    ensureMemory(bytes: number): void {
      const have = k.memory.buffer.byteLength;
      if (bytes <= have) return;
      const pages = Math.ceil((bytes - have) / PAGE);
      try {
        k.memory.grow(pages);
      } catch (e) {
        throw new OutOfMemoryError(
          `WebAssembly memory could not grow to ${bytes} bytes (${(e as Error).message})`,
        );
      }
    },
  };
}
