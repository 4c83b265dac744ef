// Planning: from a model description to a flat list of kernel calls over one memory layout.
//
// 1. Group layers into steps, one kernel call each. An (expand 1x1 ->) depthwise 3x3 -> 1x1
//    chain, with the residual add that may follow, becomes one fused inverted-residual step.
// 2. Fold batch-norm and pack every step's weights into one f32 block.
// 3. Give every activation and scratch buffer an offset in one arena by liveness: buffers whose
//    lifetimes (first..last step) overlap never overlap in memory.
// After this nothing on the hot path allocates or looks at a shape.

import type { Activation, Conv2DLayer, DenseLayer, DepthwiseLayer, LayerDesc, ModelSource, StoredTensor } from './desc.js';
import { inferShapes, resolvePadding } from './format.js';
import { UnsupportedModelError } from './errors.js';
import { dwPackedFloats, foldFactors, gemmPackedFloats, JS_LOAD_MATH, type FoldFactors, type LoadMath, type WeightJob } from './pack.js';

export type { WeightJob };
import { variantName, type KernelExports, type KernelVariant } from './wasm.js';

/**
 * A kernel argument: a constant, a buffer of the arena (plus a byte offset into it), or a float
 * offset into the packed weights.
 */
export type Arg = number | { buf: number; off?: number } | { wt: number };

type KernelName = {
  [K in keyof KernelExports]: KernelExports[K] extends (...a: number[]) => void ? K : never;
}[keyof KernelExports];

export interface PlanStep {
  /** Layers this step computes, for reports and errors. */
  layers: string[];
  kernel: KernelName;
  /**
   * The step's work in chunks (ranges of output rows; for a GEMM, of pixels or of output
   * channels), one kernel call each: chunks[c][t] is chunk c's arguments when thread t runs
   * it (with t's own scratch; the first step has one more, chunks[c][threads], for the
   * caller of run()).
   * One chunk: thread 0 runs it. More: the threads claim chunks as they come free, so a thread
   * slowed by something else on its core gets less of the step. Chunk boundaries are fixed
   * here and a chunk's result does not depend on which thread computes it: outputs are
   * bit-identical for every thread count and every schedule.
   */
  chunks: Arg[][][];
  /** Multiply-adds this step performs. */
  macs: number;
  /**
   * Whether threads wait for this step to complete before the next: needed unless this step
   * and the next (if any) both run on thread 0 alone, as the classifier head does.
   */
  syncAfter: boolean;
}


export interface ArenaBuffer {
  name: string;
  bytes: number;
  first: number;
  last: number;
  offset: number;
}

export interface Plan {
  steps: PlanStep[];
  /** Weight tensors to pack, and the float size of the packed weights region. */
  weightJobs: WeightJob[];
  weightFloats: number;
  buffers: ArenaBuffer[];
  /** Bytes of the arena: the largest offset + size over all buffers. */
  arenaBytes: number;
  inputBuffer: number;
  outputBuffer: number;
  inputShape: number[];
  outputShape: number[];
  macs: number;
  threads: number;
}

/** Where the packed weights and the arena start in linear memory. */
export interface Layout {
  weightsAt: number;
  arenaAt: number;
}

/** The layout of a plan in a module whose static data ends at heapBase: weights, then the arena. */
export function layoutFor(plan: Plan, heapBase: number): Layout {
  const weightsAt = align(heapBase);
  return { weightsAt, arenaAt: align(weightsAt + plan.weightFloats * 4) };
}

/** A step argument's value: a number as is, a buffer or weight tensor as its address. */
export function argAddress(plan: Plan, layout: Layout): (a: Arg) => number {
  return (a) =>
    typeof a === 'number' ? a
    : 'buf' in a ? layout.arenaAt + plan.buffers[a.buf].offset + (a.off ?? 0)
    : layout.weightsAt + a.wt * 4;
}

/**
 * How a step divides into chunks: ranges of `rows` (output rows; for a GEMM, pixels or
 * output channels), boundaries on multiples of `grain`, `perThread` chunks per thread (more
 * balance the threads better; fewer cost less where neighbouring chunks recompute shared
 * rows, as fused blocks do). `args` builds the call for rows [r0, r1) with a thread's own
 * scratch buffer.
 */
interface Split {
  rows: number;
  grain: number;
  perThread: number;
  scratchFloats: number;
  args: (r0: number, r1: number, scratch: { buf: number }) => Arg[];
}

