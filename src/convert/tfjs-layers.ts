// Converter from a TF.js layers model (Keras JSON topology + weights manifest) to a
// ModelSource. Keras splits what we run as one fused layer (conv, batch-norm, ReLU) into
// several layers, so the work here is mostly folding: each Keras layer's output is mapped
// to the description layer whose activation equals it, and batch-norm / activations are
// merged into their producer only when nothing else reads the unfolded value.
// Browser-safe: no node: imports (node.ts does the file reading).

import type {
  Activation,
  Conv2DLayer,
  DenseLayer,
  DepthwiseLayer,
  LayerDesc,
  ModelDesc,
  ModelSource,
  Padding,
  Preprocess,
  StoredTensor,
} from '../desc.js';
import { ModelFormatError, UnsupportedModelError, typedErrors } from '../errors.js';
import { layerOutputShape, validateModel, show } from '../format.js';

export interface ConvertOptions {
  labels?: string[];
  preprocess?: Preprocess;
  /** Merged over the converter's own provenance entries. */
  meta?: Record<string, string>;
  /** Overrides the family guessed from layer names. */
  family?: string;
}

/** Keras layer classes this converter understands; anything else is reported up front. */
const SUPPORTED_CLASSES = new Set([
  'InputLayer',
  'ZeroPadding2D',
  'Conv2D',
  'DepthwiseConv2D',
  'BatchNormalization',
  'ReLU',
  'Activation',
  'Softmax',
  'Add',
  'GlobalAveragePooling2D',
  'AveragePooling2D',
  'Flatten',
  'Dense',
  'Dropout',
  'SpatialDropout2D',
]);

/** Layers that are the identity at inference time. */
const IDENTITY_CLASSES = new Set(['Dropout', 'SpatialDropout2D']);

type Json = Record<string, unknown>;

interface KerasLayer {
  name: string;
  className: string;
  config: Json;
  /** Names of the Keras layers feeding this one, in order. */
  inputs: string[];
}

interface Pads {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** What a Keras layer's output is in the description being built. */
type Lowered = { kind: 'act'; name: string } | { kind: 'pad'; source: string; pads: Pads };

/**
 * Converts a parsed TF.js layers `model.json` and its weight bytes (all shards
 * concatenated in manifest order). Stored dtypes are kept: uint8-quantized weights stay
 * `u8` with their scale/min, float16 stays `f16`.
 */
export function convertTfjsLayers(modelJson: unknown, weightData: Uint8Array, options: ConvertOptions = {}): ModelSource {
  return typedErrors(() => convertUnchecked(modelJson, weightData, options));
}

function convertUnchecked(modelJson: unknown, weightData: Uint8Array, options: ConvertOptions): ModelSource {
  if (!isJson(modelJson)) throw new ModelFormatError('model.json must be an object');
  const weights = readManifest(modelJson.weightsManifest, weightData);
  const topology = readTopology(modelJson.modelTopology);
  const builder = new GraphBuilder(topology, weights);
  const desc: ModelDesc = {
    family: options.family ?? guessFamily(topology.layers),
    input: 'input',
    inputShape: builder.inputShape,
    layers: builder.layers,
    output: builder.output,
  };
  if (options.labels) desc.labels = [...options.labels];
  if (options.preprocess) desc.preprocess = { ...options.preprocess };
  desc.meta = { converted_from: describeSource(modelJson.modelTopology), ...options.meta };
  const src: ModelSource = { desc, tensors: builder.tensors() };
  validateModel(src);
  return src;
}

// ---------------------------------------------------------------------------------------
// Weights manifest

interface ManifestWeight {
  name: string;
  shape: number[];
  offset: number;
  byteLength: number;
  /** Float storage dtype of the TF.js weight, before any quantization. */
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

class WeightTable {
  constructor(
    private readonly byName: Map<string, ManifestWeight>,
    private readonly data: Uint8Array,
  ) {}

