// `import 'mobilenet-wasm/tfjs'` registers the TF.js backend 'mobilenet-wasm': every kernel of
// tfjs-backend-cpu, with the convolutions, matrix products and a few elementwise kernels
// replaced by this package's WebAssembly SIMD kernels.
//
//   import * as tf from '@tensorflow/tfjs';
//   import 'mobilenet-wasm/tfjs';
//   await tf.setBackend('mobilenet-wasm');
//
// @tensorflow/tfjs-core and @tensorflow/tfjs-backend-cpu are peer dependencies: the ones the
// application (or @tensorflow/tfjs) already uses, so there is one engine and one kernel registry.

import {
  engine, findBackendFactory, getKernel, getKernelsForBackend, registerBackend, registerKernel,
} from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { OutOfMemoryError } from '../errors.js';
import { chooseBuild, detectVariant, instantiateKernels, type KernelVariant, type WasmBuild } from '../wasm.js';
import { MobileNetWasmBackend } from './backend.js';
import * as K from './kernels.js';

export { MobileNetWasmBackend, type KernelStats } from './backend.js';

/** The name the default import registers the backend under. */
export const BACKEND_NAME = 'mobilenet-wasm';

export interface BackendOptions {
  /** Backend name (default 'mobilenet-wasm'). */
  name?: string;
  /** Wasm build: 'auto' (default) picks relaxed SIMD where the runtime has it, else plain SIMD. */
  build?: WasmBuild | 'auto';
  /** Kernel variant set: 'auto' (default) by CPU, or force 'x86', 'arm' or 'scalar'. */
  kernels?: KernelVariant | 'auto';
  /**
   * TF.js backend priority (default 0: below 'cpu', so the backend is used only when selected
   * with `tf.setBackend`). A value above 2 makes TF.js pick it by default.
   */
  priority?: number;
}

/** Kernel inputs by name (optional ones, like `bias`, are undefined when absent). */
type Inputs = Record<string, TensorInfo>;
type Impl = (b: MobileNetWasmBackend, inputs: Inputs, attrs: NamedAttrMap) => K.Result;

/* eslint-disable @typescript-eslint/no-explicit-any */
const conv = (inputs: Inputs, attrs: NamedAttrMap): K.ConvArgs => ({
  x: inputs.x,
  filter: inputs.filter,
  bias: inputs.bias,
  preluActivationWeights: inputs.preluActivationWeights,
  strides: attrs.strides as any,
  pad: attrs.pad as any,
  dataFormat: attrs.dataFormat as string | undefined,
  dilations: attrs.dilations as any,
  dimRoundingMode: attrs.dimRoundingMode as any,
  activation: attrs.activation as string | undefined,
  leakyreluAlpha: attrs.leakyreluAlpha as number | undefined,
});

const matmul = (inputs: Inputs, attrs: NamedAttrMap): K.MatMulArgs => ({
  a: inputs.a,
  b: inputs.b,
  bias: inputs.bias,
  preluActivationWeights: inputs.preluActivationWeights,
  transposeA: Boolean(attrs.transposeA),
  transposeB: Boolean(attrs.transposeB),
  activation: attrs.activation as string | undefined,
  leakyreluAlpha: attrs.leakyreluAlpha as number | undefined,
});

/** TF.js kernel name -> our implementation. Everything else is tfjs-backend-cpu's. */
export const OVERRIDDEN_KERNELS: Readonly<Record<string, Impl>> = {
  Conv2D: (b, i, a) => K.conv2d(b, { ...conv(i, a), activation: undefined }),
  FusedConv2D: (b, i, a) => K.conv2d(b, conv(i, a)),
  DepthwiseConv2dNative: (b, i, a) => K.depthwise(b, { ...conv(i, a), activation: undefined }),
  FusedDepthwiseConv2D: (b, i, a) => K.depthwise(b, conv(i, a)),
  BatchMatMul: (b, i, a) => K.matMul(b, { ...matmul(i, a), activation: undefined }),
  _FusedMatMul: (b, i, a) => K.matMul(b, matmul(i, a)),
  Relu6: (b, i) => K.clamp(b, i.x, 0, 6),
  Relu: (b, i) => K.clamp(b, i.x, 0, Infinity),
  ClipByValue: (b, i, a) => K.clamp(b, i.x, a.clipValueMin as number, a.clipValueMax as number),
  Add: (b, i) => K.add(b, i.a, i.b),
  PadV2: (b, i, a) => K.padV2(b, i.x, a.paddings as [number, number][], a.constantValue as number),
  FusedBatchNorm: (b, i, a) =>
    K.batchNorm(b, i.x, i.mean, i.variance, i.scale, i.offset, a.varianceEpsilon as number | undefined),
  AvgPool: (b, i, a) => K.avgPool(b, i.x, a.filterSize as any, a.strides as any, a.pad as any, a.dimRoundingMode as any),
};
/* eslint-enable @typescript-eslint/no-explicit-any */

function overrideConfig(kernelName: string, backendName: string, impl: Impl): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const b = args.backend as MobileNetWasmBackend;
    let r: K.Result;
    try {
      r = impl(b, args.inputs as Inputs, args.attrs ?? {});
    } catch (e) {
      if (!(e instanceof OutOfMemoryError)) throw e;
      r = 'wasm memory could not grow';
    }
    if (typeof r !== 'string') {
      b.count(kernelName);
      return r;
    }
    b.countFallback(kernelName, r);
    return getKernel(kernelName, 'cpu').kernelFunc(args) as TensorInfo | TensorInfo[];
  };
  return { kernelName, backendName, kernelFunc };
}

/** Registers, under `name`, every cpu kernel not registered there yet. */
function copyCpuKernels(name: string): void {
  for (const k of getKernelsForBackend('cpu')) {
    if (!getKernel(k.kernelName, name)) registerKernel({ ...k, backendName: name });
  }
}

/**
 * Registers the backend under `options.name` (default 'mobilenet-wasm'); the default import
 * does this once with the defaults. Returns false when a backend of that name already exists.
 * The wasm module is compiled and instantiated when TF.js first initialises the backend
 * (`await tf.setBackend(name)`).
 */
export function registerMobileNetWasmBackend(options: BackendOptions = {}): boolean {
  const name = options.name ?? BACKEND_NAME;
  if (findBackendFactory(name)) return false;
  for (const [kernel, impl] of Object.entries(OVERRIDDEN_KERNELS)) {
    if (!getKernel(kernel, name)) registerKernel(overrideConfig(kernel, name, impl));
  }
  copyCpuKernels(name);
  return registerBackend(name, async () => {
    copyCpuKernels(name); // cpu kernels registered after this module was imported
    const build = await chooseBuild(options.build ?? 'auto');
    const inst = await instantiateKernels(build);
    const kernels = options.kernels ?? 'auto';
    return new MobileNetWasmBackend(inst, kernels === 'auto' ? detectVariant(inst.exports) : kernels);
  }, options.priority ?? 0);
}

/** The initialised backend registered as `name`, if TF.js has initialised it. */
export function getMobileNetWasmBackend(name = BACKEND_NAME): MobileNetWasmBackend | null {
  // engine().registry holds initialised backends only (findBackend would start initialising).
  const b = engine().registry[name];
  return b instanceof MobileNetWasmBackend ? b : null;
}

registerMobileNetWasmBackend();
