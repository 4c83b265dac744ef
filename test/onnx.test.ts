// ONNX export: the file decodes with the reference protobuf definitions (onnx-proto), has the
// graph docs/ONNX.md describes, and onnxruntime-node computes what Model.run() computes.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { DEFAULT_MODEL_URL, encodeModel, InputError, load, mobilenetV1, mobilenetV2, readModel } from '../src/index.js';
import type { LoadOptions } from '../src/index.js';
import type { KernelVariant } from '../src/wasm.js';
import type { ModelSource, StoredTensor } from '../src/desc.js';
import { dequantize } from '../src/format.js';
import { mulberry32 } from '../src/builders.js';
import { exportOnnx } from '../src/onnx/export.js';
import { exportOnnxCommand } from '../src/onnx/cli.js';
import { maxAbsDiff, maxRelDiff } from './helpers/wasm.js';

const { onnx } = onnxProto;
const DEFAULT_MODEL_PATH = fileURLToPath(DEFAULT_MODEL_URL);
const HAVE_DEFAULT_MODEL = existsSync(DEFAULT_MODEL_PATH);

/** Our side's load options: ONNX_TEST_KERNELS=scalar|x86|arm forces a kernel variant (to tell export bugs from kernel bugs). */
const OUR_OPTIONS: LoadOptions = process.env.ONNX_TEST_KERNELS ? { kernels: process.env.ONNX_TEST_KERNELS as KernelVariant } : {};

function seededInput(shape: readonly number[], seed: number, lo: number, hi: number): Float32Array {
  const rand = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * rand();
  return x;
}

interface Compared {
  ours: Float32Array;
  theirs: Float32Array;
  outputDims: readonly number[];
  bytes: Uint8Array;
}

/** Runs `src` in our wasm and, exported, in onnxruntime-node (one thread) on the same input. */
async function compare(src: ModelSource, input: Float32Array, opset?: number): Promise<Compared> {
  const model = await load(src, OUR_OPTIONS);
  const ours = await model.run(input);
  model.dispose();
  const bytes = exportOnnx(src, opset === undefined ? {} : { opset });
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  expect(session.inputNames).toEqual(['input']);
  expect(session.outputNames).toEqual(['output']);
  const out = await session.run({ input: new ort.Tensor('float32', input, [...src.desc.inputShape]) });
  const theirs = out.output.data as Float32Array;
  const outputDims = out.output.dims;
  await session.release();
  return { ours, theirs, outputDims, bytes };
}

/** Same model with every tensor uint8-quantized per tensor, as TF.js (and the bundled model) store them. */
function quantized(src: ModelSource): ModelSource {
  const tensors = src.tensors.map((t): StoredTensor => {
    const v = dequantize(t);
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of v) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    const scale = hi > lo ? (hi - lo) / 255 : 1;
    const q = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) q[i] = Math.round((v[i] - lo) / scale);
    return { name: t.name, shape: t.shape, dtype: 'u8', data: q, scale, min: lo };
  });
  return { desc: src.desc, tensors };
}

// The decoded ModelProto as plain data (toObject with int64 as numbers): just what is read here.
interface PAttr { name: string; i: number; f: number; ints: number[] }
interface PNode { name: string; opType: string; input: string[]; output: string[]; attribute: PAttr[] }
interface PTensor { name: string; dims: number[]; dataType: number; rawData: Uint8Array }
interface PValueInfo { name: string; type: { tensorType: { elemType: number; shape: { dim: { dimValue: number }[] } } } }
interface PModel {
  irVersion: number;
  producerName: string;
  docString: string;
  opsetImport: { domain: string; version: number }[];
  metadataProps: { key: string; value: string }[];
  graph: { name: string; node: PNode[]; initializer: PTensor[]; input: PValueInfo[]; output: PValueInfo[] };
}
const decode = (bytes: Uint8Array): PModel =>
  onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, defaults: true, arrays: true }) as unknown as PModel;
const attr = (node: PNode, name: string): PAttr | undefined => node.attribute.find((a) => a.name === name);
const ints = (node: PNode, name: string): number[] => attr(node, name)?.ints ?? [];
const dimsOf = (vi: PValueInfo): number[] => vi.type.tensorType.shape.dim.map((d) => d.dimValue);

