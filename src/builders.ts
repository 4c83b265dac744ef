// Plan-independent builders of the two MobileNet families as model descriptions, laid out
// layer for layer like Keras's `MobileNet` and `MobileNetV2` applications (same names, same
// ZeroPadding + valid convolutions at stride 2, batch-norm after every convolution), with
// seeded random weights. Real trained weights come from converters; these give any width
// and input size for tests and benchmarks.

import type { Activation, LayerDesc, ModelDesc, ModelSource, Padding, StoredTensor } from './desc.js';
import { InputError } from './errors.js';

export interface BuildOptions {
  /** Width multiplier. V1: 0.25, 0.5, 0.75, 1.0; V2: 0.35, 0.5, 0.75, 1.0, 1.3, 1.4. */
  alpha?: number;
  /** Square input size, a multiple of 32 (default 224). */
  inputSize?: number;
  /** Classifier outputs (default 1000). */
  classes?: number;
  /** End with softmax (default true); false leaves the logits as output. */
  softmax?: boolean;
  /** PRNG seed for the weights (default 1). */
  seed?: number;
}

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; enough for test weights. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Keras's _make_divisible: round to a multiple of 8, never more than 10% below v. */
export function makeDivisible(v: number, divisor = 8): number {
  const n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return n < 0.9 * v ? n + divisor : n;
}

/** Keras's correct_pad for a stride-2 3x3 convolution on an even input: one row/column at the end. */
const STRIDE2_PAD: Padding = { top: 0, bottom: 1, left: 0, right: 1 };

class Builder {
  readonly layers: LayerDesc[] = [];
  readonly tensors: StoredTensor[] = [];
  private readonly rand: () => number;
  last = 'input';

  constructor(seed: number) {
    this.rand = mulberry32(seed);
  }

  private uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.rand();
  }

  tensor(name: string, shape: number[], lo: number, hi: number): string {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = this.uniform(lo, hi);
    this.tensors.push({ name, shape, dtype: 'f32', data: new Uint8Array(v.buffer) });
    return name;
  }

  /** He-uniform weights keep activations in range through deep stacks of ReLU6 layers. */
  kernel(name: string, shape: number[], fanIn: number): string {
    const a = Math.sqrt(6 / fanIn);
    return this.tensor(name, shape, -a, a);
  }

  batchNorm(name: string, c: number): NonNullable<Extract<LayerDesc, { op: 'conv2d' }>['batchNorm']> {
    return {
      gamma: this.tensor(`${name}/gamma`, [c], 0.5, 1.5),
      beta: this.tensor(`${name}/beta`, [c], -0.2, 0.2),
      mean: this.tensor(`${name}/moving_mean`, [c], -0.2, 0.2),
      variance: this.tensor(`${name}/moving_variance`, [c], 0.5, 1.5),
      epsilon: 1e-3,
    };
  }

  conv(name: string, bn: string, k: number, stride: number, padding: Padding, inC: number, outC: number, act: Activation): void {
    this.layers.push({
      op: 'conv2d', name, input: this.last, kernel: [k, k], stride, padding,
      inChannels: inC, outChannels: outC,
      weights: this.kernel(`${name}/kernel`, [k, k, inC, outC], k * k * inC),
      batchNorm: this.batchNorm(bn, outC),
      activation: act,
    });
    this.last = name;
  }

  depthwise(name: string, bn: string, stride: number, c: number): void {
    this.layers.push({
      op: 'depthwise', name, input: this.last, kernel: [3, 3], stride,
      padding: stride === 2 ? STRIDE2_PAD : 'same', channels: c,
      weights: this.kernel(`${name}/depthwise_kernel`, [3, 3, c, 1], 9),
      batchNorm: this.batchNorm(bn, c),
      activation: 'relu6',
    });
    this.last = name;
  }

  head(features: number, classes: number, softmax: boolean): string {
    this.layers.push({ op: 'globalAvgPool', name: 'global_average_pooling2d', input: this.last });
    this.layers.push({
      op: 'dense', name: 'logits', input: 'global_average_pooling2d',
      inFeatures: features, outFeatures: classes,
      weights: this.kernel('logits/kernel', [features, classes], features),
      bias: this.tensor('logits/bias', [classes], -0.1, 0.1),
      activation: 'linear',
    });
    this.last = 'logits';
    if (softmax) {
      this.layers.push({ op: 'softmax', name: 'predictions', input: 'logits' });
      this.last = 'predictions';
    }
    return this.last;
  }
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 32 || size % 32 !== 0) {
    throw new InputError(`inputSize must be a positive multiple of 32, got ${size}`);
  }
}