  /**
   * Manifest name of `<layer>/<weight>`. Keras sometimes scopes names under a model
   * prefix ("model_1/Conv1/kernel"), hence the suffix match when the plain name is absent.
   */
  resolve(layer: string, weight: string): string {
    const plain = `${layer}/${weight}`;
    if (this.byName.has(plain)) return plain;
    const scoped = [...this.byName.keys()].filter((n) => n.endsWith(`/${plain}`));
    if (scoped.length === 1) return scoped[0];
    throw new ModelFormatError(`weight "${plain}" of Keras layer "${layer}" is not in the weights manifest`);
  }

  stored(name: string): StoredTensor {
    const w = this.byName.get(name);
    if (!w) throw new ModelFormatError(`weight "${name}" is not in the weights manifest`);
    const bytes = this.data.slice(w.offset, w.offset + w.byteLength);
    const q = w.quantization;
    if (q?.dtype === 'uint8') return { name, shape: w.shape, dtype: 'u8', data: bytes, scale: q.scale, min: q.min };
    if (q?.dtype === 'float16') return { name, shape: w.shape, dtype: 'f16', data: bytes };
    if (q?.dtype === 'uint16') return { name, shape: w.shape, dtype: 'f32', data: dequantizeUint16(bytes, q) };
    return { name, shape: w.shape, dtype: 'f32', data: bytes };
  }
}

const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

function readManifest(manifest: unknown, data: Uint8Array): WeightTable {
  if (!Array.isArray(manifest)) throw new ModelFormatError('model.json has no "weightsManifest" array');
  const byName = new Map<string, ManifestWeight>();
  let offset = 0;
  for (const group of manifest) {
    if (!isJson(group) || !Array.isArray(group.weights)) throw new ModelFormatError('weightsManifest group without "weights"');
    for (const raw of group.weights) {
      const w = readManifestWeight(raw, offset);
      if (byName.has(w.name)) throw new ModelFormatError(`weight "${w.name}" appears twice in the manifest`);
      byName.set(w.name, w);
      offset += w.byteLength;
    }
  }
  if (offset > data.byteLength) {
    throw new ModelFormatError(`weight data is ${data.byteLength} bytes but the manifest describes ${offset} (missing shard?)`);
  }
  return new WeightTable(byName, data);
}

function readManifestWeight(raw: unknown, offset: number): ManifestWeight {
  if (!isJson(raw) || typeof raw.name !== 'string' || !isIntArray(raw.shape) || typeof raw.dtype !== 'string') {
    throw new ModelFormatError(`malformed weightsManifest entry ${show(raw, 200)}`);
  }
  const count = raw.shape.reduce((a, b) => a * b, 1);
  const q = raw.quantization;
  if (q !== undefined) {
    if (!isJson(q) || typeof q.dtype !== 'string' || !(q.dtype in QUANT_BYTES)) {
      throw new UnsupportedModelError(`weight "${raw.name}": quantization ${show(q)} is not supported`);
    }
    if (q.dtype !== 'float16' && !(isFiniteNum(q.scale) && isFiniteNum(q.min))) {
      throw new ModelFormatError(`weight "${raw.name}": ${q.dtype} quantization needs finite scale and min`);
    }
    if (raw.dtype !== 'float32') throw new UnsupportedModelError(`weight "${raw.name}": quantized ${raw.dtype} is not supported`);
    const quantization = { dtype: q.dtype, scale: q.scale as number | undefined, min: q.min as number | undefined };
    return { name: raw.name, shape: raw.shape, offset, byteLength: count * QUANT_BYTES[q.dtype], dtype: raw.dtype, quantization };
  }
  if (!(raw.dtype in DTYPE_BYTES)) {
    // String tensors have a variable length: nothing after them could be located.
    throw new UnsupportedModelError(`weight "${raw.name}": dtype ${raw.dtype} is not supported`);
  }
  return { name: raw.name, shape: raw.shape, offset, byteLength: count * DTYPE_BYTES[raw.dtype], dtype: raw.dtype };
}

/** uint16 affine quantization has no stored equivalent here; f32 is exact for it. */
function dequantizeUint16(bytes: Uint8Array, q: { scale?: number; min?: number }): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new DataView(new ArrayBuffer(bytes.byteLength * 2));
  for (let i = 0; i < bytes.byteLength / 2; i++) {
    out.setFloat32(4 * i, view.getUint16(2 * i, true) * (q.scale as number) + (q.min as number), true);
  }
  return new Uint8Array(out.buffer);
}

// ---------------------------------------------------------------------------------------
// Topology

interface Topology {
  layers: KerasLayer[];
  output: string;
}

function readTopology(raw: unknown): Topology {
  if (!isJson(raw)) throw new ModelFormatError('model.json has no "modelTopology" object');
  // Keras-converted files wrap the model in model_config; TF.js's own save() does not.
  const model = isJson(raw.model_config) ? raw.model_config : raw;
  const className = model.class_name;
  if (className === 'Sequential') return readSequential(model.config);
  if (className === 'Model' || className === 'Functional') return readFunctional(model.config);
  throw new UnsupportedModelError(`Keras model class ${show(className)} is not supported (Model, Functional or Sequential)`);
}

function readFunctional(config: unknown): Topology {
  if (!isJson(config) || !Array.isArray(config.layers)) throw new ModelFormatError('model_config.config.layers is missing');
  const layers = config.layers.map((raw) => {
    const l = readLayerHeader(raw);
    return { ...l, inputs: inboundNames(l.name, (raw as Json).inbound_nodes) };
  });
  const outputs = refNames(config.output_layers);
  if (outputs.length > 1) throw new UnsupportedModelError(`models with several outputs are not supported (${outputs.join(', ')})`);
  const output = outputs[0] ?? layers[layers.length - 1]?.name;
  if (output === undefined) throw new ModelFormatError('the Keras model has no layers');
  return { layers, output };
}

function readSequential(config: unknown): Topology {
  // Old Keras stored a Sequential config as the bare layer list.
  const list = Array.isArray(config) ? config : isJson(config) ? config.layers : undefined;
  if (!Array.isArray(list) || list.length === 0) throw new ModelFormatError('Sequential model without layers');
  const layers: KerasLayer[] = [];
  const first = readLayerHeader(list[0]);
  if (first.className !== 'InputLayer') {
    // The input is implied by the first layer's batch_input_shape.
    layers.push({ name: '__input__', className: 'InputLayer', config: first.config, inputs: [] });
  }
  for (const raw of list) {
    const l = readLayerHeader(raw);
    const prev = layers[layers.length - 1];
    layers.push({ ...l, inputs: prev ? [prev.name] : [] });
  }
  return { layers, output: layers[layers.length - 1].name };
}

function readLayerHeader(raw: unknown): Omit<KerasLayer, 'inputs'> {
  if (!isJson(raw) || typeof raw.class_name !== 'string' || !isJson(raw.config)) {
    throw new ModelFormatError(`malformed Keras layer ${show(raw, 200)}`);
  }
  const name = typeof raw.name === 'string' ? raw.name : raw.config.name;
  if (typeof name !== 'string' || name === '') throw new ModelFormatError(`Keras ${raw.class_name} layer without a name`);
  return { name, className: raw.class_name, config: raw.config };
}

/** Inbound layer names, from Keras 2 (`[[["name", 0, 0, {}], ...]]`) or Keras 3 (keras_history) nodes. */
function inboundNames(layer: string, nodes: unknown): string[] {
  if (nodes === undefined || (Array.isArray(nodes) && nodes.length === 0)) return [];
  if (!Array.isArray(nodes)) throw new ModelFormatError(`Keras layer "${layer}": malformed inbound_nodes`);
  if (nodes.length > 1) throw new UnsupportedModelError(`Keras layer "${layer}" is shared (called ${nodes.length} times); not supported`);
  const node = nodes[0];
  if (Array.isArray(node)) return refNames(node);
  const names: string[] = [];
  collectKerasHistory(node, names);
  return names;
}

/** Names from a list of `[name, nodeIndex, tensorIndex, ...]` references, or from one bare reference. */
function refNames(refs: unknown): string[] {
  if (!Array.isArray(refs)) return [];
  if (typeof refs[0] === 'string') return [refs[0]];
  return refs.flatMap((r) => (Array.isArray(r) && typeof r[0] === 'string' ? [r[0]] : []));
}

function collectKerasHistory(v: unknown, out: string[]): void {
  if (Array.isArray(v)) v.forEach((x) => collectKerasHistory(x, out));
  if (!isJson(v)) return;
  const history = isJson(v.config) ? v.config.keras_history : undefined;
  if (Array.isArray(history) && typeof history[0] === 'string') out.push(history[0]);
  else Object.values(v).forEach((x) => collectKerasHistory(x, out));
}

/** Layers reachable backwards from the output, inputs before users (depth-first post-order). */
function topoOrder(topology: Topology): KerasLayer[] {
  const byName = new Map(topology.layers.map((l) => [l.name, l]));
  const state = new Map<string, 'visiting' | 'done'>();
  const order: KerasLayer[] = [];
  const visit = (name: string, from: string): void => {
    const l = byName.get(name);
    if (!l) throw new ModelFormatError(`Keras layer "${from}" reads unknown layer "${name}"`);
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new ModelFormatError(`the Keras graph has a cycle through "${name}"`);
    state.set(name, 'visiting');
    l.inputs.forEach((i) => visit(i, name));
    state.set(name, 'done');
    order.push(l);
  };
  visit(topology.output, 'output_layers');
  return order;
}

// ---------------------------------------------------------------------------------------
// Lowering Keras layers to LayerDesc

class GraphBuilder {
  readonly layers: LayerDesc[] = [];
  readonly inputShape: [number, number, number, number];
  readonly output: string;
  private readonly lowered = new Map<string, Lowered>();
  private readonly byName = new Map<string, LayerDesc>();
  private readonly shapes = new Map<string, number[]>();
  /** The Keras layer whose output currently equals a description layer's activation. */
  private readonly tip = new Map<string, string>();
  /** Keras consumers of each Keras layer (by name). */
  private readonly consumers = new Map<string, KerasLayer[]>();
  private readonly tensorNames: string[] = [];

