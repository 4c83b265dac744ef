// The TF.js side of the project: a reference interpreter of our ModelDesc written with
// TF.js ops (for correctness tests) and the same network in TF.js's fastest form (the
// benchmark peer), plus a loader of the original nsfwjs files as a tfjs-layers model.
//
// Plain JavaScript with JSDoc so that vitest tests and plain `node` bench scripts can both
// import it. It deliberately imports nothing from src/ or dist/: it reads the model
// description on its own, so a bug in our format code cannot hide in the reference too.

import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import vm from 'node:vm';

/**
 * The parts of src/desc.ts this file reads, restated so nothing is imported from src/.
 * @typedef {'f32' | 'f16' | 'u8'} StoredDtype
 * @typedef {{ name: string, shape: number[], dtype: StoredDtype, data: Uint8Array, scale?: number, min?: number }} StoredTensor
 * @typedef {'same' | 'valid' | { top: number, bottom: number, left: number, right: number }} Padding
 * @typedef {'linear' | 'relu' | 'relu6'} Activation
 * @typedef {{ gamma?: string, beta?: string, mean: string, variance: string, epsilon: number }} BatchNormRef
 * @typedef {{ name: string, op: string, input?: string, inputs?: [string, string], kernel?: [number, number],
 *   stride?: number, padding?: Padding, weights?: string, bias?: string, batchNorm?: BatchNormRef,
 *   activation?: Activation, inChannels?: number, outChannels?: number, channels?: number,
 *   inFeatures?: number, outFeatures?: number }} LayerDesc
 * @typedef {{ family: string, input: string, inputShape: [number, number, number, number],
 *   layers: LayerDesc[], output: string, labels?: string[] }} ModelDesc
 * @typedef {{ desc: ModelDesc, tensors: StoredTensor[] }} ModelSource
 *
 * @typedef {any} Tf  the `@tensorflow/tfjs-core` namespace (kept `any`: its types are not needed here)
 * @typedef {any} TfTensor
 *
 * @typedef {object} TfjsNetwork
 * @property {(input: Float32Array, output?: string) => Float32Array} run
 *   Runs synchronously (dataSync); `output` names the layer whose activation to return
 *   (default: the desc's output), e.g. the logits before the softmax.
 * @property {(input: Float32Array, output?: string) => Promise<Float32Array>} runAsync
 *   Same with `await data()`: on the wasm backend this avoids nothing, but on async backends
 *   it is the only non-blocking read-back, so benchmarks can use one code path.
 * @property {() => void} dispose  frees the weight tensors uploaded at build time.
 */

// ---------------------------------------------------------------------------------------
// Stored tensors

/**
 * Decodes a stored tensor to float32 values. u8 is computed as TF.js's own weight loader
 * does it (q * scale + min in double precision, then rounded to f32), so weights decoded
 * here are bit-identical to the ones tfjs-layers loads from the same quantized file.
 * @param {StoredTensor} t
 * @returns {Float32Array}
 */
export function dequantizeTensor(t) {
  const count = t.shape.reduce((a, b) => a * b, 1);
  const bytes = t.data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = { f32: 4, f16: 2, u8: 1 }[t.dtype];
  if (width === undefined) throw new Error(`tensor ${t.name}: unknown dtype ${t.dtype}`);
  if (bytes.byteLength !== count * width) {
    throw new Error(`tensor ${t.name}: ${bytes.byteLength} bytes for ${count} ${t.dtype} values`);
  }
  const out = new Float32Array(count);
  if (t.dtype === 'f32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (t.dtype === 'f16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  } else {
    if (t.scale === undefined || t.min === undefined) throw new Error(`tensor ${t.name}: u8 without scale/min`);
    for (let i = 0; i < count; i++) out[i] = bytes[i] * t.scale + t.min;
  }
  return out;
}

/**
 * IEEE 754 binary16 -> number, including subnormals, infinities and NaN.
 * @param {number} h
 */
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

// ---------------------------------------------------------------------------------------
// The interpreter