/** Steps too small to be worth splitting run on thread 0 alone. */
const whole = (args: Arg[]): Split => ({ rows: 1, grain: 1, perThread: 1, scratchFloats: 0, args: () => args });

/** [r0, r1) of chunk t of T over n rows, boundaries rounded to the grain. */
function range(t: number, T: number, n: number, grain: number): [number, number] {
  const at = (i: number): number => (i >= T ? n : Math.min(n, Math.round((i * n) / T / grain) * grain));
  return [at(t), at(t + 1)];
}

const ALIGN = 64;
const align = (n: number, a = ALIGN): number => Math.ceil(n / a) * a;

/** [lo, hi] for the kernels' clamp. */
function clampRange(act: Activation): [number, number] {
  switch (act) {
    case 'relu6':
      return [0, 6];
    case 'relu':
      return [0, Infinity];
    case 'linear':
      return [-Infinity, Infinity];
  }
}

const product = (s: number[]): number => s.reduce((a, b) => a * b, 1);

class Planner {
  readonly steps: PlanStep[] = [];
  readonly buffers: { name: string; bytes: number; first: number; last: number }[] = [];
  private readonly bufOf = new Map<string, number>();
  readonly jobs: WeightJob[] = [];
  weightFloats = 0;
  private readonly shapes: Map<string, number[]>;
  private readonly tensors: Map<string, Float32Array>;
  constructor(
    readonly src: ModelSource, readonly variant: KernelVariant, readonly threads: number,
    readonly math: LoadMath,
  ) {
    this.shapes = inferShapes(src.desc);
    this.tensors = new Map();
    this.stored = new Map(src.tensors.map((t) => [t.name, t]));
    this.get = (name: string): Float32Array => {
      let f = this.tensors.get(name);
      if (!f) {
        f = math.dequantize(this.tensor(name));
        this.tensors.set(name, f);
      }
      return f;
    };
  }

  private readonly stored: Map<string, StoredTensor>;
  /** A small tensor (bias, batch-norm vector) as f32. */
  readonly get: (name: string) => Float32Array;

  tensor(name: string): StoredTensor {
    const t = this.stored.get(name);
    if (!t) throw new UnsupportedModelError(`tensor ${name} is referenced but not stored`);
    return t;
  }

  shape(name: string): number[] {
    const s = this.shapes.get(name);
    if (!s) throw new UnsupportedModelError(`unknown activation ${name}`);
    return s;
  }

  kernel(base: Parameters<typeof variantName>[0]): KernelName {
    return variantName(base, this.variant) as KernelName;
  }

  /** Ops with one SIMD form for both CPU families. */
  simple(simd: KernelName, scalar: KernelName): KernelName {
    return this.variant === 'scalar' ? scalar : simd;
  }

  /** The buffer holding activation `name`, created on first mention. */
  act(name: string): { buf: number } {
    let id = this.bufOf.get(name);
    if (id === undefined) {
      id = this.buffers.length;
      this.buffers.push({ name, bytes: product(this.shape(name)) * 4, first: this.steps.length, last: this.steps.length });
      this.bufOf.set(name, id);
    }
    return { buf: id };
  }

  /** Scratch memory live only during the step being added. */
  scratch(label: string, floats: number): { buf: number } {
    const id = this.buffers.length;
    this.buffers.push({ name: `${label}:scratch`, bytes: Math.max(floats, 1) * 4, first: this.steps.length, last: this.steps.length });
    return { buf: id };
  }

  /** Reserves packed space for a weight tensor; returns its offset in the weights region. */
  weights(kind: WeightJob['kind'], tensor: string, K: number, N: number, fold: FoldFactors): { wt: number } {
    const at = this.weightFloats;
    this.jobs.push({ kind, tensor: this.tensor(tensor), K, N, fold, at });
    this.weightFloats += align(kind === 'gemm' ? gemmPackedFloats(K, N) : dwPackedFloats(N), ALIGN / 4);
    return { wt: at };
  }