  constructor(
    topology: Topology,
    private readonly weights: WeightTable,
  ) {
    const order = topoOrder(topology);
    rejectUnsupportedClasses(order);
    for (const l of order) for (const i of l.inputs) this.consumers.set(i, [...(this.consumersOf(i)), l]);
    const inputs = order.filter((l) => l.className === 'InputLayer');
    if (inputs.length !== 1) {
      throw new UnsupportedModelError(`models need exactly one input, found ${inputs.length} (${inputs.map((l) => l.name).join(', ')})`);
    }
    this.inputShape = readInputShape(inputs[0]);
    this.shapes.set('input', [...this.inputShape]);
    for (const l of order) this.lower(l);
    this.output = this.act(topology.output, 'the model output');
  }

  tensors(): StoredTensor[] {
    return this.tensorNames.map((n) => this.weights.stored(n));
  }

  private consumersOf(name: string): KerasLayer[] {
    return this.consumers.get(name) ?? [];
  }

  private lower(l: KerasLayer): void {
    switch (l.className) {
      case 'InputLayer':
        return this.setAct(l, 'input');
      case 'ZeroPadding2D':
        return this.zeroPadding(l);
      case 'Conv2D':
      case 'DepthwiseConv2D':
        return this.convolution(l);
      case 'BatchNormalization':
        return this.batchNorm(l);
      case 'ReLU':
        return this.activation(l, reluActivation(l));
      case 'Activation':
        return this.activationLayer(l);
      case 'Softmax':
        return this.softmax(l, l.name, this.act(this.single(l), l.name));
      case 'Add':
        return this.add(l);
      case 'GlobalAveragePooling2D':
        return this.globalPool(l, cfgBool(l, 'keepdims', false));
      case 'AveragePooling2D':
        return this.averagePool(l);
      case 'Flatten':
        return this.flatten(l);
      case 'Dense':
        return this.dense(l);
      default:
        if (IDENTITY_CLASSES.has(l.className)) return this.identity(l);
        throw new UnsupportedModelError(`Keras layer "${l.name}" (${l.className}) is not supported`);
    }
  }