/**
 * Builds a TF.js network from our model description.
 *
 * `fused: false` is the reference: every op of the description is a separate TF.js op
 * (conv, bias add, batch-norm with the stored statistics, activation), as the Keras model
 * computes it. `fused: true` is the peer's best case: batch-norm folded into the weights at
 * build time and tf.fused.* kernels that apply bias and activation in the same pass.
 *
 * @param {Tf} tf  an initialised `@tensorflow/tfjs-core` namespace (see initTf)
 * @param {ModelSource} source
 * @param {{ fused?: boolean }} [options]
 * @returns {TfjsNetwork}
 */
export function buildTfjsNetwork(tf, source, { fused = false } = {}) {
  const { desc } = source;
  const stored = new Map(source.tensors.map((t) => [t.name, t]));
  /** @type {TfTensor[]} */
  const owned = [];
  const ctx = {
    tf,
    /** @param {string} name */
    values(name) {
      const t = stored.get(name);
      if (!t) throw new Error(`tensor ${name} is referenced by the model but not stored`);
      return { values: dequantizeTensor(t), shape: t.shape };
    },
    /** @param {Float32Array} values @param {number[]} shape */
    upload(values, shape) {
      const t = tf.tensor(values, shape, 'float32');
      owned.push(t);
      return t;
    },
  };
  /** @type {Step[]} */
  let steps;
  try {
    steps = desc.layers.map((layer) => (fused ? fusedStep : plainStep)(ctx, layer));
  } catch (e) {
    owned.forEach((t) => t.dispose()); // a desc that fails to build must not leak what was uploaded
    throw e;
  }
  const lastUse = lastUses(desc, steps);
  const inputSize = desc.inputShape.reduce((a, b) => a * b, 1);

  /** @param {Float32Array} input @param {string} target */
  function forward(input, target) {
    if (input.length !== inputSize) throw new Error(`input has ${input.length} values, expected ${inputSize}`);
    /** @type {Map<string, TfTensor>} */
    const acts = new Map([[desc.input, tf.tensor4d(input, desc.inputShape, 'float32')]]);
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      const y = step.apply(...step.inputs.map((n) => acts.get(n)));
      if (step.name === target) return y;
      acts.set(step.name, y);
      // Free activations nobody reads any more, as a real runtime would: holding every
      // intermediate until the end of tidy() would make the peer slower than it is.
      for (const n of step.inputs) {
        if (lastUse.get(n) === i && acts.has(n)) {
          acts.get(n).dispose();
          acts.delete(n);
        }
      }
    }
    throw new Error(`no layer named ${target}`);
  }

  return {
    run(input, output = desc.output) {
      return tf.tidy(() => forward(input, output).dataSync());
    },
    async runAsync(input, output = desc.output) {
      const y = tf.tidy(() => forward(input, output));
      try {
        return await y.data();
      } finally {
        y.dispose();
      }
    },
    dispose() {
      for (const t of owned) t.dispose();
      owned.length = 0;
    },
  };
}

/**
 * For each activation name, the index of the last step that reads it.
 * @param {ModelDesc} desc
 * @param {{ inputs: string[] }[]} steps
 */
function lastUses(desc, steps) {
  /** @type {Map<string, number>} */
  const last = new Map();
  steps.forEach((s, i) => s.inputs.forEach((n) => last.set(n, i)));
  last.delete(desc.output);
  return last;
}

/**
 * @typedef {object} Ctx
 * @property {Tf} tf
 * @property {(name: string) => { values: Float32Array, shape: number[] }} values
 * @property {(values: Float32Array, shape: number[]) => TfTensor} upload
 *
 * @typedef {{ name: string, inputs: string[], apply: (...xs: TfTensor[]) => TfTensor }} Step
 */

/**
 * TF.js padding argument: TF's own strings, or explicit NHWC pads.
 * @param {Padding} p
 */
function tfPad(p) {
  if (p === 'same' || p === 'valid') return p;
  return [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]];
}

/**
 * Loads a layer's weights and checks them against the shape the layer implies, so a desc
 * that disagrees with its tensors fails here instead of computing garbage.
 * @param {Ctx} ctx @param {string} name @param {number[]} expected @param {string} layer
 */
