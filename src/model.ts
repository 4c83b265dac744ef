// A loaded model: one wasm instance, packed weights and the arena in its memory, and the plan's
// steps bound to kernel functions with every argument resolved to a number. With threads, the
// memory is shared and each compute thread gets its own list of bound calls.

import type { ModelDesc, ModelSource } from './desc.js';
import { DisposedError, ImageDecodeError, InputError, MobileNetWasmError, OutOfMemoryError } from './errors.js';
import { argAddress, buildPlan, layoutFor, type Layout, type Plan } from './plan.js';
import { packWeights, stagingBytes, wasmLoadMath } from './pack.js';
import { warmUp } from './warmup.js';
import {
  chooseBuild, compile, detectVariant, instantiateKernels, THREADED_MAX_PAGES,
  type KernelInstance, type KernelVariant, type WasmBuild,
} from './wasm.js';
import { ThreadPool, availableCores, threadsUnavailable } from './threads.js';
import type { ThreadCall } from './threads-shared.js';
import { decodeImage, imageToInput, type RgbaImage } from './image.js';
import { browserImageToRgba, isBrowserImage, type BrowserImage } from './browser-image.js';

export interface LoadOptions {
  /** Wasm build: 'auto' (default) picks relaxed SIMD where the runtime has it, else plain SIMD. */
  build?: WasmBuild | 'auto';
  /**
   * Kernel variant set: 'auto' (default) picks 'arm' on ARM CPUs and 'x86' elsewhere; either can
   * be forced on any machine (results are the same, only speed differs). 'scalar' runs every
   * layer on the kernels' scalar twins (slow; for checking).
   */
  kernels?: KernelVariant | 'auto';
  /**
   * Refuse models whose wasm memory (weights + arena) would exceed this many bytes, with an
   * OutOfMemoryError naming the size. Default DEFAULT_MAX_MEMORY_BYTES (1 GiB): a model file of
   * a few hundred bytes can describe a network whose activations need gigabytes.
   */
  maxMemoryBytes?: number;
  /**
   * Compute threads: default the available cores, at most 4; 1 runs on the calling thread.
   * Results are bit-identical for every count. Where threads cannot run (no
   * SharedArrayBuffer, a page without cross-origin isolation), the model runs on one thread
   * and says why in `model.threads.reason`.
   */
  threads?: number;
}

export interface ThreadsReport {
  /** Threads running the kernels (1: the calling thread). */
  count: number;
  /** Threads asked for (the default, or options.threads). */
  requested: number;
  /** Why count is below requested, when it is. */
  reason?: string;
}

/** The default thread count: every core, at most this many. */
export const MAX_DEFAULT_THREADS = 4;

/** The default cap on a model's wasm memory (see LoadOptions.maxMemoryBytes). */
export const DEFAULT_MAX_MEMORY_BYTES = 2 ** 30;

const BUILDS = ['auto', 'simd', 'relaxed', 'debug'];
const VARIANTS = ['auto', 'x86', 'arm', 'scalar'];

/** Options checked before anything is allocated: a typo must not surface as a kernel failure. */
function checkOptions(o: LoadOptions): void {
  if (o.build !== undefined && !BUILDS.includes(o.build)) {
    throw new InputError(`build must be one of ${BUILDS.join(', ')}, got ${String(o.build)}`);
  }
  if (o.kernels !== undefined && !VARIANTS.includes(o.kernels)) {
    throw new InputError(`kernels must be one of ${VARIANTS.join(', ')}, got ${String(o.kernels)}`);
  }
  if (o.maxMemoryBytes !== undefined && !(typeof o.maxMemoryBytes === 'number' && o.maxMemoryBytes > 0)) {
    throw new InputError(`maxMemoryBytes must be a positive number, got ${String(o.maxMemoryBytes)}`);
  }
}

/** Threads of models dropped without dispose() are stopped when the model is collected. */
const orphans = typeof FinalizationRegistry === 'undefined'
  ? null
  : new FinalizationRegistry<Promise<ThreadPool>>((pool) => {
    void pool.then((p) => p.dispose(), () => undefined);
  });

export interface MemoryReport {
  /** Bytes of the activation arena (all activations and scratch, by liveness). */
  arenaBytes: number;
  /** Bytes of packed f32 weights (batch-norm folded). */
  weightBytes: number;
  /** Bytes of the instance's linear memory. */
  wasmBytes: number;
  /** Bytes of the .wasm module file. */
  moduleBytes: number;
}

export interface Prediction {
  label: string;
  probability: number;
}

/**
 * An image for classify(): a file path (Node), encoded JPEG/PNG bytes, RGBA pixels, or in a
 * browser an ImageData, HTMLImageElement, ImageBitmap, HTMLCanvasElement or OffscreenCanvas.
 */
