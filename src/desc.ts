// The model description: what a `.mnw` file stores besides raw tensors, what the
// converters produce and what the planner consumes. It names layers and tensors,
// never memory offsets or kernel variants: those are decided once by the planner.

/** Activation applied after a layer's bias (and folded batch-norm). */
export type Activation = 'linear' | 'relu' | 'relu6';

/**
 * Spatial padding. `same` is TensorFlow's SAME (extra row/column at the bottom/right),
 * `valid` is none, an explicit object gives the pads in pixels (Keras ZeroPadding2D
 * folded into the following `valid` convolution).
 */
export type Padding = 'same' | 'valid' | { top: number; bottom: number; left: number; right: number };

/** Inference-time batch normalization to be folded into the preceding convolution. */
export interface BatchNormRef {
  /** Tensor names; `gamma`/`beta` may be absent (Keras `scale=False` / `center=False`). */
  gamma?: string;
  beta?: string;
  mean: string;
  variance: string;
  epsilon: number;
}

interface LayerBase {
  /** Unique layer name; it is also the name of the activation this layer produces. */
  name: string;
}

/**
 * Full convolution, NHWC. `weights` has shape [kh, kw, inC, outC] (Keras/TF HWIO).
 * A 1x1 convolution (pointwise) is this op with kernel [1, 1].
 */
export interface Conv2DLayer extends LayerBase {
  op: 'conv2d';
  input: string;
  kernel: [number, number];
  stride: number;
  padding: Padding;
  inChannels: number;
  outChannels: number;
  weights: string;
  bias?: string;
  batchNorm?: BatchNormRef;
  activation: Activation;
}

/** Depthwise convolution with multiplier 1; `weights` has shape [kh, kw, C, 1]. */
export interface DepthwiseLayer extends LayerBase {
  op: 'depthwise';
  input: string;
  kernel: [number, number];
  stride: number;
  padding: Padding;
  channels: number;
  weights: string;
  bias?: string;
  batchNorm?: BatchNormRef;
  activation: Activation;
}

/** Elementwise sum of two activations of the same shape (the residual connection). */
export interface AddLayer extends LayerBase {
  op: 'add';
  inputs: [string, string];
}

/**
 * Average over all pixels: NHWC [1,H,W,C] -> [1,C]. Keras GlobalAveragePooling2D, and
 * AveragePooling2D whose pool covers the whole input followed by Flatten.
 */
export interface GlobalAvgPoolLayer extends LayerBase {
  op: 'globalAvgPool';
  input: string;
}

/** Fully connected: [1,inF] x [inF,outF] + bias. `weights` has shape [inF, outF]. */
export interface DenseLayer extends LayerBase {
  op: 'dense';
  input: string;
  inFeatures: number;
  outFeatures: number;
  weights: string;
  bias?: string;
  activation: Activation;
}

export interface SoftmaxLayer extends LayerBase {
  op: 'softmax';
  input: string;
}

export type LayerDesc =
  | Conv2DLayer
  | DepthwiseLayer
  | AddLayer
  | GlobalAvgPoolLayer
  | DenseLayer
  | SoftmaxLayer;

/** How raw RGB pixels in [0,255] become the model input: x * scale + offset, after resizing. */
export interface Preprocess {
  /** Bilinear resize; `alignCorners` as in tf.image.resizeBilinear. */
  resize: 'bilinear';
  alignCorners: boolean;
  scale: number;
  offset: number;
}

/** Everything about a network except its tensor data. Layers are in topological order. */
export interface ModelDesc {
  /** Free-form family, for display: 'mobilenet_v1', 'mobilenet_v2', ... */
  family: string;
  /** Name of the input activation referenced by the first layer(s). Always 'input'. */
  input: string;
  /** NHWC input shape [1, H, W, 3]. */
  inputShape: [number, number, number, number];
  layers: LayerDesc[];
  /** Name of the layer whose activation is the model output. */
  output: string;
  /** Class labels, one per output value, when the output is a classification. */
  labels?: string[];
  preprocess?: Preprocess;
  /** Provenance and license text, shown by the CLI and kept by converters. */
  meta?: Record<string, string>;
}

/**
 * A tensor as stored. `u8` is affine-quantized per tensor (value = q * scale + min, as
 * TF.js's uint8 weight quantization); `f16` is IEEE half precision.
 */
export type StoredDtype = 'f32' | 'f16' | 'u8';

export interface StoredTensor {
  name: string;
  shape: number[];
  dtype: StoredDtype;
  /** Raw little-endian bytes: 4, 2 or 1 per value. */
  data: Uint8Array;
  /** For `u8`: value = q * scale + min. */
  scale?: number;
  min?: number;
}

/** A model in memory before planning: a description plus its weights. */
export interface ModelSource {
  desc: ModelDesc;
  tensors: StoredTensor[];
}