function weightValues(ctx, name, expected, layer) {
  const w = ctx.values(name);
  if (w.shape.join() !== expected.join()) {
    throw new Error(`layer ${layer}: tensor ${name} has shape [${w.shape}], expected [${expected}]`);
  }
  return w;
}

/**
 * The shapes of a layer's weights and its number of output channels (what BN and bias index).
 * @param {LayerDesc} l
 */
function weightShape(l) {
  const [kh, kw] = l.kernel ?? [1, 1];
  if (l.op === 'conv2d') return { shape: [kh, kw, l.inChannels, l.outChannels], outC: l.outChannels };
  if (l.op === 'depthwise') return { shape: [kh, kw, l.channels, 1], outC: l.channels };
  return { shape: [l.inFeatures, l.outFeatures], outC: l.outFeatures };
}

/** @param {Ctx} ctx @param {string} name @param {number} n @param {LayerDesc} l */
function vector(ctx, name, n, l) {
  return weightValues(ctx, name, [n], l.name).values;
}

/**
 * Reference step: one TF.js op per described operation, batch-norm from its statistics.
 * @param {Ctx} ctx @param {LayerDesc} l @returns {Step}
 */
function plainStep(ctx, l) {
  const { tf } = ctx;
  const act = (/** @type {TfTensor} */ x) => activate(tf, x, l.activation);
  switch (l.op) {
    case 'conv2d':
    case 'depthwise': {
      const { shape, outC } = weightShape(l);
      const filter = ctx.upload(weightValues(ctx, l.weights, shape, l.name).values, shape);
      const bias = l.bias ? ctx.upload(vector(ctx, l.bias, outC, l), [outC]) : null;
      const bn = l.batchNorm ? plainBatchNorm(ctx, l.batchNorm, outC, l) : null;
      const conv = l.op === 'conv2d' ? tf.conv2d : tf.depthwiseConv2d;
      const pad = tfPad(l.padding);
      return step(l, [l.input], (x) => {
        let y = conv(x, filter, l.stride, pad);
        // Bias before batch-norm: Keras computes BN(conv(x) + b).
        if (bias) y = tf.add(y, bias);
        if (bn) y = tf.batchNorm(y, bn.mean, bn.variance, bn.beta, bn.gamma, bn.epsilon);
        return act(y);
      });
    }
    case 'dense': {
      const { shape, outC } = weightShape(l);
      const w = ctx.upload(weightValues(ctx, l.weights, shape, l.name).values, shape);
      const bias = l.bias ? ctx.upload(vector(ctx, l.bias, outC, l), [outC]) : null;
      return step(l, [l.input], (x) => {
        const y = tf.matMul(x, w);
        return act(bias ? tf.add(y, bias) : y);
      });
    }
    default:
      return commonStep(tf, l);
  }
}

/**
 * Peer step: batch-norm folded into weights and bias, one fused kernel per layer.
 * @param {Ctx} ctx @param {LayerDesc} l @returns {Step}
 */
function fusedStep(ctx, l) {
  const { tf } = ctx;
  switch (l.op) {
    case 'conv2d':
    case 'depthwise': {
      const { shape, outC } = weightShape(l);
      const folded = foldBatchNorm(ctx, l, shape, outC);
      const filter = ctx.upload(folded.weights, shape);
      const bias = folded.bias ? ctx.upload(folded.bias, [outC]) : undefined;
      const conv = l.op === 'conv2d' ? tf.fused.conv2d : tf.fused.depthwiseConv2d;
      const pad = tfPad(l.padding);
      const activation = l.activation;
      return step(l, [l.input], (x) => conv({ x, filter, strides: l.stride, pad, bias, activation }));
    }
    case 'dense': {
      const { shape, outC } = weightShape(l);
      const b = ctx.upload(weightValues(ctx, l.weights, shape, l.name).values, shape);
      const bias = l.bias ? ctx.upload(vector(ctx, l.bias, outC, l), [outC]) : undefined;
      return step(l, [l.input], (a) => tf.fused.matMul({ a, b, bias, activation: l.activation }));
    }
    default:
      return commonStep(tf, l);
  }
}

