// Writes a model as an ONNX file (ModelProto), so the same weights run in onnxruntime
// (node, web) and any other ONNX consumer. Browser-safe: no node: imports, no Buffer, and
// no runtime dependency: the few protobuf messages needed are encoded by hand below.
//
// The graph (see docs/ONNX.md):
//   input  NHWC float32 [1,H,W,3]  --Transpose(0,3,1,2)-->  NCHW
//   conv2d / depthwise  -> Conv (OIHW weights, batch-norm folded, bias always present,
//                          explicit pads [top,left,bottom,right]; depthwise: group = C)
//   relu6 -> Clip(x, 0, 6) (min/max as initializers), relu -> Relu, linear -> nothing
//   add -> Add, globalAvgPool -> GlobalAveragePool + Flatten(1), dense -> Gemm (+ activation),
//   softmax -> Softmax(axis 1)
//   a 4-D output is transposed back to NHWC (0,2,3,1), so outputs compare 1:1 with run().

import type { Activation, Conv2DLayer, DenseLayer, DepthwiseLayer, LayerDesc, ModelSource } from '../desc.js';
import { InputError } from '../errors.js';
import { dequantize, floatBytes, inferShapes, resolvePadding, validateModel } from '../format.js';
import { foldBatchNorm } from '../pack.js';

export interface ExportOnnxOptions {
  /** ONNX opset of the default domain, 11..23 (default 13). The graph is the same for all. */
  opset?: number;
  /** ModelProto.producer_name (default 'mobilenet-wasm'). */
  producer?: string;
}

export const DEFAULT_OPSET = 13;
/** Clip with min/max as inputs needs opset 11; nothing used here changed semantics up to 23. */
export const MIN_OPSET = 11;
export const MAX_OPSET = 23;

// ---------------------------------------------------------------------------------------
// Protobuf wire format, just what ModelProto needs.
//
// Field numbers from onnx/onnx.proto (proto2; identical in onnx-proto 8.0.1's compiled
// definitions, which test/onnx.test.ts uses to decode what we write):
//   ModelProto        1 ir_version (int64), 2 producer_name, 6 doc_string, 7 graph,
//                     8 opset_import (OperatorSetIdProto), 14 metadata_props (StringStringEntryProto)
//   OperatorSetIdProto 1 domain, 2 version (int64)
//   StringStringEntryProto 1 key, 2 value
//   GraphProto        1 node, 2 name, 5 initializer (TensorProto), 10 doc_string,
//                     11 input, 12 output (ValueInfoProto)
//   NodeProto         1 input, 2 output, 3 name, 4 op_type, 5 attribute (AttributeProto)
//   AttributeProto    1 name, 2 f (float), 3 i (int64), 8 ints (repeated int64), 20 type
//                     (AttributeType: FLOAT 1, INT 2, INTS 7)
//   TensorProto       1 dims (repeated int64), 2 data_type (FLOAT = 1), 8 name,
//                     9 raw_data (little-endian bytes)
//   ValueInfoProto    1 name, 2 type (TypeProto)
//   TypeProto         1 tensor_type (TypeProto.Tensor: 1 elem_type, 2 shape)
//   TensorShapeProto  1 dim (Dimension: 1 dim_value)
// Repeated scalars are written unpacked, as proto2 does by default (parsers accept both).

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

/**
 * A message being written, kept as a list of byte chunks so that nesting a message (and its
 * megabytes of raw_data) costs no copy; `finish()` concatenates once.
 */
class Msg {
  readonly parts: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flush(): void {
    if (this.scratch.length === 0) return;
    this.parts.push(Uint8Array.from(this.scratch));
    this.length += this.scratch.length;
    this.scratch = [];
  }