  /**
   * Appends a step, cut into chunks, and extends the lifetime of every buffer it touches to
   * it. Every thread that may run a chunk gets its own scratch.
   */
  push(layers: string[], kernel: KernelName, macs: number, split: Split): void {
    const index = this.steps.length;
    const T = this.threads;
    const most = Math.ceil(split.rows / split.grain);
    const K = T === 1 ? 1 : Math.max(1, Math.min(split.perThread * T, most));
    // Many-chunk steps: a scratch for every thread, and for the first step one more for the
    // caller of run(), which takes chunks of it while the threads wake up.
    const runners = K === 1 ? 1 : index === 0 ? T + 1 : T;
    const scratch = Array.from({ length: runners }, (_, t) =>
      split.scratchFloats > 0 ? this.scratch(`${layers[0]}#${t}`, split.scratchFloats) : { buf: -1 });
    const chunks: Arg[][][] = [];
    for (let c = 0; c < K; c++) {
      const [r0, r1] = range(c, K, split.rows, split.grain);
      if (r1 <= r0) continue;
      chunks.push(scratch.map((s) => split.args(r0, r1, s)));
    }
    for (const args of chunks.flat()) {
      for (const a of args) {
        if (typeof a === 'object' && 'buf' in a) {
          const b = this.buffers[a.buf];
          b.first = Math.min(b.first, index);
          b.last = Math.max(b.last, index);
        }
      }
    }
    this.steps.push({ layers, kernel, chunks, macs, syncAfter: true });
  }

  fold(layer: Conv2DLayer | DepthwiseLayer): FoldFactors {
    const outC = layer.op === 'conv2d' ? layer.outChannels : layer.channels;
    return foldFactors(layer.bias ? this.get(layer.bias) : undefined, outC, layer.batchNorm, this.get, this.math.foldLoop);
  }

  pads(layer: Conv2DLayer | DepthwiseLayer): { top: number; left: number; outH: number; outW: number } {
    const [, H, W] = this.shape(layer.input);
    return resolvePadding(layer.padding, H, W, layer.kernel[0], layer.kernel[1], layer.stride);
  }
}

const is1x1 = (l: LayerDesc | undefined): l is Conv2DLayer =>
  l !== undefined && l.op === 'conv2d' && l.kernel[0] === 1 && l.kernel[1] === 1 && l.stride === 1;
const is3x3conv = (l: LayerDesc | undefined): l is Conv2DLayer =>
  l !== undefined && l.op === 'conv2d' && l.kernel[0] === 3 && l.kernel[1] === 3;
const is3x3dw = (l: LayerDesc | undefined): l is DepthwiseLayer =>
  l !== undefined && l.op === 'depthwise' && l.kernel[0] === 3 && l.kernel[1] === 3;

/**
 * Builds the plan. Throws UnsupportedModelError for layers no kernel implements. `math`
 * dequantizes the biases and batch-norm vectors and folds batch-norm (load() passes the same
 * arithmetic on the wasm module, see wasmLoadMath in pack.ts).
 */
export function buildPlan(
  src: ModelSource, variant: KernelVariant = 'x86', threads = 1, math: LoadMath = JS_LOAD_MATH,
): Plan {
  const p = new Planner(src, variant, threads, math);
  const { desc } = src;
  const layers = desc.layers;
  const consumers = new Map<string, LayerDesc[]>();
  for (const l of layers) {
    for (const i of l.op === 'add' ? l.inputs : [l.input]) {
      consumers.set(i, [...(consumers.get(i) ?? []), l]);
    }
  }
  /** The only layer reading `name`, when it is the only one and `name` is not the model output. */
  const soleConsumer = (name: string): LayerDesc | undefined => {
    const c = consumers.get(name);
    return c && c.length === 1 && name !== desc.output ? c[0] : undefined;
  };

  p.act(desc.input);
  const done = new Set<string>();
  for (const layer of layers) {
    if (done.has(layer.name)) continue;
    // A 3x3 convolution feeding a depthwise-separable pair (the stem and the first block).
    const stemDw = is3x3conv(layer) ? soleConsumer(layer.name) : undefined;
    const stemPw = is3x3dw(stemDw) ? soleConsumer(stemDw.name) : undefined;
    if (is3x3conv(layer) && is3x3dw(stemDw) && is1x1(stemPw) && soleConsumer(stemPw.name)?.op !== 'add') {
      addStemBlock(p, layer, stemDw, stemPw);
      for (const l of [layer, stemDw, stemPw]) done.add(l.name);
      continue;
    }
    // The fused inverted-residual block, with or without its expansion.
    const expand = is1x1(layer) && is3x3dw(soleConsumer(layer.name)) ? layer : undefined;
    const dw = expand ? (soleConsumer(expand.name) as DepthwiseLayer) : is3x3dw(layer) ? layer : undefined;
    const project = dw ? soleConsumer(dw.name) : undefined;
    if (dw && is1x1(project)) {
      addBlock(p, expand, dw, project, soleConsumer(project.name), done);
      continue;
    }
    addSingle(p, layer);
    done.add(layer.name);
  }
  p.act(desc.output);
  const outBuf = p.buffers[p.act(desc.output).buf];
  outBuf.last = p.steps.length; // the output is read after the last step
  const inBuf = p.buffers[p.act(desc.input).buf];
  inBuf.first = -1; // the input is written before the first step

  const alone = (s: PlanStep | undefined): boolean => s === undefined || s.chunks.length <= 1;
  p.steps.forEach((s, i) => (s.syncAfter = !(alone(s) && alone(p.steps[i + 1]))));
  const { placed, arenaBytes } = assignOffsets(p.buffers);
  return {
    steps: p.steps,
    weightJobs: p.jobs,
    weightFloats: p.weightFloats,
    buffers: placed,
    arenaBytes,
    inputBuffer: p.act(desc.input).buf,
    outputBuffer: p.act(desc.output).buf,
    inputShape: p.shape(desc.input),
    outputShape: p.shape(desc.output),
    macs: p.steps.reduce((a, s) => a + s.macs, 0),
    threads,
  };
}