  // --- plumbing -------------------------------------------------------------------------

  private single(l: KerasLayer): string {
    if (l.inputs.length !== 1) throw new ModelFormatError(`Keras layer "${l.name}" (${l.className}) needs one input, has ${l.inputs.length}`);
    return l.inputs[0];
  }

  /** Description activation of a Keras layer's output; pads are only readable by a convolution. */
  private act(keras: string, user: string): string {
    const v = this.lowered.get(keras);
    if (!v) throw new ModelFormatError(`Keras layer "${user}" reads "${keras}", which was not converted`);
    if (v.kind === 'pad') {
      throw new UnsupportedModelError(`ZeroPadding2D "${keras}" must feed a "valid" Conv2D/DepthwiseConv2D, but "${user}" reads it`);
    }
    return v.name;
  }

  private setAct(l: KerasLayer, name: string): void {
    this.lowered.set(l.name, { kind: 'act', name });
  }

  private emit(l: KerasLayer, layer: LayerDesc): void {
    if (this.byName.has(layer.name) || layer.name === 'input') {
      throw new ModelFormatError(`duplicate layer name "${layer.name}"`);
    }
    this.shapes.set(layer.name, layerOutputShape(layer, this.shapes));
    this.layers.push(layer);
    this.byName.set(layer.name, layer);
    this.tip.set(layer.name, l.name);
    this.setAct(l, layer.name);
  }

