// A loaded model: one wasm instance, packed weights and the arena in its memory, and the plan's
// steps bound to kernel functions with every argument resolved to a number.

import type { ModelDesc, ModelSource } from './desc.js';
import { DisposedError, ImageDecodeError, InputError, MobileNetWasmError, OutOfMemoryError } from './errors.js';
import { buildPlan, type Plan } from './plan.js';
import { packWeights, stagingBytes } from './pack.js';
import { chooseBuild, detectVariant, instantiateKernels, type KernelInstance, type KernelVariant, type WasmBuild } from './wasm.js';
import { decodeImage, imageToInput, type RgbaImage } from './image.js';

export interface LoadOptions {
  /** Wasm build: 'auto' (default) picks relaxed SIMD where the runtime has it, else plain SIMD. */
  build?: WasmBuild | 'auto';
  /**
   * Kernel variant set: 'auto' (default) picks 'arm' on ARM CPUs and 'x86' elsewhere; either can
   * be forced on any machine (results are the same, only speed differs). 'scalar' runs every
   * layer on the kernels' scalar twins (slow; for checking).
   */
  kernels?: KernelVariant | 'auto';
  /** Refuse models whose wasm memory (weights + arena) would exceed this many bytes. */
  maxMemoryBytes?: number;
}

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

/** An image for classify(): a file path (Node), encoded JPEG/PNG bytes, or RGBA pixels. */
export type ImageInput = string | Uint8Array | RgbaImage;

export interface ClassifyOptions {
  /** How many classes to return, most probable first. Default 3. */
  topK?: number;
}

const ALIGN = 64;
const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

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

  private wasm: KernelInstance | null;
  private readonly calls: (() => void)[];
  private readonly inputAt: number;
  private readonly inputLength: number;
  private readonly outputAt: number;
  private readonly outputLength: number;

  /** Use load() instead. */
  constructor(src: ModelSource, plan: Plan, wasm: KernelInstance, base: number, kernels: KernelVariant) {
    this.kernels = kernels;
    this.desc = src.desc;
    const [n, h, w, c] = src.desc.inputShape;
    this.inputShape = [n, h, w, c];
    this.outputShape = plan.outputShape;
    this.labels = src.desc.labels ?? [];
    this.macs = plan.macs;
    this.build = wasm.build;
    this.wasm = wasm;
    const weightsAt = base;
    const arenaAt = align(weightsAt + plan.weightFloats * 4);
    // The arena is not in use yet: it doubles as the staging area for packing.
    packWeights(wasm.exports, plan.weightJobs, weightsAt, arenaAt);
    const resolve = (a: Plan['steps'][number]['args'][number]): number =>
      typeof a === 'number' ? a : 'buf' in a ? arenaAt + plan.buffers[a.buf].offset : weightsAt + a.wt * 4;
    const k = wasm.exports;
    this.calls = plan.steps.map((s) => {
      const fn = k[s.kernel] as (...a: number[]) => void;
      const args = s.args.map(resolve);
      return () => fn(...args);
    });
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
   * NaN/Infinity value, and with DisposedError after dispose().
   */
  async run(input: Float32Array): Promise<Float32Array> {
    return this.runSync(input);
  }

  /** run() without the promise. */
  runSync(input: Float32Array): Float32Array {
    const wasm = this.live();
    if (!(input instanceof Float32Array)) {
      throw new InputError(`input must be a Float32Array, got ${describe(input)}`);
    }
    if (input.length !== this.inputLength) {
      throw new InputError(
        `input has ${input.length} values; this model takes [${this.inputShape.join(', ')}] = ${this.inputLength}`,
      );
    }
    for (let i = 0; i < input.length; i++) {
      if (!Number.isFinite(input[i])) {
        throw new InputError(`input[${i}] is ${input[i]}: inputs must be finite numbers`);
      }
    }
    const buffer = wasm.exports.memory.buffer;
    new Float32Array(buffer, this.inputAt, this.inputLength).set(input);
    try {
      for (const call of this.calls) call();
    } catch (e) {
      // Validation makes this unreachable; if it happens it is a bug, reported as such.
      throw new MobileNetWasmError(`internal error in a wasm kernel: ${(e as Error).message}`);
    }
    return new Float32Array(buffer, this.outputAt, this.outputLength).slice();
  }

  /**
   * Classifies an image: encoded JPEG/PNG bytes or RGBA pixels, resized and normalized as the
   * model was trained. Returns the topK classes, most probable first.
   */
  async classify(image: ImageInput, options: ClassifyOptions = {}): Promise<Prediction[]> {
    this.live();
    const topK = options.topK ?? 3;
    if (!Number.isInteger(topK) || topK < 1) throw new InputError(`topK must be a positive integer, got ${topK}`);
    const pre = this.desc.preprocess;
    if (!pre) throw new InputError('this model has no preprocessing description; use run() with prepared input');
    const rgba =
      typeof image === 'string' ? decodeImage(await readImageFile(image))
      : image instanceof Uint8Array ? decodeImage(image)
      : image;
    const [, h, w] = this.inputShape;
    const probs = this.runSync(imageToInput(rgba, h, w, pre));
    return topClasses(probs, this.labels, topK);
  }

  /** Frees the wasm instance and its memory. Idempotent. */
  dispose(): void {
    this.wasm = null;
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

/** Plans a model and places it in a fresh wasm instance. */
export async function createModel(src: ModelSource, options: LoadOptions = {}): Promise<Model> {
  const build = await chooseBuild(options.build ?? 'auto');
  const wasm = await instantiateKernels(build);
  const asked = options.kernels ?? 'auto';
  const kernels = asked === 'auto' ? detectVariant(wasm.exports) : asked;
  const plan = buildPlan(src, kernels);
  const base = align(wasm.exports.heap_base());
  const weightBytes = plan.weightFloats * 4;
  const total = align(base + weightBytes) + Math.max(plan.arenaBytes, stagingBytes(plan.weightJobs));
  if (options.maxMemoryBytes !== undefined && total > options.maxMemoryBytes) {
    throw new OutOfMemoryError(
      `this model needs ${total} bytes of wasm memory (weights ${weightBytes}, arena ${plan.arenaBytes}); maxMemoryBytes is ${options.maxMemoryBytes}`,
    );
  }
  wasm.ensureMemory(total);
  return new Model(src, plan, wasm, base, kernels);
}