function addBlock(
  p: Planner,
  expand: Conv2DLayer | undefined,
  dw: DepthwiseLayer,
  project: Conv2DLayer,
  after: LayerDesc | undefined,
  done: Set<string>,
): void {
  const blockIn = expand ? expand.input : dw.input;
  const [, H, W, Cin] = p.shape(blockIn);
  const Cexp = dw.channels;
  const Cout = project.outChannels;
  const { top, left, outH, outW } = p.pads(dw);
  const residual =
    after !== undefined &&
    after.op === 'add' &&
    after.inputs.includes(project.name) &&
    after.inputs.includes(blockIn) &&
    dw.stride === 1 &&
    Cin === Cout &&
    outH === H &&
    outW === W;
  const names = [expand?.name, dw.name, project.name, residual ? after.name : undefined].filter(
    (n): n is string => n !== undefined,
  );
  for (const n of names) done.add(n);
  const output = names[names.length - 1];

  let ew: { wt: number } | 0 = 0;
  let eRange: [number, number] = [0, 0];
  if (expand) {
    ew = p.weights('gemm', expand.weights, Cin, Cexp, p.fold(expand));
    eRange = clampRange(expand.activation);
  }
  const dwW = p.weights('dw', dw.weights, 9, Cexp, p.fold(dw));
  const pw = p.weights('gemm', project.weights, Cexp, Cout, p.fold(project));
  const [dlo, dhi] = clampRange(dw.activation);
  const [plo, phi] = clampRange(project.activation);
  const inp = p.act(blockIn);
  const out = p.act(output);
  if (p.threads > 1 && outH * outW <= SPLIT_PIXELS) {
    // Few rows to share: split by rows, the fused block would expand each boundary row on
    // both sides (+29% of the work at 7x7). As three steps, every stage splits evenly.
    const e = expand ? p.act(expand.name) : inp;
    if (expand && ew) {
      p.push([expand.name], p.kernel('gemm'), H * W * Cin * Cexp, gemmSplit(H * W, Cin, Cexp, inp, ew, e, eRange, null));
    }
    const d = p.act(dw.name);
    p.push([dw.name], p.kernel('dwconv3x3_nhwc_f32'), outH * outW * Cexp * 9,
      dwRows(e, H, W, Cexp, dwW, d, outH, outW, dw.stride, top, left, [dlo, dhi]));
    p.push(names.slice(names.indexOf(project.name)), p.kernel('gemm'), outH * outW * Cexp * Cout,
      gemmSplit(outH * outW, Cexp, Cout, d, pw, out, [plo, phi], residual ? inp : null));
    return;
  }
  // With threads, at 14x14 the rows re-expanded at chunk boundaries cost more (+6% of the
  // block) than storing the expanded tensor: the expansion runs as a GEMM step of its own,
  // split evenly, and the fused block reads its output like an unexpanded input.
  let [src, srcC] = [inp, Cin];
  if (expand && ew && p.threads > 1 && outH * outW <= EXPAND_APART_PIXELS) {
    src = p.act(expand.name);
    srcC = Cexp;
    p.push([expand.name], p.kernel('gemm'), H * W * Cin * Cexp, gemmSplit(H * W, Cin, Cexp, inp, ew, src, eRange, null));
  }
  const expands = src === inp && expand !== undefined;
  const { S, cap } = stripShape(outH, outW, dw.stride, Cexp * Cout * 4);
  const macs = (expands ? H * W * Cin * Cexp : 0) + outH * outW * Cexp * 9 + outH * outW * Cexp * Cout;
  const outRow = outW * Cout * 4;
  p.push(names.slice(expands ? 0 : names.indexOf(dw.name)), p.kernel('ibottleneck3x3_nhwc_f32'), macs, {
    rows: outH,
    grain: 1,
    // Each chunk boundary re-expands the 1-2 input rows both sides read: only wide layers
    // get a second chunk per thread.
    perThread: outH >= 56 ? 2 : 1,
    scratchFloats: blockScratchFloats(W, Cexp, outW, expands, S, cap),
    args: (r0, r1, scratch) => [
      src, H, W, srcC, expands ? ew : 0, Cexp, eRange[0], eRange[1],
      dwW, dw.stride, top - r0 * dw.stride, left, dlo, dhi,
      pw, Cout, plo, phi, residual ? { ...inp, off: r0 * outRow } : 0,
      { ...out, off: r0 * outRow }, r1 - r0, outW, S, cap, scratch,
    ],
  });
}