  /**
   * The description layer `l` may be folded into: the one producing its input, provided
   * the input is that layer's current value and `l` is its only reader (folding changes
   * the value for every reader).
   */
  private foldTarget(l: KerasLayer): LayerDesc | undefined {
    const input = this.single(l);
    const target = this.byName.get(this.act(input, l.name));
    if (!target || this.tip.get(target.name) !== input || this.consumersOf(input).length !== 1) return undefined;
    return target;
  }

  /** `l` computes the same activation as its input layer, now under `l`'s Keras name. */
  private alias(l: KerasLayer, target: LayerDesc | undefined, name: string): void {
    this.setAct(l, name);
    if (target) this.tip.set(target.name, l.name);
  }

  private useTensor(name: string): string {
    if (!this.tensorNames.includes(name)) this.tensorNames.push(name);
    return name;
  }

  private weight(l: KerasLayer, weight: string): string {
    return this.useTensor(this.weights.resolve(l.name, weight));
  }

  private shapeOf(act: string): number[] {
    return this.shapes.get(act) as number[];
  }

  // --- layers ---------------------------------------------------------------------------

  private zeroPadding(l: KerasLayer): void {
    requireChannelsLast(l);
    const source = this.act(this.single(l), l.name);
    this.lowered.set(l.name, { kind: 'pad', source, pads: readZeroPadding(l) });
  }

  private convolution(l: KerasLayer): void {
    requireChannelsLast(l);
    const input = this.lowered.get(this.single(l));
    const kerasPadding = cfgPadding(l);
    let padding: Padding = kerasPadding;
    let source: string;
    if (input?.kind === 'pad') {
      if (kerasPadding !== 'valid') {
        throw new UnsupportedModelError(`Keras layer "${l.name}": ZeroPadding2D before a "${kerasPadding}" convolution is not supported`);
      }
      if (this.consumersOf(l.inputs[0]).length !== 1) {
        throw new UnsupportedModelError(`ZeroPadding2D "${l.inputs[0]}" feeds several layers; not supported`);
      }
      source = input.source;
      const p = input.pads;
      padding = p.top + p.bottom + p.left + p.right === 0 ? 'valid' : p;
    } else {
      source = this.act(this.single(l), l.name);
    }
    const kernel = cfgPair(l, 'kernel_size');
    const stride = cfgStride(l);
    if (cfgPair(l, 'dilation_rate', [1, 1]).some((d) => d !== 1)) {
      throw new UnsupportedModelError(`Keras layer "${l.name}": dilated convolutions are not supported`);
    }
    const channels = this.shapeOf(source)[3];
    const common = { name: l.name, input: source, kernel, stride, padding, activation: 'linear' as Activation };
    let layer: Conv2DLayer | DepthwiseLayer;
    if (l.className === 'Conv2D') {
      if (cfgNum(l, 'groups', 1) !== 1) throw new UnsupportedModelError(`Keras layer "${l.name}": grouped convolutions are not supported`);
      const outChannels = cfgNum(l, 'filters');
      layer = { op: 'conv2d', ...common, inChannels: channels, outChannels, weights: this.weight(l, 'kernel') };
    } else {
      if (cfgNum(l, 'depth_multiplier', 1) !== 1) {
        throw new UnsupportedModelError(`Keras layer "${l.name}": depth_multiplier ${cfgNum(l, 'depth_multiplier')} is not supported (only 1)`);
      }
      layer = { op: 'depthwise', ...common, channels, weights: this.weight(l, 'depthwise_kernel') };
    }
    if (cfgBool(l, 'use_bias', true)) layer.bias = this.weight(l, 'bias');
    this.emitWithActivation(l, layer);
  }