describe('exportOnnx: file structure (decoded with onnx-proto)', () => {
  it('MobileNetV2 graph: NHWC input, OIHW weights, folded BN, explicit pads, Clip(0,6), metadata', () => {
    const src = mobilenetV2({ alpha: 0.35, inputSize: 96, classes: 10 });
    const m = decode(exportOnnx(src));
    expect(m.irVersion).toBe(7);
    expect(m.opsetImport.map((o) => [o.domain, o.version])).toEqual([['', 13]]);
    expect(m.producerName).toBe('mobilenet-wasm');
    const props = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
    expect(props.family).toBe('mobilenet_v2');
    expect(props.input_layout).toBe('NHWC');
    expect(props.weights).toBe('seeded random (not trained)');
    expect(m.docString).toContain('mobilenet_v2');

    const g = m.graph;
    expect(g.input.map((i) => i.name)).toEqual(['input']);
    expect(dimsOf(g.input[0])).toEqual([1, 96, 96, 3]);
    expect(g.output.map((o) => o.name)).toEqual(['output']);
    expect(dimsOf(g.output[0])).toEqual([1, 10]);

    const ops = g.node.map((n) => n.opType);
    const count = (op: string) => ops.filter((o) => o === op).length;
    const convLayers = src.desc.layers.filter((l) => l.op === 'conv2d' || l.op === 'depthwise');
    expect(count('Conv')).toBe(convLayers.length);
    expect(count('Clip')).toBe(convLayers.filter((l) => 'activation' in l && l.activation === 'relu6').length);
    expect(count('Add')).toBe(src.desc.layers.filter((l) => l.op === 'add').length);
    expect(ops[0]).toBe('Transpose');
    expect(ints(g.node[0], 'perm')).toEqual([0, 3, 1, 2]);
    expect(ops.slice(-4)).toEqual(['GlobalAveragePool', 'Flatten', 'Gemm', 'Softmax']);
    expect(g.node.at(-1)!.output).toEqual(['output']);
    expect(ops).not.toContain('BatchNormalization');

    // The stem: 3x3 stride 2 with Keras's ZeroPadding2D((0,1),(0,1)) -> pads [top,left,bottom,right].
    const stem = g.node.find((n) => n.name === 'Conv1')!;
    expect(ints(stem, 'pads')).toEqual([0, 0, 1, 1]);
    expect(ints(stem, 'strides')).toEqual([2, 2]);
    expect(attr(stem, 'group')?.i).toBe(1);
    const init = new Map(g.initializer.map((t) => [t.name, t]));
    expect(init.get(stem.input[1])?.dims).toEqual([16, 3, 3, 3]);
    expect(stem.input).toHaveLength(3); // bias always present
    // A stride-1 depthwise: SAME -> 1 on every side; group = C; weights [C,1,3,3].
    const dw = g.node.find((n) => n.name === 'block_1_depthwise')!; // stride 2
    const dw2 = g.node.find((n) => n.name === 'block_2_depthwise')!; // stride 1
    expect(ints(dw, 'pads')).toEqual([0, 0, 1, 1]);
    expect(ints(dw2, 'pads')).toEqual([1, 1, 1, 1]);
    const c = init.get(dw2.input[1])!.dims[0];
    expect(attr(dw2, 'group')?.i).toBe(c);
    expect(init.get(dw2.input[1])?.dims).toEqual([c, 1, 3, 3]);
    // Clip bounds are shared scalar initializers 0 and 6.
    const clip = g.node.find((n) => n.opType === 'Clip')!;
    const scalar = (name: string) => new Float32Array(Uint8Array.from(init.get(name)!.rawData).buffer)[0];
    expect([scalar(clip.input[1]), scalar(clip.input[2])]).toEqual([0, 6]);
    expect(init.get(clip.input[1])!.dims).toHaveLength(0);
    const gemm = g.node.find((n) => n.opType === 'Gemm')!;
    expect(attr(gemm, 'transB')?.i).toBe(0);
    expect(init.get(gemm.input[1])?.dims).toEqual([1280, 10]);
  });

  it('4-D output: dead layers pruned, transposed back to NHWC', () => {
    const src = mobilenetV1({ alpha: 0.25, inputSize: 64 });
    src.desc.output = 'conv_pw_5';
    const g = decode(exportOnnx(src)).graph;
    const ops = g.node.map((n) => n.opType);
    expect(ops).not.toContain('Gemm');
    expect(g.node.map((n) => n.name)).not.toContain('conv_dw_6');
    expect(ops.at(-1)).toBe('Transpose');
    expect(ints(g.node.at(-1)!, 'perm')).toEqual([0, 2, 3, 1]);
    expect(dimsOf(g.output[0])).toEqual([1, 8, 8, 64]);
  });

  it('rejects an opset it cannot express', () => {
    const src = mobilenetV1({ alpha: 0.25, inputSize: 32 });
    expect(() => exportOnnx(src, { opset: 10 })).toThrow(InputError);
    expect(() => exportOnnx(src, { opset: 24 })).toThrow(InputError);
    expect(() => exportOnnx(src, { opset: 13.5 })).toThrow(InputError);
  });
});