/**
 * Steps without weights: the same TF.js ops in both variants.
 * @param {Tf} tf @param {LayerDesc} l @returns {Step}
 */
function commonStep(tf, l) {
  switch (l.op) {
    case 'add':
      return step(l, l.inputs, (a, b) => tf.add(a, b));
    case 'globalAvgPool':
      return step(l, [l.input], (x) => tf.mean(x, [1, 2]));
    case 'softmax':
      return step(l, [l.input], (x) => tf.softmax(x));
    default:
      throw new Error(`layer ${l.name}: unsupported op ${l.op}`);
  }
}

/** @param {LayerDesc} l @param {string[]} inputs @param {Step['apply']} apply @returns {Step} */
function step(l, inputs, apply) {
  return { name: l.name, inputs, apply };
}

/** @param {Tf} tf @param {TfTensor} x @param {Activation} a */
function activate(tf, x, a) {
  if (a === 'relu') return tf.relu(x);
  if (a === 'relu6') return tf.clipByValue(x, 0, 6);
  if (a === 'linear' || a === undefined) return x;
  throw new Error(`unknown activation ${a}`);
}

/**
 * Batch-norm parameters as tensors for tf.batchNorm; absent gamma/beta stay undefined,
 * which tf.batchNorm treats as 1 and 0 (Keras scale=False / center=False).
 * @param {Ctx} ctx @param {BatchNormRef} bn @param {number} n @param {LayerDesc} l
 */
function plainBatchNorm(ctx, bn, n, l) {
  const load = (/** @type {string | undefined} */ name) =>
    name ? ctx.upload(vector(ctx, name, n, l), [n]) : undefined;
  return { mean: load(bn.mean), variance: load(bn.variance), gamma: load(bn.gamma), beta: load(bn.beta), epsilon: bn.epsilon };
}

/**
 * Folds inference batch-norm into the preceding convolution, in double precision:
 *   s = gamma / sqrt(var + eps);  w'[..., o] = w[..., o] * s[o];  b' = (b - mean) * s + beta.
 * The output channel is the innermost index for both layouts ([kh,kw,in,out] and
 * [kh,kw,C,1]), so `i % outC` finds it.
 * @param {Ctx} ctx @param {LayerDesc} l @param {number[]} shape @param {number} outC
 * @returns {{ weights: Float32Array, bias: Float32Array | null }}
 */
function foldBatchNorm(ctx, l, shape, outC) {
  const w = weightValues(ctx, l.weights, shape, l.name).values;
  const b = l.bias ? vector(ctx, l.bias, outC, l) : null;
  const bn = l.batchNorm;
  if (!bn) return { weights: w, bias: b };
  const opt = (/** @type {string | undefined} */ name, fill) =>
    name ? vector(ctx, name, outC, l) : new Float32Array(outC).fill(fill);
  const mean = vector(ctx, bn.mean, outC, l);
  const variance = vector(ctx, bn.variance, outC, l);
  const gamma = opt(bn.gamma, 1);
  const beta = opt(bn.beta, 0);
  const s = Array.from(gamma, (g, o) => g / Math.sqrt(variance[o] + bn.epsilon));
  const weights = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) weights[i] = w[i] * s[i % outC];
  const bias = new Float32Array(outC);
  for (let o = 0; o < outC; o++) bias[o] = ((b ? b[o] : 0) - mean[o]) * s[o] + beta[o];
  return { weights, bias };
}

// ---------------------------------------------------------------------------------------
// The original nsfwjs model

/** nsfwjs's class order for its MobileNetV2 output. */
export function nsfwjsLabels() {
  return ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
}

/**
 * The directory of nsfwjs's bundled MobileNetV2 files. `nsfwjs/package.json` is not in
 * the package's `exports` map, so resolve its main entry and walk up to the package root.
 */
export function nsfwjsModelDir() {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve('nsfwjs'));
  while (path.basename(dir) !== 'nsfwjs') {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot locate the nsfwjs package root');
    dir = up;
  }
  return path.join(dir, 'dist', 'models', 'mobilenet_v2');
}