  /** Emits a conv/dense layer and its own `activation` config (softmax as a separate layer). */
  private emitWithActivation(l: KerasLayer, layer: Conv2DLayer | DepthwiseLayer | DenseLayer): void {
    const activation = cfgStr(l, 'activation', 'linear');
    if (activation === 'softmax') {
      this.emit(l, layer);
      this.softmax(l, `${l.name}_softmax`, layer.name);
      return;
    }
    layer.activation = kerasActivation(l, activation);
    this.emit(l, layer);
  }

  private batchNorm(l: KerasLayer): void {
    const axis = l.config.axis;
    if (!(axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3)))) {
      throw new UnsupportedModelError(`BatchNormalization "${l.name}": axis ${show(axis)} is not supported (channels only)`);
    }
    const target = this.foldTarget(l);
    if (!target || (target.op !== 'conv2d' && target.op !== 'depthwise') || target.batchNorm || target.activation !== 'linear') {
      throw new UnsupportedModelError(
        `BatchNormalization "${l.name}" is not supported here: it must directly follow a Conv2D/DepthwiseConv2D that nothing else reads`,
      );
    }
    target.batchNorm = {
      mean: this.weight(l, 'moving_mean'),
      variance: this.weight(l, 'moving_variance'),
      epsilon: cfgNum(l, 'epsilon', 1e-3),
    };
    if (cfgBool(l, 'scale', true)) target.batchNorm.gamma = this.weight(l, 'gamma');
    if (cfgBool(l, 'center', true)) target.batchNorm.beta = this.weight(l, 'beta');
    this.alias(l, target, target.name);
  }

  private activationLayer(l: KerasLayer): void {
    const a = cfgStr(l, 'activation');
    if (a === 'softmax') this.softmax(l, l.name, this.act(this.single(l), l.name));
    else this.activation(l, kerasActivation(l, a));
  }

  private activation(l: KerasLayer, a: Activation): void {
    if (a === 'linear') return this.identity(l);
    const target = this.foldTarget(l);
    if (!target || target.op === 'add' || target.op === 'globalAvgPool' || target.op === 'softmax') {
      throw new UnsupportedModelError(
        `Keras layer "${l.name}" (${l.className}): a standalone ${a} is not supported; it must directly follow a Conv2D, DepthwiseConv2D or Dense that nothing else reads`,
      );
    }
    // relu and relu6 compose to relu6; only relu after relu stays relu.
    target.activation = target.activation === 'relu6' || a === 'relu6' ? 'relu6' : 'relu';
    this.alias(l, target, target.name);
  }

  private identity(l: KerasLayer): void {
    const name = this.act(this.single(l), l.name);
    this.alias(l, this.foldTarget(l), name);
  }

  private softmax(l: KerasLayer, name: string, input: string): void {
    this.emit(l, { op: 'softmax', name, input });
  }

  private add(l: KerasLayer): void {
    if (l.inputs.length !== 2) throw new UnsupportedModelError(`Add "${l.name}" with ${l.inputs.length} inputs is not supported (only 2)`);
    const [a, b] = l.inputs.map((i) => this.act(i, l.name));
    this.emit(l, { op: 'add', name: l.name, inputs: [a, b] });
  }

  private globalPool(l: KerasLayer, keepdims: boolean): void {
    requireChannelsLast(l);
    // Our pooling yields [1,C]; a kept [1,1,1,C] is only equivalent where it gets flattened.
    if (keepdims) this.requireFlattenConsumers(l);
    this.emit(l, { op: 'globalAvgPool', name: l.name, input: this.act(this.single(l), l.name) });
  }

  private averagePool(l: KerasLayer): void {
    requireChannelsLast(l);
    const input = this.act(this.single(l), l.name);
    const [, h, w] = this.shapeOf(input);
    const pool = cfgPair(l, 'pool_size');
    if (pool[0] !== h || pool[1] !== w || cfgStr(l, 'padding', 'valid') !== 'valid') {
      throw new UnsupportedModelError(
        `AveragePooling2D "${l.name}": only a "valid" pool over the whole ${h}x${w} input is supported, got pool ${pool.join('x')}`,
      );
    }
    this.requireFlattenConsumers(l);
    this.emit(l, { op: 'globalAvgPool', name: l.name, input });
  }

  private requireFlattenConsumers(l: KerasLayer): void {
    const others = this.consumersOf(l.name).filter((c) => c.className !== 'Flatten');
    if (others.length > 0) {
      throw new UnsupportedModelError(`${l.className} "${l.name}" must be followed by Flatten; "${others[0].name}" reads it`);
    }
  }

  private flatten(l: KerasLayer): void {
    const shape = this.shapeOf(this.act(this.single(l), l.name));
    if (shape.length === 4 && (shape[1] !== 1 || shape[2] !== 1)) {
      throw new UnsupportedModelError(`Flatten "${l.name}" of a [${shape}] feature map is not supported (only 1x1 maps)`);
    }
    this.identity(l);
  }

  private dense(l: KerasLayer): void {
    const input = this.act(this.single(l), l.name);
    const shape = this.shapeOf(input);
    if (shape.length === 4 && (shape[1] !== 1 || shape[2] !== 1)) {
      throw new UnsupportedModelError(`Dense "${l.name}" applied per pixel to a [${shape}] map is not supported`);
    }
    const layer: DenseLayer = {
      op: 'dense',
      name: l.name,
      input,
      inFeatures: shape[shape.length - 1],
      outFeatures: cfgNum(l, 'units'),
      weights: this.weight(l, 'kernel'),
      activation: 'linear',
    };
    if (cfgBool(l, 'use_bias', true)) layer.bias = this.weight(l, 'bias');
    this.emitWithActivation(l, layer);
  }
}