export type ImageInput = string | Uint8Array | RgbaImage | BrowserImage;

export interface ClassifyOptions {
  /** How many classes to return, most probable first. Default 3. */
  topK?: number;
}

export class Model {
  /** NHWC shape of run()'s input: [1, height, width, 3]. */
  readonly inputShape: readonly [number, number, number, number];
  /** Shape of run()'s output. */
  readonly outputShape: readonly number[];
  /** Class labels (empty when the model has none). */
  readonly labels: readonly string[];
  readonly memory: MemoryReport;
  /** The wasm build running the kernels ('simd' or 'relaxed'; 'debug' when asked for). */
  readonly build: WasmBuild;
  /** The kernel variant set in use: 'x86', 'arm' or 'scalar'. */
  readonly kernels: KernelVariant;
  /** Multiply-adds per run. */
  readonly macs: number;
  readonly desc: ModelDesc;
  threads: ThreadsReport;

  /**
   * Resolves once the compute threads have started (at once for one thread). Until then runs
   * execute every thread's share on the calling thread, with bit-identical results, so load()
   * does not wait for threads to boot. Never rejects: a failure to start is reported in
   * `threads` (count 1, with the reason) and runs stay on the calling thread.
   */
  readonly threadsReady: Promise<void>;

  private wasm: KernelInstance | null;
  private readonly calls: (() => void)[];
  /** Thread 0's chunk calls for each step, for runSync() with threads (the caller runs them). */
  private readonly share0: ((() => void)[] | null)[];
  /** The caller's own calls for the first step's chunks, which run() helps with. */
  private readonly callerFirst: (() => void)[] | null;
  private pool: ThreadPool | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly inputAt: number;
  private readonly inputLength: number;
  private readonly outputAt: number;
  private readonly outputLength: number;

  /** Use load() instead. */
  constructor(
    src: ModelSource, plan: Plan, wasm: KernelInstance, layout: Layout, kernels: KernelVariant,
    pool: Promise<ThreadPool> | null, threads: ThreadsReport,
  ) {
    this.kernels = kernels;
    this.threads = threads;
    if (pool) orphans?.register(this, pool, this);
    this.threadsReady = pool
      ? pool.then(
        (p) => {
          if (this.disposed) p.dispose();
          else this.pool = p;
        },
        (e: Error) => {
          this.threads = { count: 1, requested: threads.requested, reason: e.message };
        },
      )
      : Promise.resolve();
    this.desc = src.desc;
    const [n, h, w, c] = src.desc.inputShape;
    this.inputShape = [n, h, w, c];
    this.outputShape = plan.outputShape;
    this.labels = src.desc.labels ?? [];
    this.macs = plan.macs;
    this.build = wasm.build;
    this.wasm = wasm;
    const { weightsAt, arenaAt } = layout;
    const k = wasm.exports;
    // Thread 0's calls: every chunk of every step, in order, is the whole network on this
    // thread (the single-thread path, and multi-thread runs until the threads are up).
    const bind = (c: ThreadCall): (() => void)[] => {
      const fn = k[c.kernel as keyof typeof k] as (...a: number[]) => void;
      return c.chunks.map((args) => () => fn(...args));
    };
    this.share0 = threadCalls(plan, layout, 0).map((c) => (c ? bind(c) : null));
    // The plan's extra runner, the caller of run(), has a share of the first step only.
    const first = plan.threads > 1 ? threadCalls(plan, layout, plan.threads)[0] : null;
    this.callerFirst = first ? bind(first) : null;
    this.calls = this.share0.flatMap((c) => c ?? []);
    this.inputAt = arenaAt + plan.buffers[plan.inputBuffer].offset;
    this.inputLength = plan.inputShape.reduce((a, b) => a * b, 1);
    this.outputAt = arenaAt + plan.buffers[plan.outputBuffer].offset;
    this.outputLength = plan.outputShape.reduce((a, b) => a * b, 1);
    this.memory = {
      arenaBytes: plan.arenaBytes,
      weightBytes: plan.weightFloats * 4,
      wasmBytes: k.memory.buffer.byteLength,
      moduleBytes: wasm.moduleBytes,
    };
  }

  get disposed(): boolean {
    return this.wasm === null;
  }

  private live(): KernelInstance {
    if (!this.wasm) throw new DisposedError('this model was disposed; load it again to use it');
    return this.wasm;
  }