/**
 * A 3x3 convolution fused with the depthwise 3x3 -> 1x1 pair it feeds: the convolution's
 * output rows stream through the block's ring like expanded rows, so the largest activation
 * of a MobileNet (112 x 112 x 32 after the stem) is never stored whole.
 */
function addStemBlock(p: Planner, conv: Conv2DLayer, dw: DepthwiseLayer, project: Conv2DLayer): void {
  const [, cH, cW, cC] = p.shape(conv.input);
  const c = p.pads(conv);
  const [H, W, Cexp, Cout] = [c.outH, c.outW, conv.outChannels, project.outChannels];
  const cw = p.weights('gemm', conv.weights, 9 * cC, Cexp, p.fold(conv));
  const dwW = p.weights('dw', dw.weights, 9, Cexp, p.fold(dw));
  const pw = p.weights('gemm', project.weights, Cexp, Cout, p.fold(project));
  const [clo, chi] = clampRange(conv.activation);
  const [dlo, dhi] = clampRange(dw.activation);
  const [plo, phi] = clampRange(project.activation);
  const { top, left, outH, outW } = p.pads(dw);
  const { S, cap } = stripShape(outH, outW, dw.stride, Cexp * Cout * 4);
  const [inp, out] = [p.act(conv.input), p.act(project.name)];
  const outRow = outW * Cout * 4;
  const macs = H * W * 9 * cC * Cexp + outH * outW * Cexp * 9 + outH * outW * Cexp * Cout;
  p.push([conv.name, dw.name, project.name], p.kernel('stem3x3_block_nhwc_f32'), macs, {
    rows: outH,
    grain: 1,
    perThread: outH >= 56 ? 2 : 1,
    scratchFloats: blockScratchFloats(W, Cexp, outW, true, S, cap) + W * 9 * cC, // + one im2col row
    args: (r0, r1, scratch) => [
      inp, cH, cW, cC, conv.stride, c.top, c.left, cw, H, W, Cexp, clo, chi,
      dwW, dw.stride, top - r0 * dw.stride, left, dlo, dhi, pw, Cout, plo, phi,
      { ...out, off: r0 * outRow }, r1 - r0, outW, S, cap, scratch,
    ],
  });
}

/** With threads, blocks with at most this many output pixels run as three split steps. */
const SPLIT_PIXELS = 49;
/** With threads, blocks with at most this many output pixels expand in a step of their own. */
const EXPAND_APART_PIXELS = 196;
/**
 * Dense layers with at least this many weights split between threads (by output columns):
 * streaming 512 KB of weights takes ~50 us, smaller ones take less than the wait it adds.
 */
const SPLIT_DENSE_MACS = 1 << 17;

/**
 * A 1x1 convolution over M pixels. With threads, each chunk re-reads what the split does not
 * divide, so the split divides the larger operand: by pixels (whole 4-row register tiles)
 * where pixels outnumber output channels, else by blocks of 8 output channels. At 7x7 and
 * 14x14 the weights are the larger: split by channels, each thread streams only its share of
 * them, and the shares come out even (49 pixels are 13 row tiles, which do not halve).
 */