function rejectUnsupportedClasses(layers: KerasLayer[]): void {
  const bad = layers.filter((l) => !SUPPORTED_CLASSES.has(l.className));
  if (bad.length === 0) return;
  const byClass = new Map<string, string[]>();
  for (const l of bad) byClass.set(l.className, [...(byClass.get(l.className) ?? []), l.name]);
  const list = [...byClass].map(([c, names]) => `${c} (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''})`);
  throw new UnsupportedModelError(`unsupported Keras layers: ${list.join('; ')}`);
}

function readInputShape(l: KerasLayer): [number, number, number, number] {
  const s = l.config.batch_input_shape ?? l.config.batch_shape;
  if (!Array.isArray(s) || s.length !== 4) {
    throw new UnsupportedModelError(`input "${l.name}": shape ${show(s)} is not supported (need [null, H, W, 3])`);
  }
  const [, h, w, c] = s;
  if (!isPosInt(h) || !isPosInt(w)) {
    throw new UnsupportedModelError(`input "${l.name}": a fixed height and width are needed, got ${show(s)}`);
  }
  if (c !== 3) throw new UnsupportedModelError(`input "${l.name}": ${String(c)} channels are not supported (only 3)`);
  return [1, h, w, 3];
}

function reluActivation(l: KerasLayer): Activation {
  const max = l.config.max_value;
  const slope = l.config.negative_slope ?? 0;
  const threshold = l.config.threshold ?? 0;
  if (slope !== 0 || threshold !== 0) {
    throw new UnsupportedModelError(`ReLU "${l.name}": negative_slope/threshold other than 0 are not supported`);
  }
  if (max === null || max === undefined) return 'relu';
  if (max === 6) return 'relu6';
  throw new UnsupportedModelError(`ReLU "${l.name}": max_value ${String(max)} is not supported (only none or 6)`);
}