  private rawVarint(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v)) {
      let n = v;
      while (n >= 0x80) {
        this.scratch.push((n % 0x80) | 0x80);
        n = Math.floor(n / 0x80);
      }
      this.scratch.push(n);
      return;
    }
    // Negative int64: two's complement over 64 bits, always 10 bytes.
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this.scratch.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.scratch.push(Number(n));
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  varint(field: number, v: number): this {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.rawVarint(data.length);
    this.flush();
    if (data.length > 0) {
      this.parts.push(data);
      this.length += data.length;
    }
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  msg(field: number, m: Msg): this {
    m.flush();
    this.tag(field, WIRE_LEN);
    this.rawVarint(m.length);
    this.flush();
    this.parts.push(...m.parts);
    this.length += m.length;
    return this;
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const TENSOR_FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

type AttrValue = { int: number } | { ints: number[] } | { float: number };

function attribute(name: string, value: AttrValue): Msg {
  const a = new Msg().string(1, name);
  if ('int' in value) a.varint(3, value.int).varint(20, ATTR_INT);
  else if ('float' in value) a.float(2, value.float).varint(20, ATTR_FLOAT);
  else {
    for (const v of value.ints) a.varint(8, v);
    a.varint(20, ATTR_INTS);
  }
  return a;
}

function tensorProto(name: string, dims: number[], values: Float32Array): Msg {
  const t = new Msg();
  for (const d of dims) t.varint(1, d);
  return t.varint(2, TENSOR_FLOAT).string(8, name).bytes(9, floatBytes(values));
}

function valueInfo(name: string, shape: number[]): Msg {
  const dims = new Msg();
  for (const d of shape) dims.msg(1, new Msg().varint(1, d));
  const tensorType = new Msg().varint(1, TENSOR_FLOAT).msg(2, dims);
  return new Msg().string(1, name).msg(2, new Msg().msg(1, tensorType));
}

/** IR version released with each opset (onnx/onnx docs/Versioning.md): the lowest that allows it. */
function irVersionFor(opset: number): number {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

// ---------------------------------------------------------------------------------------
// Weight layouts

/** HWIO [kh,kw,I,O] -> OIHW [O,I,kh,kw]. */
function hwioToOihw(w: Float32Array, kh: number, kw: number, I: number, O: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < I; i++) {
        const src = ((y * kw + x) * I + i) * O;
        for (let o = 0; o < O; o++) out[((o * I + i) * kh + y) * kw + x] = w[src + o];
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Graph building

function claim(used: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
  used.add(name);
  return name;
}

class GraphBuilder {
  readonly nodes: Msg[] = [];
  readonly initializers: Msg[] = [];
  /** Tensor names (inputs, outputs, initializers, activations) and node names: two namespaces. */
  private readonly tensorNames = new Set<string>();
  private readonly nodeNames = new Set<string>();

  /** A tensor name not used yet: `base`, else `base_1`, `base_2`, ... */
  unique(base: string): string {
    return claim(this.tensorNames, base);
  }

  reserve(name: string): void {
    this.tensorNames.add(name);
  }

  initializer(base: string, dims: number[], values: Float32Array): string {
    const name = this.unique(base);
    this.initializers.push(tensorProto(name, dims, values));
    return name;
  }

  node(opType: string, name: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): void {
    const n = new Msg();
    for (const i of inputs) n.string(1, i);
    for (const o of outputs) n.string(2, o);
    n.string(3, claim(this.nodeNames, name)).string(4, opType);
    for (const [k, v] of Object.entries(attrs)) n.msg(5, attribute(k, v));
    this.nodes.push(n);
  }
}

/**
 * Encodes a model as ONNX: batch-norm folded, weights dequantized to f32, NCHW inside with an
 * NHWC input named `input` ([1,H,W,3], like Model.run) and an output named `output` (NHWC
 * when 4-D). Validates the model first (ModelFormatError / UnsupportedModelError); throws
 * InputError for an opset outside 11..23.
 */
export function exportOnnx(src: ModelSource, options: ExportOnnxOptions = {}): Uint8Array {
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new InputError(`opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET}, got ${String(options.opset)}`);
  }
  validateModel(src);
  const { desc } = src;
  const shapes = inferShapes(desc);
  const byName = new Map(src.tensors.map((t) => [t.name, t]));
  const get = (name: string): Float32Array => {
    const t = byName.get(name);
    if (!t) throw new Error(`tensor "${name}" vanished after validation`); // unreachable
    return dequantize(t);
  };

  // Only the layers the output depends on: the graph must not carry dead branches.
  const layerByName = new Map(desc.layers.map((l) => [l.name, l]));
  const live = new Set<string>();
  const stack = [desc.output];
  while (stack.length > 0) {
    const name = stack.pop() as string;
    const l = layerByName.get(name);
    if (!l || live.has(name)) continue;
    live.add(name);
    stack.push(...(l.op === 'add' ? l.inputs : [l.input]));
  }

  const g = new GraphBuilder();
  g.reserve('input');
  g.reserve('output');
  /** ONNX tensor holding each desc activation, and whether it is a 4-D (NCHW) map. */
  const tensorOf = new Map<string, { name: string; map: boolean }>();
  const nchw = g.unique(`${desc.input}_nchw`);
  g.node('Transpose', 'input_to_nchw', ['input'], [nchw], { perm: { ints: [0, 3, 1, 2] } });
  tensorOf.set(desc.input, { name: nchw, map: true });

  let clipBounds: [string, string] | undefined;
  const bounds = (): [string, string] =>
    (clipBounds ??= [g.initializer('relu6_min', [], new Float32Array([0])), g.initializer('relu6_max', [], new Float32Array([6]))]);

  const inputOf = (name: string): { name: string; map: boolean } => {
    const t = tensorOf.get(name);
    if (!t) throw new Error(`activation "${name}" not produced yet`); // unreachable: layers are topological
    return t;
  };
  /** A [1,F] view of an activation; a [1,1,1,C] map (NCHW [1,C,1,1]) is flattened. */
  const flat = (layer: string, name: string): string => {
    const t = inputOf(name);
    if (!t.map) return t.name;
    const out = g.unique(`${layer}/flat_input`);
    g.node('Flatten', `${layer}/flatten_input`, [t.name], [out], { axis: { int: 1 } });
    return out;
  };
  /**
   * Name of the tensor holding a layer's activation: the graph output `output` itself when
   * the layer is the model output and a [1,F] vector (a 4-D output gets a Transpose after it).
   */
  const activationName = (layer: LayerDesc, map: boolean): string =>
    layer.name === desc.output && !map ? 'output' : g.unique(layer.name);
  /** Output of a Conv/Gemm: the layer's activation itself when no activation follows. */
  const preName = (layer: Conv2DLayer | DepthwiseLayer | DenseLayer, map: boolean): string =>
    layer.activation === 'linear'
      ? activationName(layer, map)
      : g.unique(`${layer.name}/${layer.op === 'dense' ? 'gemm' : 'conv'}`);
  /** Applies the activation to `pre` and records the result as the layer's activation. */
  const finishLayer = (layer: LayerDesc, pre: string, act: Activation, map: boolean): void => {
    let out = pre;
    if (act !== 'linear') {
      out = activationName(layer, map);
      if (act === 'relu6') g.node('Clip', `${layer.name}/relu6`, [pre, ...bounds()], [out]);
      else g.node('Relu', `${layer.name}/relu`, [pre], [out]);
    }
    tensorOf.set(layer.name, { name: out, map });
  };

  for (const layer of desc.layers) {
    if (!live.has(layer.name)) continue;
    switch (layer.op) {
      case 'conv2d':
      case 'depthwise': {
        const pre = preName(layer, true);
        emitConv(g, layer, shapes, get, inputOf(layer.input).name, pre);
        finishLayer(layer, pre, layer.activation, true);
        break;
      }
      case 'add': {
        const out = activationName(layer, inputOf(layer.inputs[0]).map);
        g.node('Add', layer.name, layer.inputs.map((i) => inputOf(i).name), [out]);
        tensorOf.set(layer.name, { name: out, map: inputOf(layer.inputs[0]).map });
        break;
      }
      case 'globalAvgPool': {
        const pooled = g.unique(`${layer.name}/pooled`);
        g.node('GlobalAveragePool', `${layer.name}/pool`, [inputOf(layer.input).name], [pooled]);
        const out = activationName(layer, false);
        g.node('Flatten', `${layer.name}/flatten`, [pooled], [out], { axis: { int: 1 } });
        tensorOf.set(layer.name, { name: out, map: false });
        break;
      }
      case 'dense': {
        const input = flat(layer.name, layer.input);
        const pre = preName(layer, false);
        emitDense(g, layer, get, input, pre);
        finishLayer(layer, pre, layer.activation, false);
        break;
      }
      case 'softmax': {
        const out = activationName(layer, false);
        g.node('Softmax', layer.name, [flat(layer.name, layer.input)], [out], { axis: { int: 1 } });
        tensorOf.set(layer.name, { name: out, map: false });
        break;
      }
    }
  }

  const result = inputOf(desc.output);
  const outShape = shapes.get(desc.output) as number[];
  if (result.map) {
    g.node('Transpose', 'output_to_nhwc', [result.name], ['output'], { perm: { ints: [0, 2, 3, 1] } });
  }

  const graph = new Msg();
  for (const n of g.nodes) graph.msg(1, n);
  graph.string(2, desc.family || 'mobilenet');
  for (const t of g.initializers) graph.msg(5, t);
  graph.string(10, `${desc.family}: input NHWC float32 [${desc.inputShape.join(',')}], output [${outShape.join(',')}]`);
  graph.msg(11, valueInfo('input', [...desc.inputShape]));
  graph.msg(12, valueInfo('output', outShape));

  const model = new Msg()
    .varint(1, irVersionFor(opset))
    .string(2, options.producer ?? 'mobilenet-wasm')
    .string(6, docString(src))
    .msg(7, graph)
    .msg(8, new Msg().string(1, '').varint(2, opset));
  for (const [key, value] of metadata(src)) model.msg(14, new Msg().string(1, key).string(2, value));
  return model.finish();
}

function emitConv(
  g: GraphBuilder,
  layer: Conv2DLayer | DepthwiseLayer,
  shapes: Map<string, number[]>,
  get: (name: string) => Float32Array,
  input: string,
  output: string,
): void {
  const [kh, kw] = layer.kernel;
  const depthwise = layer.op === 'depthwise';
  const inC = depthwise ? layer.channels : layer.inChannels;
  const outC = depthwise ? layer.channels : layer.outChannels;
  const folded = foldBatchNorm(get(layer.weights), layer.bias ? get(layer.bias) : undefined, outC, layer.batchNorm, get);
  // Depthwise [kh,kw,C,1] is HWIO with I = C, O = 1 read as "O = C, I = 1": reorder to [C,1,kh,kw].
  const w = depthwise ? hwioToOihw(folded.w, kh, kw, 1, outC) : hwioToOihw(folded.w, kh, kw, inC, outC);
  const W = g.initializer(`${layer.name}/W`, [outC, depthwise ? 1 : inC, kh, kw], w);
  const B = g.initializer(`${layer.name}/B`, [outC], folded.b);
  const [, H, Wd] = shapes.get(layer.input) as number[];
  const p = resolvePadding(layer.padding, H, Wd, kh, kw, layer.stride);
  g.node('Conv', layer.name, [input, W, B], [output], {
    dilations: { ints: [1, 1] },
    group: { int: depthwise ? outC : 1 },
    kernel_shape: { ints: [kh, kw] },
    pads: { ints: [p.top, p.left, p.bottom, p.right] },
    strides: { ints: [layer.stride, layer.stride] },
  });
}

function emitDense(
  g: GraphBuilder,
  layer: DenseLayer,
  get: (name: string) => Float32Array,
  input: string,
  output: string,
): void {
  const W = g.initializer(`${layer.name}/W`, [layer.inFeatures, layer.outFeatures], get(layer.weights));
  const bias = layer.bias ? get(layer.bias) : new Float32Array(layer.outFeatures);
  const B = g.initializer(`${layer.name}/B`, [layer.outFeatures], bias);
  g.node('Gemm', layer.name, [input, W, B], [output], {
    alpha: { float: 1 },
    beta: { float: 1 },
    transA: { int: 0 },
    transB: { int: 0 },
  });
}

function docString(src: ModelSource): string {
  const d = src.desc;
  const lines = [
    `${d.family} exported by mobilenet-wasm (batch-norm folded, weights dequantized to float32).`,
    `Input "input": NHWC float32 [${d.inputShape.join(', ')}], the layout of mobilenet-wasm's Model.run().`,
  ];
  if (d.preprocess) {
    lines.push(`Preprocessing: resize ${d.preprocess.resize} (alignCorners ${d.preprocess.alignCorners}), then x * ${d.preprocess.scale} + ${d.preprocess.offset} on pixels in [0, 255].`);
  }
  if (d.labels) lines.push(`Labels: ${d.labels.join(', ')}.`);
  for (const [k, v] of Object.entries(d.meta ?? {})) lines.push(`${k}: ${v}`);
  return lines.join('\n');
}

/** metadata_props: our keys first; a desc.meta key that would collide gets a `meta.` prefix. */
function metadata(src: ModelSource): [string, string][] {
  const d = src.desc;
  const out = new Map<string, string>([
    ['family', d.family],
    ['input_layout', 'NHWC'],
    ['input_shape', JSON.stringify(d.inputShape)],
    ['exported_by', 'mobilenet-wasm'],
  ]);
  if (d.labels) out.set('labels', JSON.stringify(d.labels));
  if (d.preprocess) out.set('preprocess', JSON.stringify(d.preprocess));
  for (const [k, v] of Object.entries(d.meta ?? {})) {
    let key = out.has(k) ? `meta.${k}` : k;
    for (let i = 1; out.has(key); i++) key = `meta.${k}_${i}`;
    out.set(key, v);
  }
  return [...out];
}