function gemmSplit(
  M: number, K: number, N: number, inp: { buf: number }, w: { wt: number }, out: { buf: number },
  [lo, hi]: [number, number], res: { buf: number } | null,
): Split {
  const byRows = M >= N;
  return {
    rows: byRows ? M : N,
    grain: byRows ? 4 : 8,
    perThread: 2,
    scratchFloats: 0,
    args: byRows
      ? (r0, r1) => [
        r1 - r0, K, N, { ...inp, off: r0 * K * 4 }, w, { ...out, off: r0 * N * 4 }, lo, hi,
        res ? { ...res, off: r0 * N * 4 } : 0, N,
      ]
      : (n0, n1) => [
        M, K, n1 - n0, inp, { wt: w.wt + (n0 / 8) * (K + 1) * 8 }, { ...out, off: n0 * 4 }, lo, hi,
        res ? { ...res, off: n0 * 4 } : 0, N,
      ],
  };
}

/** A 3x3 depthwise convolution, split by output rows. */
function dwRows(
  inp: { buf: number }, H: number, W: number, C: number, w: Arg, out: { buf: number },
  outH: number, outW: number, s: number, top: number, left: number, [lo, hi]: [number, number],
): Split {
  return {
    rows: outH,
    grain: 1,
    perThread: 2,
    scratchFloats: W * C,
    args: (r0, r1, scratch) => [
      inp, H, W, C, w, { ...out, off: r0 * outW * C * 4 }, r1 - r0, outW, s, top - r0 * s, left, lo, hi, scratch,
    ],
  };
}

/** Scratch of a fused block, as ibottleneck_scratch_floats: the ring (if it expands), a zero row, S depthwise rows. */
const blockScratchFloats = (W: number, Cexp: number, outW: number, hasExpand: boolean, S: number, cap: number): number =>
  (hasExpand ? cap * W * Cexp : 0) + W * Cexp + S * outW * Cexp;

/** Pixels the GEMMs of a fused block should see per call: enough for the row tiles to dominate. */
const STRIP_PIXELS = 128;
/** Project weights above this are streamed once per strip from L3: use one strip instead. */
const BIG_WEIGHTS = 256 * 1024;

/**
 * Strip height S and ring rows for a fused block: a few rows on wide layers, the whole height
 * on narrow ones or where the project weights are large. The ring holds exactly the input
 * rows one strip reads.
 */
export function stripShape(outH: number, outW: number, stride: number, projectBytes: number): { S: number; cap: number } {
  const S = projectBytes > BIG_WEIGHTS ? outH : Math.min(outH, Math.max(1, Math.ceil(STRIP_PIXELS / outW)));
  return { S, cap: (S - 1) * stride + 3 };
}

function addSingle(p: Planner, layer: LayerDesc): void {
  switch (layer.op) {
    case 'conv2d':
      return addConv(p, layer);
    case 'depthwise': {
      if (layer.kernel[0] !== 3 || layer.kernel[1] !== 3) {
        throw new UnsupportedModelError(`${layer.name}: only 3x3 depthwise kernels are supported`);
      }
      const [, H, W, C] = p.shape(layer.input);
      const { top, left, outH, outW } = p.pads(layer);
      const w = p.weights('dw', layer.weights, 9, C, p.fold(layer));
      p.push([layer.name], p.kernel('dwconv3x3_nhwc_f32'), outH * outW * C * 9,
        dwRows(p.act(layer.input), H, W, C, w, p.act(layer.name), outH, outW, layer.stride, top, left, clampRange(layer.activation)));
      return;
    }
    case 'add': {
      const n = product(p.shape(layer.name));
      const [a, b] = layer.inputs;
      const [ba, bb, bo] = [p.act(a), p.act(b), p.act(layer.name)];
      p.push([layer.name], p.simple('add_f32', 'add_f32_scalar'), 0, {
        rows: n,
        grain: 16,
        perThread: 2,
        scratchFloats: 0,
        args: (r0, r1) => [{ ...ba, off: r0 * 4 }, { ...bb, off: r0 * 4 }, r1 - r0, { ...bo, off: r0 * 4 }],
      });
      return;
    }
    case 'globalAvgPool': {
      const [, H, W, C] = p.shape(layer.input);
      p.push([layer.name], p.simple('global_avgpool_nhwc_f32', 'global_avgpool_nhwc_f32_scalar'), 0,
        whole([p.act(layer.input), H * W, C, p.act(layer.name)]));
      return;
    }
    case 'dense':
      return addDense(p, layer);
    case 'softmax': {
      const n = product(p.shape(layer.name));
      p.push([layer.name], 'softmax_f32', 0, whole([p.act(layer.input), n, p.act(layer.name)]));
      return;
    }
  }
}