function kerasActivation(l: KerasLayer, a: string): Activation {
  if (a === 'linear' || a === 'relu' || a === 'relu6') return a;
  throw new UnsupportedModelError(`Keras layer "${l.name}": activation "${a}" is not supported (linear, relu, relu6, softmax)`);
}

function readZeroPadding(l: KerasLayer): Pads {
  const p = l.config.padding;
  if (isNonNegInt(p)) return { top: p, bottom: p, left: p, right: p };
  if (Array.isArray(p) && p.length === 2) {
    const [hp, wp] = p;
    if (isNonNegInt(hp) && isNonNegInt(wp)) return { top: hp, bottom: hp, left: wp, right: wp };
    if (isIntArray(hp) && isIntArray(wp) && hp.length === 2 && wp.length === 2) {
      return { top: hp[0], bottom: hp[1], left: wp[0], right: wp[1] };
    }
  }
  throw new ModelFormatError(`ZeroPadding2D "${l.name}": malformed padding ${show(p)}`);
}

function requireChannelsLast(l: KerasLayer): void {
  const f = l.config.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') {
    throw new UnsupportedModelError(`Keras layer "${l.name}": data_format ${show(f)} is not supported (channels_last only)`);
  }
}

function guessFamily(layers: KerasLayer[]): string {
  const names = layers.map((l) => l.name);
  if (names.some((n) => /^(expanded_conv|block_\d+_expand)/.test(n))) return 'mobilenet_v2';
  if (names.some((n) => /^conv_dw_\d+/.test(n))) return 'mobilenet_v1';
  return 'keras';
}

function describeSource(topology: unknown): string {
  const version = isJson(topology) && typeof topology.keras_version === 'string' ? ` (Keras ${topology.keras_version})` : '';
  return `TF.js layers model${version}`;
}

// ---------------------------------------------------------------------------------------
// Keras config accessors; a wrong type is a malformed model.json.

function cfgError(l: KerasLayer, key: string, want: string): ModelFormatError {
  return new ModelFormatError(`Keras layer "${l.name}" (${l.className}): config.${key} must be ${want}, got ${show(l.config[key])}`);
}

function cfgNum(l: KerasLayer, key: string, fallback?: number): number {
  const v = l.config[key] ?? fallback;
  if (!isFiniteNum(v)) throw cfgError(l, key, 'a number');
  return v;
}

function cfgStr(l: KerasLayer, key: string, fallback?: string): string {
  const v = l.config[key] ?? fallback;
  if (typeof v !== 'string') throw cfgError(l, key, 'a string');
  return v;
}

function cfgBool(l: KerasLayer, key: string, fallback: boolean): boolean {
  const v = l.config[key] ?? fallback;
  if (typeof v !== 'boolean') throw cfgError(l, key, 'a boolean');
  return v;
}

/** Keras accepts `3` or `[3, 3]` for kernel sizes, strides and dilations. */
function cfgPair(l: KerasLayer, key: string, fallback?: [number, number]): [number, number] {
  const v = l.config[key] ?? fallback;
  if (isPosInt(v)) return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every(isPosInt)) return [v[0], v[1]];
  throw cfgError(l, key, 'a positive integer or a pair of them');
}

function cfgStride(l: KerasLayer): number {
  const [sh, sw] = cfgPair(l, 'strides', [1, 1]);
  if (sh !== sw) throw new UnsupportedModelError(`Keras layer "${l.name}": unequal strides ${sh}x${sw} are not supported`);
  return sh;
}

function cfgPadding(l: KerasLayer): 'same' | 'valid' {
  const p = cfgStr(l, 'padding', 'valid');
  if (p !== 'same' && p !== 'valid') throw new UnsupportedModelError(`Keras layer "${l.name}": padding "${p}" is not supported`);
  return p;
}

function isJson(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPosInt(v: unknown): v is number {
  return isNonNegInt(v) && v > 0;
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isNonNegInt);
}