function finish(b: Builder, family: string, size: number, output: string, alpha: number): ModelSource {
  const desc: ModelDesc = {
    family, input: 'input', inputShape: [1, size, size, 3], layers: b.layers, output,
    preprocess: { resize: 'bilinear', alignCorners: false, scale: 1 / 127.5, offset: -1 },
    meta: { weights: 'seeded random (not trained)', alpha: String(alpha) },
  };
  return { desc, tensors: b.tensors };
}

/** MobileNetV1 (Howard et al. 2017) as Keras builds it. */
export function mobilenetV1(opts: BuildOptions = {}): ModelSource {
  const { alpha = 1.0, inputSize = 224, classes = 1000, softmax = true, seed = 1 } = opts;
  if (![0.25, 0.5, 0.75, 1.0].includes(alpha)) throw new InputError(`MobileNetV1 alpha must be 0.25, 0.5, 0.75 or 1.0, got ${alpha}`);
  checkSize(inputSize);
  const b = new Builder(seed);
  let c = Math.floor(32 * alpha);
  b.conv('conv1', 'conv1_bn', 3, 2, STRIDE2_PAD, 3, c, 'relu6');
  const blocks: [number, number][] = [
    [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
    [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
  ];
  blocks.forEach(([filters, stride], i) => {
    const id = i + 1;
    const out = Math.floor(filters * alpha);
    b.depthwise(`conv_dw_${id}`, `conv_dw_${id}_bn`, stride, c);
    b.conv(`conv_pw_${id}`, `conv_pw_${id}_bn`, 1, 1, 'same', c, out, 'relu6');
    c = out;
  });
  return finish(b, 'mobilenet_v1', inputSize, b.head(c, classes, softmax), alpha);
}

/** MobileNetV2 (Sandler et al. 2018) as Keras builds it. */
export function mobilenetV2(opts: BuildOptions = {}): ModelSource {
  const { alpha = 1.0, inputSize = 224, classes = 1000, softmax = true, seed = 1 } = opts;
  if (![0.35, 0.5, 0.75, 1.0, 1.3, 1.4].includes(alpha)) {
    throw new InputError(`MobileNetV2 alpha must be 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4, got ${alpha}`);
  }
  checkSize(inputSize);
  const b = new Builder(seed);
  let c = makeDivisible(32 * alpha);
  b.conv('Conv1', 'bn_Conv1', 3, 2, STRIDE2_PAD, 3, c, 'relu6');
  // (expansion t, channels, repeats n, first stride s), as in the paper's Table 2.
  const stages: [number, number, number, number][] = [
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
  ];
  let id = 0;
  for (const [t, ch, n, s] of stages) {
    const out = makeDivisible(ch * alpha);
    for (let r = 0; r < n; r++) {
      const stride = r === 0 ? s : 1;
      const prefix = id === 0 ? 'expanded_conv_' : `block_${id}_`;
      const blockIn = b.last;
      const exp = c * t;
      if (t !== 1) b.conv(`${prefix}expand`, `${prefix}expand_BN`, 1, 1, 'same', c, exp, 'relu6');
      b.depthwise(`${prefix}depthwise`, `${prefix}depthwise_BN`, stride, exp);
      b.conv(`${prefix}project`, `${prefix}project_BN`, 1, 1, 'same', exp, out, 'linear');
      if (stride === 1 && c === out) {
        b.layers.push({ op: 'add', name: `${prefix}add`, inputs: [blockIn, b.last] });
        b.last = `${prefix}add`;
      }
      c = out;
      id++;
    }
  }
  const last = alpha > 1.0 ? makeDivisible(1280 * alpha) : 1280;
  b.conv('Conv_1', 'Conv_1_bn', 1, 1, 'valid', c, last, 'relu6');
  return finish(b, 'mobilenet_v2', inputSize, b.head(last, classes, softmax), alpha);
}