describe('exportOnnx: onnxruntime-node agrees with Model.run()', () => {
  it('MobileNetV2 1.0 224, logits: max rel diff <= 1e-4', async () => {
    const src = mobilenetV2({ alpha: 1.0, softmax: false });
    const x = seededInput(src.desc.inputShape, 7, -1, 1);
    const r = await compare(src, x);
    expect(r.outputDims).toEqual([1, 1000]);
    const d = maxRelDiff(r.theirs, r.ours);
    console.log(`MobileNetV2 1.0 224 logits: max rel diff ${d.toExponential(2)}, ONNX ${(r.bytes.byteLength / 1e6).toFixed(1)} MB`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });

  it('MobileNetV1 0.5 128, logits and softmax', async () => {
    const logits = mobilenetV1({ alpha: 0.5, inputSize: 128, softmax: false });
    const x = seededInput(logits.desc.inputShape, 11, -1, 1);
    const a = await compare(logits, x);
    const dl = maxRelDiff(a.theirs, a.ours);
    const probs = mobilenetV1({ alpha: 0.5, inputSize: 128, classes: 5 });
    const b = await compare(probs, x);
    const dp = maxAbsDiff(b.theirs, b.ours);
    console.log(`MobileNetV1 0.5 128: logits max rel diff ${dl.toExponential(2)}, softmax(5) max abs diff ${dp.toExponential(2)}`);
    expect(dl).toBeLessThanOrEqual(1e-4);
    expect(dp).toBeLessThanOrEqual(1e-4);
  });

  it('uint8-quantized weights, opsets 11 and 21, 4-D output', async () => {
    const q = quantized(mobilenetV1({ alpha: 0.25, inputSize: 96, classes: 5 }));
    const x = seededInput(q.desc.inputShape, 3, -1, 1);
    for (const opset of [11, 21]) {
      const r = await compare(q, x, opset);
      expect(maxAbsDiff(r.theirs, r.ours)).toBeLessThanOrEqual(1e-4);
    }
    const map = mobilenetV2({ alpha: 0.35, inputSize: 96 });
    // An Add as the output, 4-D [1,12,12,16]. Not deeper: with random weights the residual
    // stream grows to |x| ~ 20 and f32 rounding differences grow with it (1.8e-4 by block 15).
    map.desc.output = 'block_5_add';
    const r = await compare(map, seededInput(map.desc.inputShape, 5, -1, 1));
    expect(r.outputDims).toEqual([1, 12, 12, 16]);
    const d = maxRelDiff(r.theirs, r.ours);
    console.log(`4-D output [1,12,12,16]: max rel diff ${d.toExponential(2)}`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });

  it('a dense layer reading a [1,1,1,C] map (Keras Flatten) is fed through Flatten', async () => {
    // MobileNetV1 at 32x32 ends in a 1x1 map: drop the pooling, let the classifier read the map.
    const src = mobilenetV1({ alpha: 0.25, inputSize: 32, classes: 7 });
    const dense = src.desc.layers.find((l) => l.op === 'dense');
    if (dense?.op !== 'dense') throw new Error('no dense layer');
    dense.input = 'conv_pw_13';
    src.desc.layers = src.desc.layers.filter((l) => l.op !== 'globalAvgPool');
    const x = seededInput(src.desc.inputShape, 9, -1, 1);
    const r = await compare(src, x);
    expect(r.outputDims).toEqual([1, 7]);
    expect(maxAbsDiff(r.theirs, r.ours)).toBeLessThanOrEqual(1e-4);
    expect(decode(r.bytes).graph.node.map((n) => n.opType)).toContain('Flatten');
  });

  it.skipIf(!HAVE_DEFAULT_MODEL)('the bundled default model (nsfwjs MobileNetV2), softmax: max abs diff <= 1e-4', async () => {
    const src = await readModel();
    const x = seededInput(src.desc.inputShape, 42, 0, 1); // nsfwjs feeds pixels / 255
    const r = await compare(src, x);
    expect(r.outputDims).toEqual([1, src.desc.labels?.length ?? 5]);
    const d = maxAbsDiff(r.theirs, r.ours);
    console.log(`bundled model: max abs diff ${d.toExponential(2)} (ours ${Array.from(r.ours, (v) => v.toFixed(4)).join(' ')})`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });
});

describe('export-onnx command', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('writes --model as ONNX that onnxruntime loads; rejects a missing output path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mnw-onnx-'));
    dirs.push(dir);
    const src = mobilenetV1({ alpha: 0.25, inputSize: 64, classes: 3 });
    await writeFile(join(dir, 'm.mnw'), encodeModel(src));
    const out = join(dir, 'm.onnx');
    const log = console.log;
    console.log = () => {};
    try {
      await exportOnnxCommand([out, '--model', join(dir, 'm.mnw'), '--opset', '17']);
    } finally {
      console.log = log;
    }
    const bytes = new Uint8Array(await readFile(out));
    expect(decode(bytes).opsetImport[0].version).toBe(17);
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const res = await session.run({ input: new ort.Tensor('float32', new Float32Array(64 * 64 * 3), [1, 64, 64, 3]) });
    expect(res.output.dims).toEqual([1, 3]);
    await session.release();
    await expect(exportOnnxCommand([])).rejects.toThrow(InputError);
  });

  it.skipIf(!HAVE_DEFAULT_MODEL)('with no --model exports the bundled model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mnw-onnx-'));
    dirs.push(dir);
    const out = join(dir, 'default.onnx');
    const log = console.log;
    console.log = () => {};
    try {
      await exportOnnxCommand([out]);
    } finally {
      console.log = log;
    }
    const m = decode(new Uint8Array(await readFile(out)));
    expect(Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value])).family).toBe((await readModel()).desc.family);
  });
});