function addConv(p: Planner, layer: Conv2DLayer): void {
  const [, H, W, Cin] = p.shape(layer.input);
  const N = layer.outChannels;
  const { top, left, outH, outW } = p.pads(layer);
  const [lo, hi] = clampRange(layer.activation);
  const f = p.fold(layer);
  const k = layer.kernel[0] * layer.kernel[1];
  if (k === 1) {
    if (layer.stride !== 1 || top !== 0 || left !== 0 || outH !== H || outW !== W) {
      throw new UnsupportedModelError(`${layer.name}: 1x1 convolutions must have stride 1 and no padding`);
    }
    const w = p.weights('gemm', layer.weights, Cin, N, f);
    p.push([layer.name], p.kernel('gemm'), H * W * Cin * N,
      gemmSplit(H * W, Cin, N, p.act(layer.input), w, p.act(layer.name), [lo, hi], null));
    return;
  }
  if (layer.kernel[0] !== 3 || layer.kernel[1] !== 3) {
    throw new UnsupportedModelError(`${layer.name}: only 1x1 and 3x3 convolutions are supported`);
  }
  const w = p.weights('gemm', layer.weights, 9 * Cin, N, f);
  const [inp, out] = [p.act(layer.input), p.act(layer.name)];
  const s = layer.stride;
  p.push([layer.name], p.kernel('conv3x3_nhwc_f32'), outH * outW * 9 * Cin * N, {
    rows: outH,
    grain: 1,
    perThread: 2,
    scratchFloats: outW * 9 * Cin,
    args: (r0, r1, scratch) => [
      inp, H, W, Cin, w, N, { ...out, off: r0 * outW * N * 4 }, r1 - r0, outW, s, top - r0 * s, left, lo, hi, scratch,
    ],
  });
}

function addDense(p: Planner, layer: DenseLayer): void {
  const fold = foldFactors(layer.bias ? p.get(layer.bias) : undefined, layer.outFeatures, undefined, p.get, p.math.foldLoop);
  const [lo, hi] = clampRange(layer.activation);
  const packed = p.weights('gemm', layer.weights, layer.inFeatures, layer.outFeatures, fold);
  const [K, N] = [layer.inFeatures, layer.outFeatures];
  p.push([layer.name], p.kernel('gemm'), K * N,
    K * N >= SPLIT_DENSE_MACS
      ? gemmSplit(1, K, N, p.act(layer.input), packed, p.act(layer.name), [lo, hi], null)
      : whole([1, K, N, p.act(layer.input), packed, p.act(layer.name), lo, hi, 0, N]));
}

/**
 * Greedy offset assignment, largest buffer first: each goes at the lowest offset where it
 * overlaps no already-placed buffer whose lifetime overlaps its own. Near-optimal for the
 * chain-shaped liveness of CNNs, and deterministic.
 */
export function assignOffsets(
  buffers: { name: string; bytes: number; first: number; last: number }[],
): { placed: ArenaBuffer[]; arenaBytes: number } {
  const placed: ArenaBuffer[] = buffers.map((b) => ({ ...b, bytes: align(b.bytes), offset: -1 }));
  const order = placed
    .map((b, i) => i)
    .sort((a, b) => placed[b].bytes - placed[a].bytes || a - b);
  const done: ArenaBuffer[] = [];
  let arenaBytes = 0;
  for (const i of order) {
    const b = placed[i];
    const live = done
      .filter((o) => o.first <= b.last && b.first <= o.last)
      .sort((x, y) => x.offset - y.offset);
    let offset = 0;
    for (const o of live) {
      if (offset + b.bytes <= o.offset) break;
      offset = Math.max(offset, o.offset + o.bytes);
    }
    b.offset = offset;
    done.push(b);
    arenaBytes = Math.max(arenaBytes, offset + b.bytes);
  }
  return { placed, arenaBytes };
}
