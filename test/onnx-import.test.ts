// ONNX import: load() accepts a MobileNet .onnx file. Our own exports round-trip; a
// PyTorch-style file written with onnx-proto (independent of our reader and writer) computes
// what onnxruntime-node computes; unsupported operators are all named at once; truncated or
// corrupt bytes fail with ModelFormatError and nothing else.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import {
  DEFAULT_MODEL_URL,
  importOnnx,
  load,
  MobileNetWasmError,
  mobilenetV1,
  mobilenetV2,
  ModelFormatError,
  readModel,
  UnsupportedModelError,
} from '../src/index.js';
import type { ModelSource } from '../src/desc.js';
import { concatBytes } from '../src/format.js';
import { mulberry32 } from '../src/builders.js';
import { exportOnnx } from '../src/onnx/export.js';
import { looksLikeOnnx } from '../src/onnx/import.js';
import { maxAbsDiff, maxRelDiff } from './helpers/wasm.js';

const { onnx } = onnxProto;
const HAVE_DEFAULT_MODEL = existsSync(fileURLToPath(DEFAULT_MODEL_URL));
const ORT_OPTIONS = { intraOpNumThreads: 1, interOpNumThreads: 1 };

function seeded(n: number, seed: number, lo: number, hi: number): Float32Array {
  const rand = mulberry32(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * rand();
  return x;
}

async function runOrt(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes, ORT_OPTIONS);
  const input: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) input[k] = new ort.Tensor('float32', v.data, v.dims);
  const out = await session.run(input);
  const t = out[session.outputNames[0]];
  await session.release();
  return { data: t.data as Float32Array, dims: t.dims };
}

async function runOurs(source: Uint8Array | ModelSource, x: Float32Array): Promise<Float32Array> {
  const m = await load(source);
  try {
    return await m.run(x);
  } finally {
    m.dispose();
  }
}

/** NCHW [1,C,H,W] -> NHWC [1,H,W,C]. */
function toNhwc(x: Float32Array, C: number, H: number, W: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let i = 0; i < W; i++) out[(y * W + i) * C + c] = x[(c * H + y) * W + i];
  return out;
}

/** Rejects with exactly this class (not merely something thrown). */
async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// (1) Round trip through our own exporter