/**
 * Evaluates a UMD/browserify wrapper in an empty context and returns its `module.exports`
 * (a JSON-like value).
 * Only `module` and `exports` exist there, so the bundle takes its CommonJS branch and
 * cannot reach anything of ours.
 * @param {string} file
 */
async function evalUmd(file) {
  const code = await readFile(file, 'utf8');
  const module = { exports: {} };
  vm.runInNewContext(code, { module, exports: module.exports }, { filename: file });
  // Objects made in the vm context have that realm's Array/Object: tfjs-layers tests
  // `x instanceof Array` while deserializing, which fails for them ("Object is not
  // iterable"). A JSON round trip rebuilds the value in our realm.
  const value = module.exports;
  return typeof value === 'string' ? value : JSON.parse(JSON.stringify(value));
}

/**
 * Loads the original nsfwjs MobileNetV2 with tfjs-layers, weights dequantized by TF.js.
 * @param {Tf} tf  tfjs-core namespace (the one tfjs-layers uses)
 * @param {any} tfl  `@tensorflow/tfjs-layers` namespace
 * @returns {Promise<any>} a tf.LayersModel
 */
export async function loadNsfwjsLayersModel(tf, tfl) {
  const dir = nsfwjsModelDir();
  const model = /** @type {any} */ (await evalUmd(path.join(dir, 'model.min.js')));
  const manifest = model.weightsManifest;
  /** @type {any[]} */
  const weightSpecs = [];
  /** @type {Uint8Array[]} */
  const shards = [];
  for (const group of manifest) {
    // The manifest's `quantization` fields stay in the specs: TF.js dequantizes u8 itself.
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      const b64 = await evalUmd(path.join(dir, `${p}.min.js`));
      if (typeof b64 !== 'string') throw new Error(`${p}.min.js did not return a base64 string`);
      shards.push(Buffer.from(b64, 'base64'));
    }
  }
  const weightData = concatBytes(shards);
  const handler = { load: async () => ({ modelTopology: model.modelTopology, weightSpecs, weightData }) };
  const layersModel = await tfl.loadLayersModel(handler);
  // tfjs-layers and `tf` must be one tfjs-core instance, or the model's weights live in
  // an engine whose backend was never set up. Cheap to check, confusing to debug.
  if (!(layersModel.weights[0].read() instanceof tf.Tensor)) {
    throw new Error('tfjs-layers uses a different tfjs-core instance than the given tf');
  }
  return layersModel;
}

/** @param {Uint8Array[]} parts @returns {ArrayBuffer} */
function concatBytes(parts) {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out.buffer;
}

// ---------------------------------------------------------------------------------------
// Backends

/**
 * Imports tfjs-core with one backend registered and selected, and waits until it is ready.
 * 'wasm' loads the single-threaded SIMD binary from the package's dist dir (Node has no
 * usable threaded build: TF.js reports no multithread support there).
 * @param {'cpu' | 'wasm'} kind
 * @returns {Promise<Tf>}
 */
export async function initTf(kind) {
  const tf = await import('@tensorflow/tfjs-core');
  // PROD only silences logging here (the cpu backend's "install tfjs-node" banner on
  // first use, deprecation notes); it changes no computation.
  tf.enableProdMode();
  if (kind === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else if (kind === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (!wasmInitialised) {
      // Emscripten in Node reads the .wasm with fs from a plain path (not a file:// URL);
      // its default is the dir of the JS bundle, which is right unless something bundles
      // the backend elsewhere, so say it explicitly. Must happen before the first setBackend.
      const require = createRequire(import.meta.url);
      wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
      wasm.setThreadsCount(1);
      wasmInitialised = true;
    }
  } else {
    throw new Error(`unknown TF.js backend ${kind}`);
  }
  if (!(await tf.setBackend(kind))) throw new Error(`TF.js backend ${kind} failed to initialise`);
  await tf.ready();
  return tf;
}
let wasmInitialised = false;

/**
 * Facts about the TF.js wasm backend in this process, for reports.
 * @param {Tf} tf
 */
export async function wasmInfo(tf) {
  return {
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  };
}