  /**
   * Runs the network on a preprocessed NHWC input (Float32Array of inputShape's size) and
   * returns a copy of the output. Rejects with InputError for a wrong type, length or a
   * NaN/Infinity value, and with DisposedError after dispose(). Concurrent calls run one
   * after another, in call order.
   */
  run(input: Float32Array): Promise<Float32Array> {
    const result = this.queue.then(async () => {
      if (!this.pool) return this.runSync(input);
      const wasm = this.prepare(input);
      this.inFlight = true;
      try {
        await this.pool.run(this.callerFirst);
        return this.output(wasm);
      } finally {
        this.inFlight = false;
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * run() without the promise; with threads, Node only (it blocks until the threads finish).
   * Throws MobileNetWasmError while a run() of this model is between its start and its result
   * (it would overwrite that run's input and arena): await it first.
   */
  runSync(input: Float32Array): Float32Array {
    if (this.inFlight) {
      throw new MobileNetWasmError('runSync() was called while a run() of this model is in progress; await that run() first');
    }
    const wasm = this.prepare(input);
    if (this.pool) {
      this.pool.runSync(this.share0);
      return this.output(wasm);
    }
    try {
      for (const call of this.calls) call();
    } catch (e) {
      // Validation makes this unreachable; if it happens it is a bug, reported as such.
      throw new MobileNetWasmError(`internal error in a wasm kernel: ${(e as Error).message}`);
    }
    return this.output(wasm);
  }

  /** A threaded run() that has written its input and not yet read its output. */
  private inFlight = false;

  /**
   * Validates the input and writes it into the arena. Values are checked after the copy, by a
   * SIMD scan in wasm (~15x faster than a JavaScript loop); a rejected input has then only
   * overwritten the input buffer, which every run rewrites.
   */
  private prepare(input: Float32Array): KernelInstance {
    const wasm = this.live();
    if (!(input instanceof Float32Array)) {
      throw new InputError(`input must be a Float32Array, got ${describe(input)}`);
    }
    if (input.length !== this.inputLength) {
      throw new InputError(
        `input has ${input.length} values; this model takes [${this.inputShape.join(', ')}] = ${this.inputLength}`,
      );
    }
    new Float32Array(wasm.exports.memory.buffer, this.inputAt, this.inputLength).set(input);
    const bad = wasm.exports.first_nonfinite_f32(this.inputAt, this.inputLength);
    if (bad >= 0) throw new InputError(`input[${bad}] is ${input[bad]}: inputs must be finite numbers`);
    return wasm;
  }

  private output(wasm: KernelInstance): Float32Array {
    return new Float32Array(wasm.exports.memory.buffer, this.outputAt, this.outputLength).slice();
  }

  /**
   * Classifies an image: encoded JPEG/PNG bytes, RGBA pixels or a browser image object,
   * resized and normalized as the model was trained. Returns the topK classes, most probable
   * first. Runs through run(), so it queues behind other runs and uses the threads.
   */
  async classify(image: ImageInput, options: ClassifyOptions | null = {}): Promise<Prediction[]> {
    this.live();
    const topK = options?.topK ?? 3;
    if (!Number.isInteger(topK) || topK < 1) throw new InputError(`topK must be a positive integer, got ${topK}`);
    const pre = this.desc.preprocess;
    if (!pre) throw new InputError('this model has no preprocessing description; use run() with prepared input');
    const rgba =
      typeof image === 'string' ? await decodeImage(await readImageFile(image))
      : image instanceof Uint8Array ? await decodeImage(image)
      : isBrowserImage(image) ? await browserImageToRgba(image)
      : image;
    const [, h, w] = this.inputShape;
    const probs = await this.run(imageToInput(rgba, h, w, pre));
    return topClasses(probs, this.labels, topK);
  }

  /** Frees the wasm instance and its memory and stops the threads. Idempotent. */
  dispose(): void {
    this.wasm = null;
    this.pool?.dispose();
    orphans?.unregister(this);
  }
}

async function readImageFile(path: string): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new ImageDecodeError(`cannot read image ${path}: ${(e as Error).message}`);
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'object';
  return typeof x;
}

/** The k largest values with their labels, most probable first (ties keep class order). */
export function topClasses(probs: Float32Array, labels: readonly string[], k: number): Prediction[] {
  return Array.from(probs, (p, i) => ({ label: labels[i] ?? String(i), probability: p }))
    .map((x, i) => ({ ...x, i }))
    .sort((a, b) => b.probability - a.probability || a.i - b.i)
    .slice(0, k)
    .map(({ label, probability }) => ({ label, probability }));
}

/**
 * Runner t's calls for every step, with buffers and weights resolved to addresses: every
 * chunk of the steps the plan gave it arguments for (with its own scratch), null for the
 * others (a single-chunk step has thread 0's only).
 */
function threadCalls(plan: Plan, layout: Layout, t: number): (ThreadCall | null)[] {
  const resolve = argAddress(plan, layout);
  return plan.steps.map((s) => {
    if (s.chunks[0][t] === undefined) return null;
    return { kernel: s.kernel, chunks: s.chunks.map((perRunner) => perRunner[t].map(resolve)) };
  });
}

/** The thread count to use and, when it is below the request, why. */
async function chooseThreads(options: LoadOptions, build: WasmBuild): Promise<ThreadsReport> {
  const requested = options.threads ?? Math.min(MAX_DEFAULT_THREADS, await availableCores());
  if (!Number.isInteger(requested) || requested < 1 || requested > 64) {
    throw new InputError(`threads must be an integer from 1 to 64, got ${requested}`);
  }
  if (requested === 1) return { count: 1, requested };
  const why = threadsUnavailable() ?? (build === 'debug' ? 'the debug build has no threaded form' : null);
  if (why) return { count: 1, requested, reason: why };
  if (!(await compile(build, true))) return { count: 1, requested, reason: `the threaded ${build} build does not validate here` };
  return { count: requested, requested };
}

/** What load() decides from its options before it sees the model. */
export interface Choice {
  build: WasmBuild;
  threads: ThreadsReport;
  kernels: KernelVariant;
  /** An instance of the single-thread module: its static data size, and the CPU probe. */
  probe: KernelInstance;
}

/** The module, kernel variant and thread count a model loaded with these options gets. */
export async function choose(options: LoadOptions): Promise<Choice> {
  checkOptions(options);
  const build = await chooseBuild(options.build ?? 'auto');
  const threads = await chooseThreads(options, build);
  // A first look at the module for its static data size and the CPU probe.
  const probe = await instantiateKernels(build);
  const asked = options.kernels ?? 'auto';
  const kernels = asked === 'auto' ? detectVariant(probe.exports) : asked;
  return { build, threads, kernels, probe };
}

const warmed = new Map<string, Promise<void>>();

/**
 * Runs the warm-up of warmup.ts once per process for the kernels of this choice; load()
 * starts it while the model file is being read. Never rejects: only a slower first run is
 * at stake.
 */
export async function warmKernels({ build, threads, kernels }: Choice): Promise<void> {
  if (build === 'debug') return;
  const key = `${build} ${kernels} ${threads.count > 1}`;
  let w = warmed.get(key);
  if (!w) {
    w = warmUp(build, kernels, threads.count).catch(() => undefined);
    warmed.set(key, w);
  }
  await w;
}

/**
 * Plans a model and places it in a fresh wasm instance (shared memory and threads if asked),
 * as `choice` (from choose() with the same options) says.
 */
export async function createModel(src: ModelSource, choice: Choice, options: LoadOptions): Promise<Model> {
  const { build, threads, kernels, probe } = choice;
  const T = threads.count;
  // The probe's memory is free until the weights are packed (into it, with one thread).
  const plan = buildPlan(src, kernels, T, wasmLoadMath(probe.exports, Math.ceil(probe.exports.heap_base() / 16) * 16));
  const layout = layoutFor(plan, probe.exports.heap_base());
  const { weightsAt, arenaAt } = layout;
  const weightBytes = plan.weightFloats * 4;
  const total = arenaAt + Math.max(plan.arenaBytes, stagingBytes(plan.weightJobs));
  const cap = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
  if (total > cap) {
    throw new OutOfMemoryError(
      `this model needs ${total} bytes of wasm memory (weights ${weightBytes}, arena ${plan.arenaBytes}); ` +
        `maxMemoryBytes is ${cap}${options.maxMemoryBytes === undefined ? ' (the default; pass a larger maxMemoryBytes to allow it)' : ''}`,
    );
  }
  let wasm = probe;
  if (T > 1) {
    const pages = Math.ceil(total / 65536);
    if (pages > THREADED_MAX_PAGES) throw new OutOfMemoryError(`this model needs ${total} bytes; threaded builds are limited to ${THREADED_MAX_PAGES * 65536}`);
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: THREADED_MAX_PAGES, shared: true });
    } catch (e) {
      throw new OutOfMemoryError(`could not allocate ${total} bytes of shared wasm memory: ${(e as Error).message}`);
    }
    wasm = await instantiateKernels(build, memory);
  }
  wasm.ensureMemory(total);
  // The arena is not in use yet: it doubles as the staging area for packing.
  packWeights(wasm.exports, plan.weightJobs, weightsAt, arenaAt);
  // Threads boot in the background (tens to hundreds of ms); the model is usable at once.
  const pool = T > 1
    ? ThreadPool.start(wasm.module, wasm.exports.memory, Array.from({ length: T }, (_, t) => threadCalls(plan, layout, t)), plan.steps.map((s) => s.syncAfter),
      plan.steps.map((s) => s.chunks.length))
    : null;
  return new Model(src, plan, wasm, layout, kernels, pool, threads);
}