describe('importOnnx: our exports round-trip', () => {
  it.skipIf(!HAVE_DEFAULT_MODEL)('bundled model -> exportOnnx -> load(onnx bytes): same outputs as the original and as onnxruntime', async () => {
    const src = await readModel();
    const bytes = exportOnnx(src);
    const x = seeded(src.desc.inputShape.reduce((a, b) => a * b, 1), 42, 0, 1);

    const original = await runOurs(src, x);
    const imported = await runOurs(bytes, x);
    const theirs = await runOrt(bytes, { input: { data: x, dims: [...src.desc.inputShape] } });

    const dOurs = maxAbsDiff(imported, original);
    const dOrt = maxAbsDiff(imported, theirs.data);
    console.log(`bundled model round trip: vs original ${dOurs.toExponential(2)}, vs onnxruntime ${dOrt.toExponential(2)} (max abs, softmax)`);
    expect(dOurs).toBeLessThanOrEqual(1e-5);
    expect(dOrt).toBeLessThanOrEqual(1e-4);

    // Labels, preprocessing, family and provenance come back from metadata_props.
    const back = importOnnx(bytes);
    expect(back.desc.labels).toEqual(src.desc.labels);
    expect(back.desc.preprocess).toEqual(src.desc.preprocess);
    expect(back.desc.family).toBe(src.desc.family);
    expect(back.desc.inputShape).toEqual(src.desc.inputShape);
    for (const [k, v] of Object.entries(src.desc.meta ?? {})) expect(back.desc.meta?.[k]).toBe(v);
    expect(back.desc.meta?.onnx_source).toContain('NHWC');
  });

  it('random MobileNetV1/V2 (logits, 4-D output, dense on a [1,1,1,C] map), from a file path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mnw-onnx-import-'));
    try {
      const v2 = mobilenetV2({ alpha: 0.35, inputSize: 96, classes: 10, softmax: false, seed: 3 });
      const v1 = mobilenetV1({ alpha: 0.25, inputSize: 64, classes: 7, seed: 4 });
      const map = mobilenetV2({ alpha: 0.35, inputSize: 64, seed: 5 });
      map.desc.output = 'block_5_add';
      const flat = mobilenetV1({ alpha: 0.25, inputSize: 32, classes: 7, seed: 6 });
      const dense = flat.desc.layers.find((l) => l.op === 'dense');
      if (dense?.op !== 'dense') throw new Error('no dense layer');
      dense.input = 'conv_pw_13';
      flat.desc.layers = flat.desc.layers.filter((l) => l.op !== 'globalAvgPool');
      const diffs: string[] = [];
      for (const [name, src, opset] of [['v2', v2, 13], ['v1', v1, 11], ['map', map, 17], ['flat', flat, 21]] as const) {
        const bytes = exportOnnx(src, { opset });
        const path = join(dir, `${name}.onnx`);
        await writeFile(path, bytes);
        const x = seeded(src.desc.inputShape.reduce((a, b) => a * b, 1), 9, -1, 1);
        const original = await runOurs(src, x);
        const m = await load(path);
        expect(m.inputShape).toEqual(src.desc.inputShape);
        const imported = await m.run(x);
        m.dispose();
        const d = maxRelDiff(imported, original);
        diffs.push(`${name} ${d.toExponential(2)}`);
        expect(d).toBeLessThanOrEqual(1e-5);
      }
      console.log(`round trips vs original (max rel): ${diffs.join(', ')}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------
// (2) A PyTorch/torchvision-style file, written with onnx-proto

type Attr = { name: string; type: number; i?: number; f?: number; ints?: number[]; t?: object };
const AT = onnx.AttributeProto.AttributeType;
const ints = (name: string, v: number[]): Attr => ({ name, type: AT.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: AT.INT, i: v });
const float = (name: string, v: number): Attr => ({ name, type: AT.FLOAT, f: v });

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited field, for splicing hand-written messages into onnx-proto's output. */
function lenField(field: number, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(payload.length), ...payload]);
}

interface ForeignOptions {
  /** 13: Clip bounds from Constant nodes, Flatten; 10: Clip attributes, Reshape [1,-1], initializers also listed as inputs. */
  opset: 13 | 10;
  H: number;
  W: number;
  seed: number;
}

/**
 * A small MobileNetV2-like network as torch.onnx.export writes it without BN folding:
 * NCHW input [N,3,H,W] (symbolic batch), Conv (no bias) + BatchNormalization + Clip(0,6),
 * depthwise Conv with group = C, residual Add, GlobalAveragePool, Flatten, Gemm(transB=1),
 * no softmax. Weights are a mix of raw_data, packed float_data and (the Gemm bias, spliced in
 * by hand) unpacked float_data.
 */
function foreignModel(o: ForeignOptions): Uint8Array {
  const rand = mulberry32(o.seed);
  const u = (lo: number, hi: number): number => lo + (hi - lo) * rand();
  const nodes: object[] = [];
  const inits: object[] = [];
  let floatDataToggle = false;
  const init = (name: string, dims: number[], values: number[]): string => {
    // Alternate raw_data and packed float_data, as exporters do.
    floatDataToggle = !floatDataToggle;
    const data = floatDataToggle
      ? { rawData: new Uint8Array(Float32Array.from(values).buffer) }
      : { floatData: values };
    inits.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, ...data });
    return name;
  };
  let nodeId = 0;
  let tensorId = 100;
  const node = (opType: string, name: string, input: string[], attribute: Attr[] = []): string => {
    const out = `onnx::${opType}_${tensorId++}`;
    nodes.push({ opType, name: `/${name}/${opType}_${nodeId++}`, input, output: [out], attribute });
    return out;
  };
  let clipConsts: [string, string] | undefined;
  const clip = (x: string, name: string): string => {
    if (o.opset === 10) return node('Clip', name, [x], [float('min', 0), float('max', 6)]);
    if (!clipConsts) {
      const c = (v: number): string => {
        const out = `onnx::Constant_${tensorId++}`;
        nodes.push({
          opType: 'Constant', name: `/Constant_${nodeId++}`, input: [], output: [out],
          attribute: [{ name: 'value', type: AT.TENSOR, t: { dims: [], dataType: 1, rawData: new Uint8Array(Float32Array.of(v).buffer) } }],
        });
        return out;
      };
      clipConsts = [c(0), c(6)];
    }
    return node('Clip', name, [x, ...clipConsts]);
  };
  const bn = (x: string, name: string, C: number): string => {
    const p = (role: string, lo: number, hi: number): string => init(`${name}.${role}`, [C], Array.from({ length: C }, () => u(lo, hi)));
    return node('BatchNormalization', name, [x, p('weight', 0.5, 1.5), p('bias', -0.1, 0.1), p('running_mean', -0.1, 0.1), p('running_var', 0.5, 1.5)], [
      float('epsilon', 1e-5), float('momentum', 0.9),
    ]);
  };
  const conv = (x: string, name: string, cin: number, cout: number, k: number, stride: number, group = 1): string => {
    const fanIn = (cin / group) * k * k;
    const s = Math.sqrt(6 / fanIn);
    const w = init(`${name}.weight`, [cout, cin / group, k, k], Array.from({ length: cout * (cin / group) * k * k }, () => u(-s, s)));
    const p = (k - 1) / 2;
    return node('Conv', name, [x, w], [
      ints('dilations', [1, 1]), int('group', group), ints('kernel_shape', [k, k]), ints('pads', [p, p, p, p]), ints('strides', [stride, stride]),
    ]);
  };
  const cbr = (x: string, name: string, cin: number, cout: number, k: number, stride: number, group = 1, act = true): string => {
    const y = bn(conv(x, `${name}/conv`, cin, cout, k, stride, group), `${name}/bn`, cout);
    return act ? clip(y, `${name}/relu6`) : y;
  };
  const block = (x: string, name: string, cin: number, cout: number, t: number, stride: number): string => {
    const hidden = cin * t;
    let y = t === 1 ? x : cbr(x, `${name}/expand`, cin, hidden, 1, 1);
    y = cbr(y, `${name}/dw`, hidden, hidden, 3, stride, hidden);
    y = cbr(y, `${name}/project`, hidden, cout, 1, 1, 1, false);
    return stride === 1 && cin === cout ? node('Add', `${name}/add`, [x, y]) : y;
  };

  let x = cbr('input.1', 'features.0', 3, 16, 3, 2);
  x = block(x, 'features.1', 16, 8, 1, 1);
  x = block(x, 'features.2', 8, 16, 6, 2);
  x = block(x, 'features.3', 16, 16, 6, 1);
  x = cbr(x, 'features.4', 16, 64, 1, 1);
  x = node('GlobalAveragePool', 'pool', [x]);
  if (o.opset === 10) {
    inits.push({ name: 'flat_shape', dims: [2], dataType: onnx.TensorProto.DataType.INT64, int64Data: [1, -1] });
    x = node('Reshape', 'flatten', [x, 'flat_shape']);
  } else {
    x = node('Flatten', 'flatten', [x], [int('axis', 1)]);
  }
  const classes = 10;
  const gw = init('classifier.1.weight', [classes, 64], Array.from({ length: classes * 64 }, () => u(-0.3, 0.3)));
  nodes.push({
    opType: 'Gemm', name: '/classifier/classifier.1/Gemm', input: [x, gw, 'classifier.1.bias'], output: ['logits'],
    attribute: [float('alpha', 1), float('beta', 1), int('transB', 1)],
  });

  const dim = (v: number | string) => (typeof v === 'number' ? { dimValue: v } : { dimParam: v });
  const graph = onnx.GraphProto.encode({
    name: 'main_graph',
    node: nodes,
    initializer: inits,
    input: [
      { name: 'input.1', type: { tensorType: { elemType: 1, shape: { dim: [dim('batch_size'), dim(3), dim(o.H), dim(o.W)] } } } },
      // Old exporters (keep_initializers_as_inputs) also list every initializer as a graph input.
      ...(o.opset === 10
        ? inits.map((t) => {
            const { name, dims, dataType } = t as { name: string; dims: number[]; dataType: number };
            return { name, type: { tensorType: { elemType: dataType, shape: { dim: dims.map(dim) } } } };
          })
        : []),
    ],
    output: [{ name: 'logits', type: { tensorType: { elemType: 1, shape: { dim: [dim('batch_size'), dim(classes)] } } } }],
  } as never).finish();
  // The Gemm bias as unpacked float_data (field 4, wire type 5 per value), written by hand:
  // TensorProto { dims: [10], data_type: FLOAT, name, float_data: ... } appended as one more
  // initializer (repeated fields of concatenated messages merge).
  const bias: number[] = [0x08, ...varint(classes), 0x10, 0x01];
  const name = new TextEncoder().encode('classifier.1.bias');
  bias.push(0x42, ...varint(name.length), ...name);
  for (let i = 0; i < classes; i++) bias.push(0x25, ...new Uint8Array(Float32Array.of(u(-0.5, 0.5)).buffer));
  const fullGraph = concatBytes([graph, lenField(5, Uint8Array.from(bias))]);
  const head = onnx.ModelProto.encode({ irVersion: o.opset === 10 ? 5 : 7, producerName: 'pytorch', producerVersion: '2.1.0' } as never).finish();
  const tail = onnx.ModelProto.encode({ opsetImport: [{ domain: '', version: o.opset }] } as never).finish();
  return concatBytes([head, lenField(7, fullGraph), tail]);
}

describe('importOnnx: a PyTorch-style model (NCHW, unfolded BatchNormalization, Clip, group Conv, Gemm transB=1)', () => {
  for (const opset of [13, 10] as const) {
    it(`opset ${opset}: our run() on NHWC equals onnxruntime-node on NCHW (<= 1e-4 relative)`, async () => {
      const H = 48;
      const W = 40;
      const bytes = foreignModel({ opset, H, W, seed: 2024 + opset });
      expect(looksLikeOnnx(bytes)).toBe(true);

      const src = importOnnx(bytes);
      expect(src.desc.inputShape).toEqual([1, H, W, 3]);
      const ops = src.desc.layers.map((l) => l.op);
      expect(ops.filter((op) => op === 'depthwise')).toHaveLength(3);
      expect(ops.filter((op) => op === 'add')).toHaveLength(1);
      expect(ops.slice(-2)).toEqual(['globalAvgPool', 'dense']);
      const convs = src.desc.layers.filter((l) => l.op === 'conv2d' || l.op === 'depthwise');
      expect(convs.every((l) => 'batchNorm' in l && l.batchNorm !== undefined)).toBe(true);
      expect(convs.filter((l) => 'activation' in l && l.activation === 'relu6')).toHaveLength(convs.length - 3); // 3 projections are linear
      expect(src.desc.meta?.onnx_source).toContain('NCHW');

      const xNchw = seeded(3 * H * W, 77, -1, 1);
      const theirs = await runOrt(bytes, { 'input.1': { data: xNchw, dims: [1, 3, H, W] } });
      expect(theirs.dims).toEqual([1, 10]);
      const ours = await runOurs(bytes, toNhwc(xNchw, 3, H, W));
      const d = maxRelDiff(ours, theirs.data);
      let scale = 0;
      for (const v of theirs.data) scale = Math.max(scale, Math.abs(v));
      console.log(`PyTorch-style opset ${opset} (${bytes.length} bytes): max rel diff ${d.toExponential(2)}, |logits| up to ${scale.toFixed(2)}`);
      expect(scale).toBeGreaterThan(0.1); // not a degenerate all-zero comparison
      expect(d).toBeLessThanOrEqual(1e-4);
    });
  }
});

/**
 * A tf2onnx/Keras-style network: NHWC input [1,H,W,3] then Transpose(0,3,1,2), a zero Pad
 * (Keras ZeroPadding2D) before an unpadded stride-2 Conv, Relu, a depthwise Conv with
 * auto_pad=SAME_UPPER and Clip bounds as initializers, a 1x1 Conv without bias followed by
 * Add of a [1,C,1,1] constant, ReduceMean over H,W, MatMul + Add, Softmax.
 */
function kerasStyleModel(opset: 13 | 18, H: number, W: number, seed: number, reversed = false): Uint8Array {
  const rand = mulberry32(seed);
  const u = (lo: number, hi: number): number => lo + (hi - lo) * rand();
  const f32 = (name: string, dims: number[], lo: number, hi: number) => ({
    name, dims, dataType: 1, rawData: new Uint8Array(Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => u(lo, hi)).buffer),
  });
  const i64 = (name: string, values: number[]) => ({ name, dims: [values.length], dataType: 7, int64Data: values });
  const scalar = (name: string, v: number) => ({ name, dims: [], dataType: 1, floatData: [v] });
  const n = (opType: string, name: string, input: string[], output: string, attribute: Attr[] = []) => ({ opType, name, input, output: [output], attribute });
  const C1 = 8;
  const C2 = 24;
  const K = 6;
  const nodes = [
    n('Transpose', 'to_nchw', ['image'], 't', [ints('perm', [0, 3, 1, 2])]),
    n('Pad', 'zero_pad', ['t', 'pads'], 'p'),
    n('Conv', 'conv1', ['p', 'w1', 'b1'], 'c1', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2])]),
    n('Relu', 'conv1_relu', ['c1'], 'r1'),
    { opType: 'Conv', name: 'dw', input: ['r1', 'wdw', 'bdw'], output: ['c2'], attribute: [int('group', C1), ints('kernel_shape', [3, 3]), { name: 'auto_pad', type: AT.STRING, s: new TextEncoder().encode('SAME_UPPER') }] },
    n('Clip', 'dw_relu6', ['c2', 'zero', 'six'], 'r2'),
    n('Conv', 'pw', ['r2', 'wpw'], 'c3', [ints('kernel_shape', [1, 1])]),
    n('Add', 'pw_bias', ['c3', 'bpw'], 'c3b'),
    n('Relu', 'pw_relu', ['c3b'], 'r3'),
    opset >= 18 ? n('ReduceMean', 'gap', ['r3', 'axes'], 'g', [int('keepdims', 0)]) : n('ReduceMean', 'gap', ['r3'], 'g', [ints('axes', [2, 3]), int('keepdims', 0)]),
    n('MatMul', 'fc', ['g', 'wfc'], 'm'),
    n('Add', 'fc_bias', ['m', 'bfc'], 'logits'),
    n('Softmax', 'probs', ['logits'], 'probs', [int('axis', -1)]),
  ];
  const inits = [
    i64('pads', [0, 0, 0, 0, 0, 0, 1, 1]),
    f32('w1', [C1, 3, 3, 3], -0.5, 0.5), f32('b1', [C1], -0.1, 0.1),
    f32('wdw', [C1, 1, 3, 3], -0.6, 0.6), f32('bdw', [C1], -0.1, 0.1), scalar('zero', 0), scalar('six', 6),
    f32('wpw', [C2, C1, 1, 1], -0.5, 0.5), f32('bpw', [1, C2, 1, 1], -0.1, 0.1),
    f32('wfc', [C2, K], -1, 1), f32('bfc', [K], -0.2, 0.2),
    ...(opset >= 18 ? [i64('axes', [2, 3])] : []),
  ];
  const vi = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  return onnx.ModelProto.encode({
    irVersion: opset >= 18 ? 8 : 7,
    producerName: 'tf2onnx',
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'keras', node: reversed ? [...nodes].reverse() : nodes, initializer: inits, input: [vi('image', [1, H, W, 3])], output: [vi('probs', [1, K])] },
  } as never).finish();
}

describe('importOnnx: a tf2onnx/Keras-style model (NHWC input, Pad, SAME_UPPER, bias Add, ReduceMean, MatMul)', () => {
  for (const opset of [13, 18] as const) {
    it(`opset ${opset}: same probabilities as onnxruntime-node on the same NHWC input`, async () => {
      const [H, W] = [33, 30];
      const bytes = kerasStyleModel(opset, H, W, 7 + opset);
      const src = importOnnx(bytes);
      expect(src.desc.layers.map((l) => l.op)).toEqual(['conv2d', 'depthwise', 'conv2d', 'globalAvgPool', 'dense', 'softmax']);
      const [conv1, dw, pw] = src.desc.layers;
      expect(conv1.op === 'conv2d' && conv1.padding).toEqual({ top: 0, left: 0, bottom: 1, right: 1 });
      expect(dw.op === 'depthwise' && [dw.padding, dw.activation]).toEqual(['same', 'relu6']);
      expect(pw.op === 'conv2d' && [pw.bias !== undefined, pw.activation]).toEqual([true, 'relu']);
      const x = seeded(H * W * 3, 5, 0, 1);
      const theirs = await runOrt(bytes, { image: { data: x, dims: [1, H, W, 3] } });
      const ours = await runOurs(bytes, x);
      const d = maxAbsDiff(ours, theirs.data);
      console.log(`tf2onnx-style opset ${opset}: max abs diff ${d.toExponential(2)} (probabilities ${Array.from(theirs.data, (v) => v.toFixed(3)).join(' ')})`);
      expect(d).toBeLessThanOrEqual(1e-5);
    });
  }

  it('nodes out of topological order are sorted first', async () => {
    const [H, W] = [33, 30];
    const sorted = kerasStyleModel(13, H, W, 20);
    const shuffled = kerasStyleModel(13, H, W, 20, true);
    expect(importOnnx(shuffled).desc.layers.map((l) => l.name)).toEqual(importOnnx(sorted).desc.layers.map((l) => l.name));
    const x = seeded(H * W * 3, 6, 0, 1);
    expect(maxAbsDiff(await runOurs(shuffled, x), await runOurs(sorted, x))).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------
// (3) Unsupported operators and structures

/** A graph input [1,3,32,32] and the given nodes/initializers, written with onnx-proto. */
function smallGraph(nodes: object[], inits: object[], output: string, opset = 13): Uint8Array {
  const vi = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  return onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'g', node: nodes, initializer: inits, input: [vi('x', [1, 3, 32, 32])], output: [vi(output, [1, 8, 16, 16])] },
  } as never).finish();
}

const convNode = (input: string, output: string, name: string, wName: string, extra: Attr[] = []) => ({
  opType: 'Conv', name, input: [input, wName], output: [output],
  attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ...extra],
});
const weight = (name: string, dims: number[]) => ({
  name, dims, dataType: 1, rawData: new Uint8Array(new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.01).buffer),
});

describe('importOnnx: unsupported models', () => {
  it('names every unsupported operator type and its nodes, all at once', async () => {
    const bytes = smallGraph(
      [
        convNode('x', 'c', 'stem', 'w'),
        { opType: 'MaxPool', name: 'pool1', input: ['c'], output: ['p'], attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])] },
        { opType: 'Sigmoid', name: 'gate_a', input: ['p'], output: ['s1'] },
        { opType: 'Sigmoid', name: 'gate_b', input: ['s1'], output: ['s2'] },
        { opType: 'HardSwish', name: '', input: ['s2'], output: ['y'] },
      ],
      [weight('w', [8, 3, 3, 3])],
      'y',
    );
    const e = await errorOf(load(bytes));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    const msg = (e as Error).message;
    console.log(msg);
    for (const s of ['MaxPool', '"pool1"', 'Sigmoid', '"gate_a"', '"gate_b"', 'HardSwish', '#4']) expect(msg).toContain(s);
    expect(msg).not.toMatch(/\bConv \(/);
  });

  it('refuses unsupported structures with a message naming the node', () => {
    // A grouped (not depthwise) convolution.
    const grouped = smallGraph([convNode('x', 'y', 'grouped', 'w', [int('group', 3)])], [weight('w', [6, 1, 3, 3])], 'y');
    expect(() => importOnnx(grouped)).toThrow(/"grouped".*group=3/);
    // ReLU after an Add: no standalone activation layer.
    const reluAfterAdd = smallGraph(
      [
        convNode('x', 'a', 'c1', 'w'),
        convNode('x', 'b', 'c2', 'w'),
        { opType: 'Add', name: 'sum', input: ['a', 'b'], output: ['s'] },
        { opType: 'Relu', name: 'act', input: ['s'], output: ['y'] },
      ],
      [weight('w', [8, 3, 3, 3])],
      'y',
    );
    expect(() => importOnnx(reluAfterAdd)).toThrow(UnsupportedModelError);
    expect(() => importOnnx(reluAfterAdd)).toThrow(/"act"/);
    // Clip bounds that are not ReLU6.
    const clip = smallGraph(
      [convNode('x', 'a', 'c1', 'w'), { opType: 'Clip', name: 'clip4', input: ['a'], output: ['y'], attribute: [float('min', 0), float('max', 4)] }],
      [weight('w', [8, 3, 3, 3])],
      'y',
      10,
    );
    expect(() => importOnnx(clip)).toThrow(/"clip4".*max=4/);
  });

  it('external data is refused with ModelFormatError', () => {
    const bytes = smallGraph(
      [convNode('x', 'y', 'stem', 'w')],
      [{ name: 'w', dims: [8, 3, 3, 3], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: 'weights.bin' }] }],
      'y',
    );
    expect(() => importOnnx(bytes)).toThrow(ModelFormatError);
    expect(() => importOnnx(bytes)).toThrow(/external.*weights\.bin/);
  });
});

// ---------------------------------------------------------------------------------------
// (4) Truncated and corrupt bytes

/** The top-level fields of a ModelProto (a test-side walker, independent of src/onnx/import.ts). */
function topLevelFields(b: Uint8Array): { field: number; lengthAt: number; payloadAt: number; end: number }[] {
  const out: { field: number; lengthAt: number; payloadAt: number; end: number }[] = [];
  let at = 0;
  const readVarint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const x = b[at++];
      v += (x & 0x7f) * mul;
      mul *= 128;
      if (x < 0x80) return v;
    }
  };
  while (at < b.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    if (key % 8 === 0) {
      readVarint();
      continue;
    }
    const lengthAt = at;
    const n = readVarint();
    out.push({ field, lengthAt, payloadAt: at, end: at + n });
    at += n;
  }
  return out;
}

describe('importOnnx: truncated or corrupt bytes fail with ModelFormatError only', () => {
  const src = mobilenetV1({ alpha: 0.25, inputSize: 32, classes: 3, seed: 1 });
  const bytes = exportOnnx(src);
  // Our exporter writes ir_version, producer, doc_string, then the graph (~all of the file),
  // then opset_import and metadata_props. Cut anywhere before the end of the graph, the file
  // cannot be read; cut between two trailing metadata entries it is a valid, shorter ModelProto.
  const fields = topLevelFields(bytes);
  const graphField = fields.find((f) => f.field === 7);
  if (!graphField) throw new Error('no graph field');
  const graphEnd = graphField.end;

  it('every truncation inside the graph -> ModelFormatError; load() rejects the same way', async () => {
    const rand = mulberry32(5);
    const cuts = new Set<number>();
    for (let i = 0; i < 200; i++) cuts.add(i);
    for (let i = 0; i < 300; i++) cuts.add(Math.floor(rand() * graphEnd));
    for (const cut of cuts) {
      let err: unknown;
      try {
        importOnnx(bytes.subarray(0, cut));
      } catch (e) {
        err = e;
      }
      if (!(err instanceof ModelFormatError)) throw new Error(`cut at ${cut}: expected ModelFormatError, got ${String(err)}`);
    }
    for (const cut of [1, 2, 10, 1000, graphEnd]) {
      expect(await errorOf(load(bytes.subarray(0, cut)))).toBeInstanceOf(ModelFormatError);
    }
    // Trailing cuts: either a shorter valid file or ModelFormatError, never anything else.
    for (let cut = graphEnd; cut < bytes.length; cut++) {
      try {
        importOnnx(bytes.subarray(0, cut));
      } catch (e) {
        if (!(e instanceof ModelFormatError)) throw new Error(`cut at ${cut}: ${String(e)}`);
      }
    }
  });

  it('random byte corruption -> a typed error (ModelFormatError for broken encoding) or a model, never anything else', () => {
    const rand = mulberry32(11);
    let formatErrors = 0;
    for (let trial = 0; trial < 400; trial++) {
      const b = bytes.slice();
      // Mostly the structure before the weights, where corruption breaks the encoding.
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips; k++) {
        const at = rand() < 0.7 ? Math.floor(rand() * Math.min(b.length, 4000)) : Math.floor(rand() * b.length);
        b[at] = Math.floor(rand() * 256);
      }
      try {
        importOnnx(b);
      } catch (e) {
        // A flipped op_type byte may legitimately give "unsupported operator".
        if (!(e instanceof MobileNetWasmError)) throw new Error(`trial ${trial}: ${String(e)}`);
        if (e instanceof ModelFormatError) formatErrors++;
      }
    }
    expect(formatErrors).toBeGreaterThan(50);
  });

  it('specific corruptions: huge length, bad wire type, group tags, garbage after the header', () => {
    // A length prefix pointing far past the end (the graph field's length).
    // (the graph's length varint is rewritten in place with the same byte count, all 0xff but the last)
    const huge = bytes.slice();
    for (let i = graphField.lengthAt; i < graphField.payloadAt - 1; i++) huge[i] = 0xff;
    huge[graphField.payloadAt - 1] = 0x7f;
    expect(() => importOnnx(huge)).toThrow(ModelFormatError);
    expect(() => importOnnx(Uint8Array.from([0x08, 0x07, 0x3b]))).toThrow(ModelFormatError); // field 7, wire type 3 (group)
    expect(() => importOnnx(Uint8Array.from([0x08, 0x07, 0x12, 0x05, 0x61]))).toThrow(/truncated|runs past/);
    expect(() => importOnnx(Uint8Array.from([0x08, 0x07, 0x3a, 0x00]))).toThrow(ModelFormatError); // empty graph
    expect(() => importOnnx(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow(ModelFormatError);
    expect(() => importOnnx(new Uint8Array(0))).toThrow(ModelFormatError);
  });

  it('other foreign files keep their .mnw error', async () => {
    const json = new TextEncoder().encode('{"modelTopology": {}}');
    const e = await errorOf(load(json));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as Error).message).toMatch(/looks like JSON/);
    expect(looksLikeOnnx(json)).toBe(false);
    expect(looksLikeOnnx(Uint8Array.from([0x08, 0x07, 0x99]))).toBe(false);
    const e2 = await errorOf(load(Uint8Array.from([0x08, 0x07, 0x99, 0x01])));
    expect(e2).toBeInstanceOf(ModelFormatError);
    expect((e2 as Error).message).toMatch(/wrong magic/);
  });
});
