#!/usr/bin/env node
// Property-based fuzzing of the public API with hostile inputs (fast-check, seeded).
//
//   npm run fuzz                                   # 100,000 cases, seed 1, one worker per core (max 2)
//   node scripts/fuzz.mjs --cases 5000 --seed 7 --workers 1
//   node scripts/fuzz.mjs --seed 1 --worker 0 --replay 1234   # re-run case 1234 of worker 0 and print it
//
// The property, for every generated case:
//   load() / classify() / convertTfjsLayers() either succeed with a model that RUNS (a zero or
//   random input gives an output of the declared length, finite unless the weights explain it;
//   random valid graphs must also match a float64 JavaScript reference), or they reject with a
//   MobileNetWasmError subclass. Never a wasm trap, another exception type, prototype
//   pollution, a changed answer from a model that saw bad input, or a case slower than the limit.
//
// This file is also the case engine of test/fuzz.test.ts: `makeFuzzer(lib, fixtures)` takes the
// library as a parameter (the test passes src/, this script dist/), so the two share every
// generator and check. Running it as a script uses worker threads, with the main thread as a
// watchdog that ends a worker whose case runs longer than --hang-ms and reports the case.

import fc from 'fast-check';
import jpeg from 'jpeg-js';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------
// Small helpers

/** mulberry32, as src/builders.ts. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Slice-by-8 tables: T[k][n] is the CRC of byte n followed by k zero bytes. */
const CRC_T = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k][n] = (t[k - 1][n] >>> 8) ^ t[0][t[k - 1][n] & 0xff];
  return t;
})();

/** CRC-32 (IEEE, as zlib) of b[start, end). */
export function crc32(b, start = 0, end = b.length) {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_T;
  let c = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = (c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))) >>> 0;
    c = t7[lo & 0xff] ^ t6[(lo >>> 8) & 0xff] ^ t5[(lo >>> 16) & 0xff] ^ t4[lo >>> 24] ^
      t3[b[i + 4]] ^ t2[b[i + 5]] ^ t1[b[i + 6]] ^ t0[b[i + 7]];
  }
  for (; i < end; i++) c = t0[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const prod = (s) => s.reduce((a, b) => a * b, 1);
const u32be = (b, o) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const setU32be = (b, o, v) => {
  b[o] = (v >>> 24) & 255;
  b[o + 1] = (v >>> 16) & 255;
  b[o + 2] = (v >>> 8) & 255;
  b[o + 3] = v & 255;
};

/** Float -> IEEE half bits (round to nearest; tiny values flush to zero). Enough for test weights. */
function toHalf(v) {
  if (v === 0 || !Number.isFinite(v)) return 0;
  const s = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  if (e < -14) return s;
  let m = Math.round((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return s | 0x7bff;
  return s | ((e + 15) << 10) | m;
}

// ---------------------------------------------------------------------------------------
// .mnw files: split into header JSON + data section, and rebuild with a valid CRC

export function splitMnw(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const j = dv.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + j)));
  const data = bytes.subarray(Math.ceil((16 + j) / 16) * 16);
  return { header, data };
}

export function joinMnw(headerText, data) {
  const json = new TextEncoder().encode(headerText);
  const start = Math.ceil((16 + json.length) / 16) * 16;
  const out = new Uint8Array(start + data.length);
  const dv = new DataView(out.buffer);
  out.set([0x4d, 0x4e, 0x57, 0x42]);
  dv.setUint32(4, 1, true);
  dv.setUint32(8, json.length, true);
  out.set(json, 16);
  out.set(data, start);
  dv.setUint32(12, crc32(out, 16), true);
  return out;
}

function fixMnwCrc(b) {
  if (b.length < 16) return;
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(12, crc32(b, 16), true);
}

// ---------------------------------------------------------------------------------------
// Byte-level mutations (model files, images, weight data)

const byteOpArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip'), pos: fc.nat(), region: fc.nat(3), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('set'), pos: fc.nat(), region: fc.nat(3), val: fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x30, 0x39, 0x22, 0x2c) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate'), pos: fc.nat(), region: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert'), pos: fc.nat(), region: fc.nat(3), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete'), pos: fc.nat(), region: fc.nat(3), n: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('append'), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }) },
);

/**
 * Applies byte ops. `hot` is the length of the interesting prefix (a file header): region 0..2
 * aim there, region 3 anywhere.
 */
function applyByteOps(src, ops, hot) {
  let b = src;
  for (const o of ops) {
    const span = o.region === 3 || hot === undefined ? b.length : Math.min(hot, b.length);
    const pos = span > 0 ? o.pos % span : 0;
    switch (o.op) {
      case 'flip':
        if (b.length) {
          if (b === src) b = b.slice();
          b[pos] ^= o.xor;
        }
        break;
      case 'set':
        if (b.length) {
          if (b === src) b = b.slice();
          b[pos] = o.val;
        }
        break;
      case 'truncate':
        b = b.slice(0, pos);
        break;
      case 'insert': {
        const out = new Uint8Array(b.length + o.bytes.length);
        out.set(b.subarray(0, pos));
        out.set(o.bytes, pos);
        out.set(b.subarray(pos), pos + o.bytes.length);
        b = out;
        break;
      }
      case 'delete': {
        const n = Math.min(o.n, b.length - pos);
        const out = new Uint8Array(b.length - n);
        out.set(b.subarray(0, pos));
        out.set(b.subarray(pos + n), pos);
        b = out;
        break;
      }
      case 'append': {
        const out = new Uint8Array(b.length + o.bytes.length);
        out.set(b);
        out.set(o.bytes, b.length);
        b = out;
        break;
      }
    }
  }
  return b === src ? src.slice() : b;
}

// ---------------------------------------------------------------------------------------
// JSON document edits (model headers, Keras model.json)

const NUMBERS = [
  0, 1, 2, 3, -1, -2, 0.5, 1.5, 7, 8, 9, 16, 24, 31, 32, 33, 96, 224, 255, 256, 1000, 4096, 4097, 65535, 65536,
  2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 3, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324, 1e-7,
];
const STRINGS = [
  '', 'same', 'valid', 'input', 'relu', 'relu6', 'linear', 'sigmoid', 'softmax', 'conv2d', 'depthwise', 'add', 'dense',
  'globalAvgPool', 'f32', 'f16', 'u8', 'f64', 'float32', 'uint8', 'float16', 'int32', 'string', 'channels_first',
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'x'.repeat(5000), '\u0000', '\ud83d\ude00', 'Conv1',
];
const OTHERS = [
  null, true, false, [], {}, [0], [1], [3], [1, 1], [2, 2], [3, 3], [5, 5], [0, 0], [-1, 3], [1.5, 1.5], [3, 3, 3],
  [1, 4096, 4096, 3], [1, 1, 1, 3], [1, 0, 5, 3], [2, 8, 8, 3], [1, 8, 8, 4], [null, 8, 8, 3], ['a', 'b'], ['input', 'input'],
  { top: 1, bottom: 1, left: 1, right: 1 }, { top: 3, bottom: 0, left: 0, right: 0 }, { top: -1, bottom: 0, left: 0, right: 0 },
  { top: 0.5, bottom: 0, left: 0, right: 0 }, { mean: 'x', variance: 'y', epsilon: 1e-3 }, { dtype: 'uint8', scale: 1e308, min: 0 },
  { dtype: 'uint8' }, { dtype: 'float16' }, { dtype: 'uint16', scale: 0.5, min: -1 }, { dtype: 'int8', scale: 1, min: 0 },
  [[['nope', 0, 0, {}]]], [[]], [[['in', 0, 0, {}], ['in', 0, 0, {}]]], [{ args: [] }],
];
/** Tokens spliced into the JSON text: some are valid JSON (1e999 parses as Infinity), some not. */
const RAW_VALID = ['1e999', '-1e999', '-0', '1e-400', '123456789012345678901234567890', '0.1e1', '"\\ud800"', '{"__proto__":{"polluted":"yes"}}', '[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]'];
const RAW_INVALID = ['NaN', 'Infinity', 'undefined', '[', '{"a":}', "'x'", '0x10', '1.', '.5', '+1'];
const DEEP = '['.repeat(20000) + ']'.repeat(20000);

const jsonValueArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 3, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom(...OTHERS) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 70000 }) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 32, 4096, -1), { maxLength: 5 }) },
);
const rawTokenArb = (valid) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...RAW_VALID) },
    { weight: valid ? 0 : 3, arbitrary: fc.constantFrom(...RAW_INVALID) },
    { weight: 1, arbitrary: fc.constant(DEEP) },
  );

const clone = (v) => (v === undefined ? undefined : structuredClone(v));

/** Every path into a JSON-like value (not into typed arrays; each object once; at most 64 deep). */
function allPaths(root) {
  const out = [];
  const seen = new Set();
  const walk = (v, p) => {
    out.push(p);
    if (!v || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer || seen.has(v) || p.length >= 64) return;
    seen.add(v);
    for (const k of Object.keys(v)) walk(v[k], [...p, k]);
  };
  walk(root, []);
  return out;
}

function getAt(root, path) {
  let v = root;
  for (const k of path) v = v?.[k];
  return v;
}

/** Sets (or deletes, with `del`) the value at `path`; returns the possibly new root. */
function setAt(root, path, value, del = false) {
  if (path.length === 0) return del ? {} : value;
  const parent = getAt(root, path.slice(0, -1));
  if (!parent || typeof parent !== 'object') return root;
  const k = path[path.length - 1];
  if (del) {
    if (Array.isArray(parent)) parent.splice(Number(k), 1);
    else delete parent[k];
  } else {
    Object.defineProperty(parent, k, { value, writable: true, enumerable: true, configurable: true });
  }
  return root;
}

const pick = (arr, n) => (arr.length ? arr[n % arr.length] : undefined);

/** Generic edits on any JSON document. */
const genericEditArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ e: fc.constant('set'), at: fc.nat(), v: jsonValueArb }) },
  { weight: 1, arbitrary: fc.record({ e: fc.constant('del'), at: fc.nat() }) },
);
const rawEditArb = (valid) => fc.record({ e: fc.constant('raw'), at: fc.nat(), tok: rawTokenArb(valid) });

function applyGeneric(doc, e, raws) {
  const paths = allPaths(doc);
  const path = pick(paths, e.at);
  if (e.e === 'set') return setAt(doc, path, clone(e.v));
  if (e.e === 'del') return setAt(doc, path, undefined, true);
  if (e.e === 'raw') {
    // Prefer number leaves: that is where 1e999 etc. are interesting.
    const nums = paths.filter((p) => typeof getAt(doc, p) === 'number');
    const p = nums.length && e.at % 3 !== 0 ? pick(nums, e.at) : path;
    raws.push(e.tok);
    return setAt(doc, p, `@@RAW${raws.length - 1}@@`);
  }
  return doc;
}

function serialize(doc, raws) {
  let text = JSON.stringify(doc) ?? 'null';
  raws.forEach((tok, i) => {
    text = text.replace(`"@@RAW${i}@@"`, () => tok);
  });
  return text;
}

function layerListEdit(list, e) {
  if (!Array.isArray(list) || list.length === 0) return;
  const i = e.i % list.length;
  const j = e.j % list.length;
  switch (e.e) {
    case 'swap':
      [list[i], list[j]] = [list[j], list[i]];
      break;
    case 'remove':
      list.splice(i, 1);
      break;
    case 'dup':
      list.splice(j, 0, clone(list[i]));
      break;
    case 'reverse':
      list.reverse();
      break;
  }
}

const listEditArb = fc.record({ e: fc.constantFrom('swap', 'remove', 'dup', 'reverse'), i: fc.nat(), j: fc.nat() });

// --- .mnw header edits -------------------------------------------------------------------

const DIMS = [0, 1, 2, 3, 5, 7, 8, 9, 16, 31, 32, 33, 64, 96, 127, 224, 225, 1000, 2048, 4096, 4097, 65536, 2 ** 31];
const LAYER_FIELDS = [
  'op', 'name', 'input', 'inputs', 'kernel', 'stride', 'padding', 'inChannels', 'outChannels', 'channels', 'inFeatures',
  'outFeatures', 'weights', 'bias', 'batchNorm', 'activation',
];
const DESC_FIELDS = ['family', 'input', 'inputShape', 'layers', 'output', 'labels', 'preprocess', 'meta'];
const numTokArb = fc.oneof(fc.constantFrom('0', '1', '-1', '1e308', '-1e308', '1e999', '-1e999', '1e-300', '0.001', '255', '1e30'), fc.double({ noNaN: true, noDefaultInfinity: true }).map(String));

const mnwEditArb = (opts) =>
  fc.oneof(
    { weight: 4, arbitrary: genericEditArb },
    { weight: 1, arbitrary: rawEditArb(false) },
    { weight: 2, arbitrary: listEditArb },
    { weight: 3, arbitrary: fc.record({ e: fc.constant('layerField'), i: fc.nat(), f: fc.constantFrom(...LAYER_FIELDS), v: jsonValueArb }) },
    { weight: 2, arbitrary: fc.record({ e: fc.constant('rewire'), i: fc.nat(), j: fc.nat(), self: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ e: fc.constant('rename'), i: fc.nat(), j: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ e: fc.constant('inputSize'), h: fc.constantFrom(...opts.dims), w: fc.constantFrom(...opts.dims), square: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ e: fc.constant('descField'), f: fc.constantFrom(...DESC_FIELDS), v: jsonValueArb }) },
    { weight: 2, arbitrary: fc.record({ e: fc.constant('tensorShape'), k: fc.nat(), shape: fc.array(fc.constantFrom(0, 1, 2, 3, 4, 8, 9, 4096, 65536, -1, 1.5), { maxLength: 5 }), fix: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ e: fc.constant('tensorDtype'), k: fc.nat(), dtype: fc.constantFrom('f32', 'f16', 'u8', 'f64', 'i8', ''), fix: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ e: fc.constant('quant'), k: fc.nat(), scale: numTokArb, min: numTokArb }) },
    { weight: 1, arbitrary: fc.record({ e: fc.constant('offset'), k: fc.nat(), v: fc.constantFrom(-4, 0, 1, 2, 4, 8, 4096, 2 ** 31, 2 ** 32, 2 ** 53, 1e21) }) },
    { weight: 1, arbitrary: fc.record({ e: fc.constant('epsilon'), i: fc.nat(), tok: fc.constantFrom('0', '-1', '-0.5', '1e-300', '1e308', '1e999', '-1e999') }) },
  );

const DTYPE_BYTES = { f32: 4, f16: 2, u8: 1 };

function applyMnwEdit(doc, e, raws) {
  const desc = doc?.desc;
  const layers = Array.isArray(desc?.layers) ? desc.layers : [];
  const tensors = Array.isArray(doc?.tensors) ? doc.tensors : [];
  const isObj = (v) => (v && typeof v === 'object' ? v : undefined);
  const layer = (i) => (layers.length ? isObj(layers[i % layers.length]) : undefined);
  const tensor = (k) => (tensors.length ? isObj(tensors[k % tensors.length]) : undefined);
  switch (e.e) {
    case 'set':
    case 'del':
    case 'raw':
      return applyGeneric(doc, e, raws);
    case 'swap':
    case 'remove':
    case 'dup':
    case 'reverse':
      layerListEdit(layers, e);
      return doc;
    case 'layerField': {
      const l = layer(e.i);
      if (l && typeof l === 'object') l[e.f] = clone(e.v);
      return doc;
    }
    case 'rewire': {
      const l = layer(e.i);
      const target = e.self ? l : layer(e.j);
      if (l && typeof l === 'object' && target) {
        if (Array.isArray(l.inputs)) l.inputs[e.j % 2] = target.name;
        else l.input = target.name;
      }
      return doc;
    }
    case 'rename': {
      const l = layer(e.i);
      const other = layer(e.j);
      if (l && typeof l === 'object' && other) l.name = e.i % 2 ? other.name : desc.input;
      return doc;
    }
    case 'inputSize':
      if (desc && typeof desc === 'object') desc.inputShape = [1, e.h, e.square ? e.h : e.w, 3];
      return doc;
    case 'descField':
      if (desc && typeof desc === 'object') desc[e.f] = clone(e.v);
      return doc;
    case 'tensorShape': {
      const t = tensor(e.k);
      if (t) {
        t.shape = [...e.shape];
        if (e.fix && Number.isSafeInteger(prod(e.shape)) && DTYPE_BYTES[t.dtype]) t.byteLength = prod(e.shape) * DTYPE_BYTES[t.dtype];
      }
      return doc;
    }
    case 'tensorDtype': {
      const t = tensor(e.k);
      if (t) {
        t.dtype = e.dtype;
        if (e.dtype === 'u8' && t.scale === undefined) Object.assign(t, { scale: 0.01, min: -1 });
        if (e.fix && DTYPE_BYTES[e.dtype] && Array.isArray(t.shape)) t.byteLength = prod(t.shape) * DTYPE_BYTES[e.dtype];
      }
      return doc;
    }
    case 'quant': {
      const u8 = tensors.filter((t) => t && typeof t === 'object' && t.dtype === 'u8');
      const t = u8.length ? pick(u8, e.k) : tensor(e.k);
      if (t) {
        raws.push(e.scale, e.min);
        t.scale = `@@RAW${raws.length - 2}@@`;
        t.min = `@@RAW${raws.length - 1}@@`;
      }
      return doc;
    }
    case 'offset': {
      const t = tensor(e.k);
      if (t) t.offset = e.v;
      return doc;
    }
    case 'epsilon': {
      const withBn = layers.filter((l) => l?.batchNorm && typeof l.batchNorm === 'object');
      const l = pick(withBn, e.i);
      if (l) {
        raws.push(e.tok);
        l.batchNorm.epsilon = `@@RAW${raws.length - 1}@@`;
      }
      return doc;
    }
  }
  return doc;
}

// --- Keras model.json edits ---------------------------------------------------------------

const KERAS_CLASSES = [
  'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'BatchNormalization', 'ReLU', 'Activation', 'Softmax', 'Add', 'Concatenate',
  'GlobalAveragePooling2D', 'AveragePooling2D', 'MaxPooling2D', 'Flatten', 'Dense', 'Dropout', 'SpatialDropout2D', 'InputLayer',
  'ZeroPadding2D', 'Reshape', 'LeakyReLU', 'Lambda', '', 'Model', 'Functional', 'Sequential', 'toString', '__proto__',
];
const KERAS_FIELDS = [
  'filters', 'kernel_size', 'strides', 'padding', 'activation', 'use_bias', 'depth_multiplier', 'dilation_rate', 'groups',
  'data_format', 'units', 'axis', 'epsilon', 'scale', 'center', 'max_value', 'negative_slope', 'threshold', 'pool_size',
  'keepdims', 'batch_input_shape', 'batch_shape', 'rate', 'name',
];

const tfjsEditArb = fc.oneof(
  { weight: 4, arbitrary: genericEditArb },
  { weight: 1, arbitrary: rawEditArb(true) },
  { weight: 2, arbitrary: listEditArb },
  { weight: 4, arbitrary: fc.record({ e: fc.constant('cfg'), i: fc.nat(), f: fc.constantFrom(...KERAS_FIELDS), v: jsonValueArb }) },
  { weight: 1, arbitrary: fc.record({ e: fc.constant('cls'), i: fc.nat(), cls: fc.constantFrom(...KERAS_CLASSES) }) },
  { weight: 2, arbitrary: fc.record({ e: fc.constant('inbound'), i: fc.nat(), j: fc.nat(), k: fc.nat(), mode: fc.constantFrom('one', 'two', 'none', 'self', 'keras3', 'shared') }) },
  { weight: 1, arbitrary: fc.record({ e: fc.constant('lname'), i: fc.nat(), j: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ e: fc.constant('weight'), k: fc.nat(), f: fc.constantFrom('shape', 'dtype', 'quantization', 'name'), v: jsonValueArb }) },
  { weight: 1, arbitrary: fc.record({ e: fc.constant('data'), op: byteOpArb }) },
);

function kerasLayers(doc) {
  const t = doc?.modelTopology;
  const model = t?.model_config && typeof t.model_config === 'object' ? t.model_config : t;
  const cfg = model?.config;
  const list = Array.isArray(cfg) ? cfg : cfg?.layers;
  return Array.isArray(list) ? list : [];
}

function manifestWeights(doc) {
  const groups = Array.isArray(doc?.weightsManifest) ? doc.weightsManifest : [];
  return groups.flatMap((g) => (Array.isArray(g?.weights) ? g.weights : []));
}

function applyTfjsEdit(state, e, raws) {
  let doc = state.doc;
  const layers = kerasLayers(doc);
  const layer = (i) => (layers.length ? layers[i % layers.length] : undefined);
  const nameOf = (l) => l?.name ?? l?.config?.name;
  switch (e.e) {
    case 'set':
    case 'del':
    case 'raw':
      state.doc = applyGeneric(doc, e, raws);
      return;
    case 'swap':
    case 'remove':
    case 'dup':
    case 'reverse':
      layerListEdit(layers, e);
      return;
    case 'cfg': {
      const l = layer(e.i);
      if (l?.config && typeof l.config === 'object') l.config[e.f] = clone(e.v);
      return;
    }
    case 'cls': {
      const l = layer(e.i);
      if (l && typeof l === 'object') l.class_name = e.cls;
      return;
    }
    case 'inbound': {
      const l = layer(e.i);
      if (!l || typeof l !== 'object') return;
      const a = nameOf(layer(e.j));
      const b = nameOf(layer(e.k));
      const ref = (n) => [n, 0, 0, {}];
      l.inbound_nodes =
        e.mode === 'one' ? [[ref(a)]]
        : e.mode === 'two' ? [[ref(a), ref(b)]]
        : e.mode === 'none' ? []
        : e.mode === 'self' ? [[ref(nameOf(l))]]
        : e.mode === 'shared' ? [[ref(a)], [ref(b)]]
        : [{ args: [{ class_name: '__keras_tensor__', config: { keras_history: [a, 0, 0] } }], kwargs: {} }];
      return;
    }
    case 'lname': {
      const l = layer(e.i);
      const other = layer(e.j);
      if (l && typeof l === 'object' && other) {
        const n = nameOf(other);
        l.name = n;
        if (l.config && typeof l.config === 'object') l.config.name = n;
      }
      return;
    }
    case 'weight': {
      const w = pick(manifestWeights(doc), e.k);
      if (w && typeof w === 'object') w[e.f] = clone(e.v);
      return;
    }
    case 'data':
      state.data = applyByteOps(state.data, [e.op]);
      return;
  }
}

// ---------------------------------------------------------------------------------------
// Images: small deterministic files of every kind we accept

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function pngChunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  setU32be(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  setU32be(out, 8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function concatBytes(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A non-interlaced PNG. `sample(x, y, s)` gives sample s of pixel (x, y) in [0, 2^depth).
 * Filter type per row cycles through none/sub/up so unfiltering paths are exercised.
 */
export function buildPng(width, height, colorType, depth, sample, extra = []) {
  const spp = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  const rowBytes = Math.ceil((width * spp * depth) / 8);
  const bpp = Math.max(1, (spp * depth) / 8);
  const raw = new Uint8Array(height * (rowBytes + 1));
  let prev = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const row = new Uint8Array(rowBytes);
    let bit = 0;
    for (let x = 0; x < width; x++) {
      for (let s = 0; s < spp; s++) {
        const v = sample(x, y, s);
        if (depth === 16) {
          row[bit / 8] = v >> 8;
          row[bit / 8 + 1] = v & 255;
        } else {
          row[bit >> 3] |= v << (8 - depth - (bit & 7));
        }
        bit += depth;
      }
    }
    const filter = y % 3;
    const o = y * (rowBytes + 1);
    raw[o] = filter;
    for (let i = 0; i < rowBytes; i++) {
      const left = i >= bpp ? row[i - bpp] : 0;
      raw[o + 1 + i] = (row[i] - (filter === 1 ? left : filter === 2 ? prev[i] : 0)) & 255;
    }
    prev = row;
  }
  const ihdr = new Uint8Array(13);
  setU32be(ihdr, 0, width);
  setU32be(ihdr, 4, height);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  return concatBytes([
    Uint8Array.from(PNG_SIG),
    pngChunk('IHDR', ihdr),
    ...extra,
    pngChunk('IDAT', new Uint8Array(deflateSync(raw))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/**
 * A baseline JPEG whose 8x8 blocks are flat (DC only, quantizer 1), so decoded values are
 * exact: `value(c, bx, by)` is component c of block (bx, by). 1, 3 or 4 components, no
 * subsampling; `adobe` adds an APP14 "Adobe" marker with that transform code (0 = CMYK,
 * 1 = YCbCr, 2 = YCCK); `exif` adds an APP1 Exif segment with that orientation.
 */
export function buildFlatJpeg({ width, height, comps, value, adobe, exif }) {
  const seg = (marker, body) => concatBytes([Uint8Array.of(0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255), body]);
  const parts = [Uint8Array.of(0xff, 0xd8)];
  if (exif !== undefined) parts.push(seg(0xe1, exifSegment(exif, false)));
  if (adobe !== undefined) parts.push(seg(0xee, Uint8Array.of(0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, adobe)));
  parts.push(seg(0xdb, concatBytes([Uint8Array.of(0), new Uint8Array(64).fill(1)])));
  const sof = [8, height >> 8, height & 255, width >> 8, width & 255, comps];
  for (let c = 0; c < comps; c++) sof.push(c + 1, 0x11, 0);
  parts.push(seg(0xc0, Uint8Array.from(sof)));
  const dcBits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
  parts.push(seg(0xc4, Uint8Array.from([0x00, ...dcBits, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])));
  parts.push(seg(0xc4, Uint8Array.from([0x10, 1, ...new Array(15).fill(0), 0x00])));
  const sos = [comps];
  for (let c = 0; c < comps; c++) sos.push(c + 1, 0x00);
  sos.push(0, 63, 0);
  parts.push(seg(0xda, Uint8Array.from(sos)));
  // Canonical DC codes.
  const dcCode = [];
  let code = 0;
  let sym = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < dcBits[len - 1]; i++) dcCode[sym++] = { code: code++, len };
    code <<= 1;
  }
  const out = [];
  let acc = 0;
  let n = 0;
  const put = (v, len) => {
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | ((v >> i) & 1);
      if (++n === 8) {
        out.push(acc);
        if (acc === 0xff) out.push(0);
        acc = 0;
        n = 0;
      }
    }
  };
  const pred = new Array(comps).fill(0);
  for (let by = 0; by < Math.ceil(height / 8); by++) {
    for (let bx = 0; bx < Math.ceil(width / 8); bx++) {
      for (let c = 0; c < comps; c++) {
        const dc = (value(c, bx, by) - 128) * 8;
        const diff = dc - pred[c];
        pred[c] = dc;
        const s = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
        put(dcCode[s].code, dcCode[s].len);
        if (s) put(diff < 0 ? diff - 1 + (1 << s) : diff, s);
        put(0, 1); // EOB
      }
    }
  }
  if (n) put(0x7f, 8 - n); // pad with ones
  parts.push(Uint8Array.from(out), Uint8Array.of(0xff, 0xd9));
  return concatBytes(parts);
}

/** "Exif\0\0" + a TIFF header and IFD0 with one Orientation entry. */
export function exifSegment(orientation, bigEndian) {
  const b = new Uint8Array(6 + 8 + 2 + 12 + 4);
  b.set([0x45, 0x78, 0x69, 0x66, 0, 0]);
  const dv = new DataView(b.buffer, 6);
  const le = !bigEndian;
  dv.setUint16(0, bigEndian ? 0x4d4d : 0x4949, false);
  dv.setUint16(2, 42, le);
  dv.setUint32(4, 8, le);
  dv.setUint16(8, 1, le);
  dv.setUint16(10, 0x0112, le);
  dv.setUint16(12, 3, le);
  dv.setUint32(14, 1, le);
  dv.setUint16(18, orientation, le);
  dv.setUint32(22, 0, le);
  return b;
}

function downscale(img, w, h) {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = Math.floor((x * img.width) / w);
      const sy = Math.floor((y * img.height) / h);
      data.set(img.data.subarray((sy * img.width + sx) * 4, (sy * img.width + sx) * 4 + 4), (y * w + x) * 4);
    }
  }
  return { data, width: w, height: h };
}

async function imageBases(lib) {
  const cat = await lib.decodeImage(new Uint8Array(readFileSync(join(ROOT, 'samples/cat-photo.jpg'))));
  const small = downscale(cat, 48, 32);
  const tiny = downscale(cat, 17, 11);
  const enc = (img, q) => new Uint8Array(jpeg.encode({ data: img.data, width: img.width, height: img.height }, q).data);
  const px = (img, x, y, s) => img.data[(y * img.width + x) * 4 + s];
  const grad = (x, y, s) => (x * 37 + y * 91 + s * 53) & 255;
  const plte = new Uint8Array(16 * 3).map((_, i) => (i * 17) & 255);
  const trns = new Uint8Array(16).map((_, i) => (i * 16) & 255);
  return [
    { name: 'jpeg 48x32 q75', bytes: enc(small, 75) },
    { name: 'jpeg 17x11 q15', bytes: enc(tiny, 15) },
    { name: 'jpeg 1x1', bytes: enc({ data: Uint8Array.of(200, 100, 50, 255), width: 1, height: 1 }, 90) },
    { name: 'jpeg grey 24x16', bytes: buildFlatJpeg({ width: 24, height: 16, comps: 1, value: (c, x, y) => 40 + 60 * x + 30 * y }) },
    { name: 'jpeg CMYK (Adobe) 16x16', bytes: buildFlatJpeg({ width: 16, height: 16, comps: 4, adobe: 0, value: (c, x, y) => 60 + 40 * c + 50 * x + 20 * y }) },
    { name: 'jpeg YCCK (Adobe) 16x8', bytes: buildFlatJpeg({ width: 16, height: 8, comps: 4, adobe: 2, value: (c, x) => (c === 0 ? 120 + 40 * x : 128) }) },
    { name: 'jpeg EXIF orientation 6', bytes: buildFlatJpeg({ width: 16, height: 8, comps: 3, exif: 6, value: (c, x) => 50 + 100 * x + c }) },
    { name: 'sample cat-photo.jpg', bytes: new Uint8Array(readFileSync(join(ROOT, 'samples/cat-photo.jpg'))) },
    { name: 'png rgba8 24x16', bytes: buildPng(24, 16, 6, 8, (x, y, s) => (s === 3 ? (x * 11) & 255 : px(small, x, y, s))) },
    { name: 'png rgb8 24x16', bytes: buildPng(24, 16, 2, 8, (x, y, s) => px(small, x, y, s)) },
    { name: 'png grey8 17x9', bytes: buildPng(17, 9, 0, 8, grad) },
    { name: 'png grey+alpha 16-bit 12x10', bytes: buildPng(12, 10, 4, 16, (x, y, s) => (grad(x, y, s) << 8) | grad(y, x, s)) },
    { name: 'png rgb16 10x6', bytes: buildPng(10, 6, 2, 16, (x, y, s) => grad(x, y, s) * 257) },
    { name: 'png palette 4-bit + tRNS 13x7', bytes: buildPng(13, 7, 3, 4, (x, y) => (x + y) & 15, [pngChunk('PLTE', plte), pngChunk('tRNS', trns)]) },
    { name: 'png grey 1-bit 9x9', bytes: buildPng(9, 9, 0, 1, (x, y) => (x ^ y) & 1) },
    { name: 'png 1x1 rgba', bytes: buildPng(1, 1, 6, 8, (x, y, s) => [10, 20, 30, 0][s]) },
    { name: 'sample beach-trip-drawing.png', bytes: new Uint8Array(readFileSync(join(ROOT, 'samples/beach-trip-drawing.png'))) },
  ];
}

/** Chunk list of a PNG (offsets of each chunk's length field), tolerant of damage. */
function pngChunks(b) {
  const out = [];
  let o = 8;
  while (o + 12 <= b.length && out.length < 64) {
    const len = u32be(b, o);
    out.push({ at: o, len, type: String.fromCharCode(...b.subarray(o + 4, o + 8)) });
    if (o + 12 + len > b.length) break;
    o += 12 + len;
  }
  return out;
}

/** Marker segments of a JPEG before SOS: { at (the 0xFF), marker, len }. */
function jpegSegments(b) {
  const out = [];
  let o = 2;
  while (o + 4 <= b.length && b[o] === 0xff && out.length < 64) {
    const marker = b[o + 1];
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      o += 2;
      continue;
    }
    const len = (b[o + 2] << 8) | b[o + 3];
    out.push({ at: o, marker, len });
    if (marker === 0xda) break;
    o += 2 + len;
  }
  return out;
}

const imageOpArb = (opts) =>
  fc.oneof(
    { weight: 5, arbitrary: byteOpArb },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('pngChunk'), at: fc.nat(), pos: fc.nat(), val: fc.nat(255), fixCrc: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('pngHeader'), field: fc.constantFrom('width', 'height', 'depth', 'colorType', 'compression', 'filter', 'interlace'), v: fc.constantFrom(...opts.pngDims) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('pngDupChunk'), at: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('jpegSeg'), at: fc.nat(), pos: fc.nat(), val: fc.nat(255) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('jpegSof'), field: fc.constantFrom('width', 'height', 'precision', 'components', 'sampling', 'tq', 'marker'), v: fc.constantFrom(...opts.jpegDims) }) },
  );

function applyImageOps(src, ops) {
  let b = src.slice();
  for (const o of ops) {
    switch (o.op) {
      case 'pngChunk': {
        const c = pick(pngChunks(b), o.at);
        if (!c) break;
        const span = Math.max(1, Math.min(c.len, b.length - c.at - 8));
        const p = c.at + 8 + (o.pos % span);
        if (p < b.length) b[p] = o.val;
        if (o.fixCrc && c.at + 12 + c.len <= b.length) setU32be(b, c.at + 8 + c.len, crc32(b, c.at + 4, c.at + 8 + c.len));
        break;
      }
      case 'pngHeader': {
        if (b.length < 33 || u32be(b, 8) !== 13) break;
        const f = { width: [16, 4], height: [20, 4], depth: [24, 1], colorType: [25, 1], compression: [26, 1], filter: [27, 1], interlace: [28, 1] }[o.field];
        if (f[1] === 4) setU32be(b, f[0], o.v >>> 0);
        else b[f[0]] = o.v & 255;
        setU32be(b, 29, crc32(b, 12, 29));
        break;
      }
      case 'pngDupChunk': {
        const c = pick(pngChunks(b), o.at);
        if (!c || c.at + 12 + c.len > b.length) break;
        const chunk = b.slice(c.at, c.at + 12 + c.len);
        b = concatBytes([b.subarray(0, c.at), chunk, b.subarray(c.at)]);
        break;
      }
      case 'jpegSeg': {
        const s = pick(jpegSegments(b), o.at);
        if (!s) break;
        const p = s.at + 4 + (o.pos % Math.max(1, s.len - 2));
        if (p < b.length) b[p] = o.val;
        break;
      }
      case 'jpegSof': {
        const s = jpegSegments(b).find((x) => x.marker >= 0xc0 && x.marker <= 0xcf && x.marker !== 0xc4 && x.marker !== 0xcc && x.marker !== 0xc8);
        if (!s || s.at + 10 > b.length) break;
        const o4 = s.at + 4;
        if (o.field === 'width' || o.field === 'height') {
          const at = o4 + (o.field === 'height' ? 1 : 3);
          b[at] = (o.v >> 8) & 255;
          b[at + 1] = o.v & 255;
        } else if (o.field === 'precision') b[o4] = o.v & 255;
        else if (o.field === 'components') b[o4 + 5] = o.v & 255;
        else if (o.field === 'sampling' && o4 + 7 < b.length) b[o4 + 7] = o.v & 255;
        else if (o.field === 'tq' && o4 + 8 < b.length) b[o4 + 8] = o.v & 255;
        else if (o.field === 'marker') b[s.at + 1] = 0xc0 + (o.v & 15);
        break;
      }
      default:
        b = applyByteOps(b, [o], 64);
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------
// Random valid-ish graphs (every op, odd sizes, all dtypes) and a float64 reference

const actArb = fc.constantFrom('linear', 'relu', 'relu6');
const padArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('same', 'valid') },
  { weight: 1, arbitrary: fc.record({ top: fc.nat(2), bottom: fc.nat(2), left: fc.nat(2), right: fc.nat(2) }) },
);
const blockArb = fc.oneof(
  fc.record({ t: fc.constant('conv3'), stride: fc.constantFrom(1, 2), pad: padArb, out: fc.integer({ min: 1, max: 24 }), act: actArb, bn: fc.boolean(), bias: fc.boolean() }),
  fc.record({ t: fc.constant('conv1'), out: fc.integer({ min: 1, max: 40 }), act: actArb, bn: fc.boolean(), bias: fc.boolean() }),
  fc.record({ t: fc.constant('dw'), stride: fc.constantFrom(1, 2), pad: padArb, act: actArb, bn: fc.boolean(), bias: fc.boolean() }),
  fc.record({
    t: fc.constant('ir'), expand: fc.nat(6), stride: fc.constantFrom(1, 2), pad: padArb, out: fc.option(fc.integer({ min: 1, max: 24 })),
    act: actArb, act2: actArb, residual: fc.boolean(), bn: fc.boolean(),
  }),
  fc.record({ t: fc.constant('skip'), back: fc.integer({ min: 1, max: 4 }) }),
);
export const graphArb = fc.record({
  h: fc.integer({ min: 1, max: 40 }),
  w: fc.integer({ min: 1, max: 40 }),
  blocks: fc.array(blockArb, { minLength: 1, maxLength: 6 }),
  head: fc.constantFrom('map', 'gap', 'dense', 'softmax'),
  classes: fc.integer({ min: 1, max: 12 }),
  seed: fc.nat(),
  kernels: fc.constantFrom('auto', 'x86', 'arm', 'scalar'),
  // Threads take ~300 ms to boot: a few cases check that threaded runs match the reference too.
  threads: fc.oneof({ weight: 18, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(2, 3) }),
});

function resolvePads(padding, inH, inW, k, stride) {
  if (padding === 'same') {
    const one = (size) => {
      const out = Math.ceil(size / stride);
      const total = Math.max((out - 1) * stride + k - size, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2), out];
    };
    const [top, bottom, outH] = one(inH);
    const [left, right, outW] = one(inW);
    return { top, bottom, left, right, outH, outW };
  }
  const p = padding === 'valid' ? { top: 0, bottom: 0, left: 0, right: 0 } : padding;
  return { ...p, outH: Math.floor((inH + p.top + p.bottom - k) / stride) + 1, outW: Math.floor((inW + p.left + p.right - k) / stride) + 1 };
}

/** Builds the ModelSource of a graph case; `valid` is whether every layer has a non-empty output. */
export function buildGraph(g) {
  const r = mulberry32(g.seed);
  const layers = [];
  const tensors = [];
  const shapes = new Map([['input', [1, g.h, g.w, 3]]]);
  const history = ['input'];
  let valid = true;
  let n = 0;
  const tensor = (name, shape, lo, hi) => {
    const count = prod(shape);
    const kind = r();
    if (kind < 0.6) {
      const f = new Float32Array(count);
      for (let i = 0; i < count; i++) f[i] = lo + (hi - lo) * r();
      tensors.push({ name, shape, dtype: 'f32', data: new Uint8Array(f.buffer) });
    } else if (kind < 0.8) {
      const d = new Uint8Array(count * 2);
      const dv = new DataView(d.buffer);
      for (let i = 0; i < count; i++) dv.setUint16(2 * i, toHalf(lo + (hi - lo) * r()), true);
      tensors.push({ name, shape, dtype: 'f16', data: d });
    } else {
      const d = new Uint8Array(count);
      for (let i = 0; i < count; i++) d[i] = Math.floor(r() * 256);
      tensors.push({ name, shape, dtype: 'u8', data: d, scale: (hi - lo) / 255, min: lo });
    }
    return name;
  };
  const bn = (name, c) => ({
    gamma: tensor(`${name}/gamma`, [c], 0.5, 1.5),
    beta: tensor(`${name}/beta`, [c], -0.2, 0.2),
    mean: tensor(`${name}/mean`, [c], -0.2, 0.2),
    variance: tensor(`${name}/var`, [c], 0.5, 1.5),
    epsilon: 1e-3,
  });
  const cur = () => history[history.length - 1];
  const emit = (layer, shape) => {
    layers.push(layer);
    shapes.set(layer.name, shape);
    history.push(layer.name);
    if (shape.slice(1).some((d) => d <= 0)) valid = false;
  };
  const conv = (input, k, stride, pad, out, act, withBn, withBias) => {
    const [, H, W, C] = shapes.get(input);
    const name = `l${n++}`;
    const a = Math.sqrt(6 / (k * k * C));
    const layer = {
      op: 'conv2d', name, input, kernel: [k, k], stride, padding: pad, inChannels: C, outChannels: out,
      weights: tensor(`${name}/w`, [k, k, C, out], -a, a), activation: act,
    };
    if (withBias) layer.bias = tensor(`${name}/b`, [out], -0.1, 0.1);
    if (withBn) layer.batchNorm = bn(name, out);
    const p = resolvePads(pad, H, W, k, stride);
    emit(layer, [1, p.outH, p.outW, out]);
    return name;
  };
  const dw = (input, stride, pad, act, withBn, withBias) => {
    const [, H, W, C] = shapes.get(input);
    const name = `l${n++}`;
    const layer = {
      op: 'depthwise', name, input, kernel: [3, 3], stride, padding: pad, channels: C,
      weights: tensor(`${name}/w`, [3, 3, C, 1], -0.8, 0.8), activation: act,
    };
    if (withBias) layer.bias = tensor(`${name}/b`, [C], -0.1, 0.1);
    if (withBn) layer.batchNorm = bn(name, C);
    const p = resolvePads(pad, H, W, 3, stride);
    emit(layer, [1, p.outH, p.outW, C]);
    return name;
  };
  for (const b of g.blocks) {
    if (!valid) break;
    const input = cur();
    const [, , , C] = shapes.get(input);
    switch (b.t) {
      case 'conv3':
        conv(input, 3, b.stride, b.pad, b.out, b.act, b.bn, b.bias);
        break;
      case 'conv1':
        conv(input, 1, 1, 'valid', b.out, b.act, b.bn, b.bias);
        break;
      case 'dw':
        dw(input, b.stride, b.pad, b.act, b.bn, b.bias);
        break;
      case 'ir': {
        const e = b.expand ? conv(input, 1, 1, 'valid', C * b.expand, b.act, b.bn, false) : input;
        const d = dw(e, b.stride, b.pad, b.act, b.bn, false);
        if (!valid) break;
        const out = b.residual ? C : (b.out ?? C);
        const p = conv(d, 1, 1, 'valid', out, b.act2, b.bn, !b.bn);
        if (b.residual && shapes.get(p).join() === shapes.get(input).join()) {
          emit({ op: 'add', name: `l${n++}`, inputs: [p, input] }, [...shapes.get(p)]);
        }
        break;
      }
      case 'skip': {
        const other = history[Math.max(0, history.length - 1 - b.back)];
        if (other !== input && shapes.get(other).join() === shapes.get(input).join()) {
          emit({ op: 'add', name: `l${n++}`, inputs: [input, other] }, [...shapes.get(input)]);
        }
        break;
      }
    }
  }
  if (valid && g.head !== 'map') {
    const [, , , C] = shapes.get(cur());
    emit({ op: 'globalAvgPool', name: `l${n++}`, input: cur() }, [1, C]);
    if (g.head !== 'gap') {
      const name = `l${n++}`;
      const a = Math.sqrt(6 / C);
      emit({ op: 'dense', name, input: cur(), inFeatures: C, outFeatures: g.classes, weights: tensor(`${name}/w`, [C, g.classes], -a, a), bias: tensor(`${name}/b`, [g.classes], -0.1, 0.1), activation: 'linear' }, [1, g.classes]);
      if (g.head === 'softmax') emit({ op: 'softmax', name: `l${n++}`, input: name }, [1, g.classes]);
    }
  }
  if (layers.length === 0) valid = false;
  const desc = { family: 'fuzz-graph', input: 'input', inputShape: [1, g.h, g.w, 3], layers, output: cur() };
  return { src: { desc, tensors }, valid };
}

/** Float64 forward pass of a description, straight from the definitions. */
export function referenceForward(src, dequantize, x) {
  const T = new Map(src.tensors.map((t) => [t.name, dequantize(t)]));
  const acts = new Map([[src.desc.input, { shape: src.desc.inputShape, v: Float64Array.from(x) }]]);
  const clampAct = (v, act) => (act === 'relu' ? Math.max(0, v) : act === 'relu6' ? Math.min(6, Math.max(0, v)) : v);
  const fold = (l, n) => {
    const scale = new Float64Array(n).fill(1);
    const bias = new Float64Array(n);
    if (l.bias) bias.set(T.get(l.bias));
    const bn = l.batchNorm;
    if (bn) {
      const [mean, vr] = [T.get(bn.mean), T.get(bn.variance)];
      const gamma = bn.gamma ? T.get(bn.gamma) : undefined;
      const beta = bn.beta ? T.get(bn.beta) : undefined;
      for (let c = 0; c < n; c++) {
        scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(vr[c] + bn.epsilon);
        bias[c] = (bias[c] - mean[c]) * scale[c] + (beta ? beta[c] : 0);
      }
    }
    return { scale, bias };
  };
  for (const l of src.desc.layers) {
    if (l.op === 'conv2d' || l.op === 'depthwise') {
      const { shape, v } = acts.get(l.input);
      const [, H, W, C] = shape;
      const k = l.kernel[0];
      const N = l.op === 'conv2d' ? l.outChannels : C;
      const p = resolvePads(l.padding, H, W, k, l.stride);
      const w = T.get(l.weights);
      const { scale, bias } = fold(l, N);
      const out = new Float64Array(p.outH * p.outW * N);
      for (let oy = 0; oy < p.outH; oy++) {
        for (let ox = 0; ox < p.outW; ox++) {
          for (let o = 0; o < N; o++) {
            let acc = 0;
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * l.stride - p.top + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = ox * l.stride - p.left + kx;
                if (ix < 0 || ix >= W) continue;
                const base = (iy * W + ix) * C;
                if (l.op === 'depthwise') acc += v[base + o] * w[(ky * k + kx) * C + o];
                else for (let c = 0; c < C; c++) acc += v[base + c] * w[((ky * k + kx) * C + c) * N + o];
              }
            }
            out[(oy * p.outW + ox) * N + o] = clampAct(acc * scale[o] + bias[o], l.activation);
          }
        }
      }
      acts.set(l.name, { shape: [1, p.outH, p.outW, N], v: out });
    } else if (l.op === 'add') {
      const [a, b] = l.inputs.map((i) => acts.get(i));
      acts.set(l.name, { shape: a.shape, v: a.v.map((x, i) => x + b.v[i]) });
    } else if (l.op === 'globalAvgPool') {
      const { shape, v } = acts.get(l.input);
      const [, H, W, C] = shape;
      const out = new Float64Array(C);
      for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[c] += v[i * C + c];
      acts.set(l.name, { shape: [1, C], v: out.map((s) => s / (H * W)) });
    } else if (l.op === 'dense') {
      const { v } = acts.get(l.input);
      const w = T.get(l.weights);
      const b = l.bias ? T.get(l.bias) : new Float32Array(l.outFeatures);
      const out = new Float64Array(l.outFeatures);
      for (let o = 0; o < l.outFeatures; o++) {
        let acc = b[o];
        for (let i = 0; i < l.inFeatures; i++) acc += v[i] * w[i * l.outFeatures + o];
        out[o] = clampAct(acc, l.activation);
      }
      acts.set(l.name, { shape: [1, l.outFeatures], v: out });
    } else if (l.op === 'softmax') {
      const { shape, v } = acts.get(l.input);
      const m = Math.max(...v);
      const e = v.map((x) => Math.exp(x - m));
      const s = e.reduce((a, b) => a + b, 0);
      acts.set(l.name, { shape, v: e.map((x) => x / s) });
    }
  }
  return acts.get(src.desc.output).v;
}

// ---------------------------------------------------------------------------------------
// Fixtures: the valid inputs mutations start from

/** A small model with every op, every stored dtype, a fused block with residual, labels and preprocessing. */
export function tinyModel() {
  const r = mulberry32(7);
  const tensors = [];
  const t = (name, shape, dtype, lo, hi) => {
    const n = prod(shape);
    if (dtype === 'u8') {
      tensors.push({ name, shape, dtype, data: Uint8Array.from({ length: n }, () => Math.floor(r() * 256)), scale: (hi - lo) / 255, min: lo });
    } else if (dtype === 'f16') {
      const d = new Uint8Array(2 * n);
      const dv = new DataView(d.buffer);
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, toHalf(lo + (hi - lo) * r()), true);
      tensors.push({ name, shape, dtype, data: d });
    } else {
      tensors.push({ name, shape, dtype, data: new Uint8Array(Float32Array.from({ length: n }, () => lo + (hi - lo) * r()).buffer) });
    }
    return name;
  };
  const layers = [
    { op: 'conv2d', name: 'stem', input: 'input', kernel: [3, 3], stride: 2, padding: { top: 0, bottom: 1, left: 0, right: 1 }, inChannels: 3, outChannels: 8, weights: t('stem/w', [3, 3, 3, 8], 'f32', -0.5, 0.5), bias: t('stem/b', [8], 'f16', -0.1, 0.1), activation: 'relu6' },
    { op: 'conv2d', name: 'expand', input: 'stem', kernel: [1, 1], stride: 1, padding: 'valid', inChannels: 8, outChannels: 24, weights: t('expand/w', [1, 1, 8, 24], 'u8', -0.6, 0.6), activation: 'relu6', batchNorm: { mean: t('expand/mean', [24], 'f32', -0.1, 0.1), variance: t('expand/var', [24], 'u8', 0.5, 1.5), gamma: t('expand/gamma', [24], 'f16', 0.5, 1.5), beta: t('expand/beta', [24], 'f32', -0.1, 0.1), epsilon: 1e-3 } },
    { op: 'depthwise', name: 'dw', input: 'expand', kernel: [3, 3], stride: 1, padding: 'same', channels: 24, weights: t('dw/w', [3, 3, 24, 1], 'u8', -0.8, 0.8), bias: t('dw/b', [24], 'f32', -0.1, 0.1), activation: 'relu6' },
    { op: 'conv2d', name: 'project', input: 'dw', kernel: [1, 1], stride: 1, padding: 'valid', inChannels: 24, outChannels: 8, weights: t('project/w', [1, 1, 24, 8], 'f16', -0.4, 0.4), activation: 'linear' },
    { op: 'add', name: 'sum', inputs: ['project', 'stem'] },
    { op: 'depthwise', name: 'dw2', input: 'sum', kernel: [3, 3], stride: 2, padding: 'valid', channels: 8, weights: t('dw2/w', [3, 3, 8, 1], 'f32', -0.8, 0.8), activation: 'relu' },
    { op: 'conv2d', name: 'pw2', input: 'dw2', kernel: [1, 1], stride: 1, padding: 'same', inChannels: 8, outChannels: 16, weights: t('pw2/w', [1, 1, 8, 16], 'f32', -0.6, 0.6), activation: 'relu6' },
    { op: 'globalAvgPool', name: 'pool', input: 'pw2' },
    { op: 'dense', name: 'fc', input: 'pool', inFeatures: 16, outFeatures: 3, weights: t('fc/w', [16, 3], 'u8', -0.6, 0.6), bias: t('fc/b', [3], 'f16', -0.1, 0.1), activation: 'linear' },
    { op: 'softmax', name: 'prob', input: 'fc' },
  ];
  const desc = {
    family: 'fuzz-tiny', input: 'input', inputShape: [1, 11, 13, 3], layers, output: 'prob', labels: ['a', 'b', 'c'],
    preprocess: { resize: 'bilinear', alignCorners: true, scale: 1 / 255, offset: 0 }, meta: { license: 'MIT' },
  };
  return { desc, tensors };
}

function quantizeU8(src) {
  const tensors = src.tensors.map((t) => {
    const f = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of f) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? (hi - lo) / 255 : 1;
    return { name: t.name, shape: t.shape, dtype: 'u8', data: Uint8Array.from(f, (v) => Math.round((v - lo) / scale)), scale, min: lo };
  });
  return { desc: src.desc, tensors };
}

/** A small synthetic Keras functional model (TF.js layers JSON) + weight bytes. */
export function kerasModel(quant, sequential = false) {
  const ref = (n) => [[[n, 0, 0, {}]]];
  const layers = sequential
    ? [
        { class_name: 'Conv2D', config: { name: 'c1', batch_input_shape: [null, 8, 8, 3], filters: 6, kernel_size: [3, 3], strides: [2, 2], padding: 'same', activation: 'relu6', use_bias: true } },
        { class_name: 'DepthwiseConv2D', config: { name: 'dw', kernel_size: 3, strides: 1, padding: 'same', use_bias: true, depth_multiplier: 1, activation: 'relu' } },
        { class_name: 'AveragePooling2D', config: { name: 'ap', pool_size: [4, 4], padding: 'valid' } },
        { class_name: 'Flatten', config: { name: 'fl' } },
        { class_name: 'Dense', config: { name: 'fc', units: 3, activation: 'softmax', use_bias: true } },
      ]
    : [
        { name: 'in', class_name: 'InputLayer', config: { batch_input_shape: [null, 12, 10, 3] }, inbound_nodes: [] },
        { name: 'pad', class_name: 'ZeroPadding2D', config: { padding: [[0, 1], [0, 1]] }, inbound_nodes: ref('in') },
        { name: 'c1', class_name: 'Conv2D', config: { filters: 8, kernel_size: [3, 3], strides: [2, 2], padding: 'valid', activation: 'linear', use_bias: false }, inbound_nodes: ref('pad') },
        { name: 'bn1', class_name: 'BatchNormalization', config: { axis: -1, epsilon: 1e-3, scale: true, center: true }, inbound_nodes: ref('c1') },
        { name: 'r1', class_name: 'ReLU', config: { max_value: 6 }, inbound_nodes: ref('bn1') },
        { name: 'ex', class_name: 'Conv2D', config: { filters: 16, kernel_size: 1, padding: 'same', use_bias: false, activation: 'relu6' }, inbound_nodes: ref('r1') },
        { name: 'dw', class_name: 'DepthwiseConv2D', config: { kernel_size: 3, strides: 1, padding: 'same', use_bias: false, depth_multiplier: 1 }, inbound_nodes: ref('ex') },
        { name: 'bn2', class_name: 'BatchNormalization', config: { axis: 3, epsilon: 1e-5, scale: false, center: true }, inbound_nodes: ref('dw') },
        { name: 'r2', class_name: 'Activation', config: { activation: 'relu' }, inbound_nodes: ref('bn2') },
        { name: 'pr', class_name: 'Conv2D', config: { filters: 8, kernel_size: 1, padding: 'valid', use_bias: true }, inbound_nodes: ref('r2') },
        { name: 'sum', class_name: 'Add', config: {}, inbound_nodes: [[['r1', 0, 0, {}], ['pr', 0, 0, {}]]] },
        { name: 'gap', class_name: 'GlobalAveragePooling2D', config: {}, inbound_nodes: ref('sum') },
        { name: 'drop', class_name: 'Dropout', config: { rate: 0.5 }, inbound_nodes: ref('gap') },
        { name: 'fc', class_name: 'Dense', config: { units: 4, activation: 'linear', use_bias: true }, inbound_nodes: ref('drop') },
        { name: 'sm', class_name: 'Softmax', config: {}, inbound_nodes: ref('fc') },
      ];
  const weights = sequential
    ? [['c1/kernel', [3, 3, 3, 6]], ['c1/bias', [6]], ['dw/depthwise_kernel', [3, 3, 6, 1]], ['dw/bias', [6]], ['fc/kernel', [6, 3]], ['fc/bias', [3]]]
    : [
        ['c1/kernel', [3, 3, 3, 8]], ['bn1/gamma', [8]], ['bn1/beta', [8]], ['bn1/moving_mean', [8]], ['bn1/moving_variance', [8]],
        ['ex/kernel', [1, 1, 8, 16]], ['dw/depthwise_kernel', [3, 3, 16, 1]], ['bn2/beta', [16]], ['bn2/moving_mean', [16]],
        ['bn2/moving_variance', [16]], ['pr/kernel', [1, 1, 16, 8]], ['pr/bias', [8]], ['fc/kernel', [8, 4]], ['fc/bias', [4]],
      ];
  const r = mulberry32(11);
  const parts = [];
  const manifest = weights.map(([name, shape]) => {
    const n = prod(shape);
    const positive = /variance|gamma/.test(name);
    const vals = Float32Array.from({ length: n }, () => (positive ? 0.5 + r() : (r() - 0.5) * 0.8));
    const w = { name, shape, dtype: 'float32' };
    if (quant === 'uint8') {
      const min = positive ? 0.5 : -0.4;
      const scale = positive ? 1 / 255 : 0.8 / 255;
      w.quantization = { dtype: 'uint8', scale, min };
      parts.push(Uint8Array.from(vals, (v) => Math.round((v - min) / scale)));
    } else if (quant === 'float16') {
      w.quantization = { dtype: 'float16' };
      const d = new Uint8Array(2 * n);
      const dv = new DataView(d.buffer);
      vals.forEach((v, i) => dv.setUint16(2 * i, toHalf(v), true));
      parts.push(d);
    } else {
      parts.push(new Uint8Array(vals.buffer));
    }
    return w;
  });
  const modelTopology = sequential
    ? { class_name: 'Sequential', config: { name: 's', layers } }
    : { keras_version: '2.2.4', model_config: { class_name: 'Model', config: { name: 'm', layers, input_layers: [['in', 0, 0]], output_layers: [['sm', 0, 0]] } } };
  return { modelJson: { modelTopology, weightsManifest: [{ paths: ['group1-shard1of1'], weights: manifest }] }, data: concatBytes(parts) };
}

/**
 * Everything the cases start from. `lib` is the library under test: { load, encodeModel,
 * decodeModel, dequantize, decodeImage, mobilenetV1, mobilenetV2, convertTfjsLayers,
 * readTfjsModelDir, MobileNetWasmError }.
 */
export async function makeFixtures(lib) {
  const tiny = tinyModel();
  const v1 = lib.mobilenetV1({ alpha: 0.25, inputSize: 32, classes: 3, seed: 2 });
  const v2 = quantizeU8(lib.mobilenetV2({ alpha: 0.35, inputSize: 32, classes: 4, seed: 3 }));
  const bundled = new Uint8Array(readFileSync(join(ROOT, 'weights/nsfwjs-mobilenet-v2.mnw')));
  const models = [
    { name: 'tiny', src: tiny, bytes: lib.encodeModel(tiny) },
    { name: 'v1 0.25 32 f32', src: v1, bytes: lib.encodeModel(v1) },
    { name: 'v2 0.35 32 u8', src: v2, bytes: lib.encodeModel(v2) },
  ];
  for (const m of models) m.header = splitMnw(m.bytes);
  const nsfw = await lib.readTfjsModelDir(join(ROOT, 'node_modules/nsfwjs/dist/models/mobilenet_v2/model.min.js'));
  const keras = [kerasModel(undefined), kerasModel('uint8'), kerasModel('float16'), kerasModel(undefined, true)];
  const images = await imageBases(lib);
  const classifier = await lib.load(tiny, { threads: 1 });
  const refInput = Float32Array.from({ length: 11 * 13 * 3 }, (_, i) => ((i * 7) % 11) / 11);
  const refOutput = classifier.runSync(refInput);
  return { models, bundled: { bytes: bundled, header: splitMnw(bundled) }, nsfw, keras, images, classifier, refInput, refOutput };
}

// ---------------------------------------------------------------------------------------
// Known bugs: reported, reproduced by it.fails tests in test/fuzz.test.ts, and tallied here
// (not failed) so the fuzz run keeps looking for new ones. Remove an entry once fixed.

export const HUGE_WASM_BYTES = 256 * 2 ** 20;

export const KNOWN_BUGS = [
];

// ---------------------------------------------------------------------------------------
// The case engine

/**
 * @param lib    the library under test (see makeFixtures)
 * @param fx     makeFixtures(lib)
 * @param opts   { timeLimitMs (per case, default 5000), full (script mode: the whole dimension
 *               ranges, including the slow ones) }
 */
export function makeFuzzer(lib, fx, opts = {}) {
  const timeLimitMs = opts.timeLimitMs ?? 5000;
  const full = opts.full ?? false;
  const dims = full ? DIMS : DIMS.filter((d) => d <= 1000 || d >= 65536);
  // PNG dimensions are 32-bit: in test mode only sizes that are either small or over the pixel
  // limit whatever the other side (products between ~2 MP and 50 MP decode slowly: known).
  const pngDims = full ? [0, 1, 2, 7, 8, 15, 16, 17, 255, 256, 1000, 4096, 7000, 8192, 65535, 100000, 2 ** 31, 2 ** 32 - 1] : [0, 1, 2, 7, 8, 15, 16, 17, 255, 256, 1000, 50_000_001, 2 ** 31, 2 ** 32 - 1];
  const jpegDims = full ? [0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 1000, 4096, 7000, 65535] : [0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 1000];
  const { MobileNetWasmError } = lib;

  // --- arbitraries ---------------------------------------------------------------------------
  const arbs = {
    mnwBytes: fc.record({ kind: fc.constant('mnwBytes'), base: fc.nat(2), ops: fc.array(byteOpArb, { minLength: 1, maxLength: 4 }), fixCrc: fc.boolean() }),
    mnwHeader: fc.record({ kind: fc.constant('mnwHeader'), base: fc.nat(2), edits: fc.array(mnwEditArb({ dims }), { minLength: 1, maxLength: 3 }) }),
    bundledHeader: fc.record({ kind: fc.constant('bundledHeader'), edits: fc.array(mnwEditArb({ dims }), { minLength: 1, maxLength: 2 }) }),
    source: fc.record({
      kind: fc.constant('source'), base: fc.nat(1), edits: fc.array(mnwEditArb({ dims }), { maxLength: 2 }),
      js: fc.array(fc.record({ at: fc.nat(), v: fc.constantFrom('NaN', 'Infinity', '-Infinity', 'undefined', '-0', 'bigint', 'symbol', 'circular', 'function', 'date', 'nullproto', 'f32data', 'arraybuffer', 'sparse') }), { minLength: 1, maxLength: 2 }),
    }),
    graph: graphArb.map((g) => ({ kind: 'graph', ...g })),
    tfjsSynth: fc.record({ kind: fc.constant('tfjsSynth'), base: fc.nat(3), edits: fc.array(tfjsEditArb, { minLength: 1, maxLength: 3 }), labels: fc.constantFrom(undefined, ['a', 'b', 'c', 'd'], ['x']) }),
    tfjsNsfw: fc.record({ kind: fc.constant('tfjsNsfw'), edits: fc.array(tfjsEditArb, { minLength: 1, maxLength: 2 }) }),
    image: fc.record({ kind: fc.constant('image'), base: fc.nat(), ops: fc.array(imageOpArb({ pngDims, jpegDims }), { minLength: 1, maxLength: 4 }), topK: fc.constantFrom(1, 2, 3, 5) }),
    rgba: fc.record({
      kind: fc.constant('rgba'),
      width: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32 + 1, 1e9, '4', null, undefined, 100000)),
      height: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(0, -1, 1.5, NaN, Infinity, 2 ** 31, 1e9, '4', null, undefined, 100000)),
      data: fc.constantFrom('u8', 'u8', 'u8', 'clamped', 'buffer', 'subarray', 'shared', 'f32', 'u16', 'array', 'arraybuffer', 'null', 'string'),
      len: fc.constantFrom('exact', 'exact', 'exact', 'minus1', 'plus1', 'zero', 'rgb'),
      fill: fc.nat(255),
      topK: fc.constantFrom(undefined, 1, 2, 3, 100, 1e9, Infinity, 0, -1, 1.5, NaN, '2', null),
      options: fc.constantFrom('object', 'object', 'object', 'undefined', 'null', 'array', 'string'),
    }),
    options: fc.record({
      kind: fc.constant('options'),
      base: fc.nat(1),
      options: fc.oneof(
        { weight: 1, arbitrary: fc.constantFrom(null, undefined, 'x', 42) },
        { weight: 6, arbitrary: fc.record({
          build: fc.constantFrom(undefined, 'auto', 'simd', 'relaxed', 'debug', 'foo', 1, null),
          kernels: fc.constantFrom(undefined, 'auto', 'x86', 'arm', 'scalar', 'foo', '', null, 3),
          maxMemoryBytes: fc.constantFrom(undefined, 0, -1, 1, NaN, Infinity, 1e6, 3e6, 1e9, 2 ** 32, '1000000', null),
          threads: fc.constantFrom(1, 1, 1, 1, 1, 2, undefined, 0, -1, 1.5, 65, NaN, '2', null),
        }, { requiredKeys: ['threads'] }) },
      ),
      input: fc.constantFrom('zero', 'ramp', 'subarray', 'shared', 'negzero', 'denormal', 'big', 'nan', 'inf', 'short', 'long', 'f64', 'array', 'null', 'undefined', 'string', 'u8'),
    }),
  };
  const weights = {
    mnwBytes: 14, mnwHeader: 20, bundledHeader: 2, source: 8, graph: 12, tfjsSynth: 12, tfjsNsfw: 2, image: 18, rgba: 6, options: 6,
  };
  const anyCase = fc.oneof(...Object.entries(weights).map(([k, weight]) => ({ weight, arbitrary: arbs[k] })));

  // --- outcomes --------------------------------------------------------------------------------
  const fail = (why) => ({ outcome: 'FAIL', cls: 'FAIL', detail: why });
  const ok = (outcome, cls = '', detail) => ({ outcome, cls, detail });

  function classifyError(c, e) {
    for (const k of KNOWN_BUGS) if (k.match(c, e, lib)) return ok('known-bug', k.id);
    if (e instanceof MobileNetWasmError) {
      if (/internal error/.test(e.message)) return fail(`${e.name}: ${e.message}`);
      return ok('rejected', e.name);
    }
    if (e instanceof WebAssembly.RuntimeError) return fail(`wasm trap: ${e.message}`);
    const name = e?.constructor?.name ?? typeof e;
    return fail(`untyped ${name}: ${String(e?.message ?? e).slice(0, 300)}`);
  }

  /** Why a model's weights may legitimately give non-finite outputs, or null. */
  function explainNonFinite(src) {
    if (!src) return null;
    for (const t of src.tensors) {
      const v = lib.dequantize(t);
      for (let i = 0; i < v.length; i++) {
        if (!Number.isFinite(v[i])) return `tensor "${t.name}" holds ${v[i]}`;
        if (Math.abs(v[i]) > 1e4) return `tensor "${t.name}" holds ${v[i]}`;
      }
    }
    const byName = new Map(src.tensors.map((t) => [t.name, t]));
    for (const l of src.desc.layers) {
      const bn = l.batchNorm;
      if (!bn) continue;
      const vr = lib.dequantize(byName.get(bn.variance));
      for (let i = 0; i < vr.length; i++) {
        const s = 1 / Math.sqrt(vr[i] + bn.epsilon);
        if (!(vr[i] + bn.epsilon > 0) || !Number.isFinite(s) || s > 1e4) return `layer "${l.name}": batch-norm variance ${vr[i]} + epsilon ${bn.epsilon}`;
      }
    }
    // Deep linear stacks can overflow float32 with ordinary weights: only explained if no layer clamps.
    return null;
  }

  async function runModel(model, getSrc, extra = {}) {
    try {
      if (model.memory.wasmBytes > HUGE_WASM_BYTES) {
        return ok('known-bug', 'huge-arena', `${model.memory.wasmBytes} bytes of wasm memory`);
      }
      const n = prod(model.inputShape);
      const x = extra.input ?? new Float32Array(n);
      let out;
      try {
        out = model.runSync(x);
      } catch (e) {
        return fail(`run() of a loaded model failed: ${e?.constructor?.name}: ${e?.message}`);
      }
      const want = prod(model.outputShape);
      if (out.length !== want) return fail(`output has ${out.length} values, outputShape says ${want}`);
      if (model.labels.length && model.labels.length !== want) return fail(`${model.labels.length} labels for ${want} outputs`);
      if (extra.reference) {
        const ref = extra.reference(x);
        let scale = 1;
        for (const v of ref) scale = Math.max(scale, Math.abs(v));
        let worst = 0;
        for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]));
        if (!(worst <= 2e-4 * scale)) return fail(`output differs from the float64 reference by ${worst} (scale ${scale})`);
        return ok('accepted', 'matches-reference');
      }
      if (!out.every(Number.isFinite)) {
        const why = explainNonFinite(getSrc());
        if (!why) return fail(`non-finite output ${Array.from(out.slice(0, 5))} without an explanation in the weights`);
        return ok('accepted', 'nonfinite-explained', why);
      }
      return ok('accepted', 'finite');
    } finally {
      model.dispose();
    }
  }

  async function loadAndRun(c, input, getSrc, options = { threads: 1 }, extra) {
    let model;
    try {
      model = await lib.load(input, options);
    } catch (e) {
      return classifyError(c, e);
    }
    return runModel(model, getSrc, extra);
  }

  function editedMnw(base, edits) {
    const raws = [];
    let doc = structuredClone(base.header.header);
    for (const e of edits) doc = applyMnwEdit(doc, e, raws);
    return joinMnw(serialize(doc, raws), base.header.data);
  }

  const safeDecode = (bytes) => () => {
    try {
      return lib.decodeModel(bytes);
    } catch {
      return null;
    }
  };

  function jsHostile(v) {
    switch (v) {
      case 'NaN': return NaN;
      case 'Infinity': return Infinity;
      case '-Infinity': return -Infinity;
      case 'undefined': return undefined;
      case '-0': return -0;
      case 'bigint': return 3n;
      case 'symbol': return Symbol('x');
      case 'circular': { const a = [1, 2]; a.push(a); return a; }
      case 'function': return () => 3;
      case 'date': return new Date(0);
      case 'nullproto': return Object.assign(Object.create(null), { top: 1, bottom: 1, left: 1, right: 1 });
      case 'f32data': return new Float32Array(8);
      case 'arraybuffer': return new ArrayBuffer(8);
      case 'sparse': return [1, , 3, 3]; // eslint-disable-line no-sparse-arrays
    }
    return undefined;
  }

  function rgbaInput(c) {
    const w = c.width;
    const h = c.height;
    const exact = Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0 && w * h <= 1 << 20 ? w * h * 4 : 64;
    const n = { exact, minus1: exact - 1, plus1: exact + 1, zero: 0, rgb: (exact / 4) * 3 }[c.len];
    const fillU8 = (a) => a.fill(c.fill);
    let data;
    switch (c.data) {
      case 'u8': data = fillU8(new Uint8Array(n)); break;
      case 'clamped': data = fillU8(new Uint8ClampedArray(n)); break;
      case 'buffer': data = Buffer.alloc(n, c.fill); break;
      case 'subarray': data = fillU8(new Uint8Array(n + 3)).subarray(3); break;
      case 'shared': data = fillU8(new Uint8Array(new SharedArrayBuffer(n))); break;
      case 'f32': data = new Float32Array(n).fill(c.fill); break;
      case 'u16': data = new Uint16Array(n).fill(c.fill); break;
      case 'array': data = new Array(n).fill(c.fill); break;
      case 'arraybuffer': data = new ArrayBuffer(n); break;
      case 'null': data = null; break;
      case 'string': data = 'x'.repeat(n); break;
    }
    return { data, width: w, height: h };
  }

  function checkPredictions(preds, topK) {
    if (!Array.isArray(preds)) return fail('classify() did not return an array');
    const k = typeof topK === 'number' && topK >= 1 ? Math.min(topK, 3) : 3;
    if (preds.length !== k) return fail(`classify() returned ${preds.length} predictions, expected ${k}`);
    let sum = 0;
    for (const p of preds) {
      if (typeof p.label !== 'string' || !(p.probability >= 0 && p.probability <= 1)) return fail(`bad prediction ${JSON.stringify(p)}`);
      sum += p.probability;
    }
    if (sum > 1 + 1e-5) return fail(`probabilities sum to ${sum}`);
    return ok('accepted', 'classified');
  }

  const checkClassifierIntact = () => {
    const out = fx.classifier.runSync(fx.refInput);
    for (let i = 0; i < out.length; i++) if (!Object.is(out[i], fx.refOutput[i])) return false;
    return true;
  };

  // --- one case --------------------------------------------------------------------------------
  async function runCaseInner(c) {
    switch (c.kind) {
      case 'mnwBytes': {
        const base = fx.models[c.base % fx.models.length];
        const hot = base.bytes.length - base.header.data.length;
        const b = applyByteOps(base.bytes, c.ops, hot);
        if (c.fixCrc) fixMnwCrc(b);
        return loadAndRun(c, b, safeDecode(b));
      }
      case 'mnwHeader': {
        const b = editedMnw(fx.models[c.base % fx.models.length], c.edits);
        return loadAndRun(c, b, safeDecode(b));
      }
      case 'bundledHeader': {
        const b = editedMnw(fx.bundled, c.edits);
        return loadAndRun(c, b, safeDecode(b));
      }
      case 'source': {
        const base = fx.models[c.base % 2];
        const raws = [];
        // The same JSON edits as for files (raw tokens like 1e999 become Infinity), then the
        // tensor bytes are attached by name and JavaScript-only values are put in.
        let meta = { desc: base.src.desc, tensors: base.src.tensors.map(({ data, ...rest }) => rest) };
        meta = structuredClone(meta);
        for (const e of c.edits) meta = applyMnwEdit(meta, e, raws);
        let doc;
        try {
          doc = JSON.parse(serialize(meta, raws));
        } catch {
          return ok('skipped', 'not-json');
        }
        const dataByName = new Map(base.src.tensors.map((t) => [t.name, t.data]));
        if (doc && Array.isArray(doc.tensors)) {
          doc.tensors = doc.tensors.map((t, i) => (t && typeof t === 'object' ? { ...t, data: dataByName.get(t.name) ?? base.src.tensors[i]?.data } : t));
        }
        for (const j of c.js) {
          const paths = allPaths(doc).filter((p) => !(p.includes('data') && p.length > 3));
          doc = setAt(doc, pick(paths, j.at), jsHostile(j.v));
        }
        c.optionsNull = false;
        return loadAndRun(c, doc, () => null);
      }
      case 'graph': {
        const { src, valid } = buildGraph(c);
        let model;
        try {
          model = await lib.load(src, { kernels: c.kernels, threads: c.threads });
          if (c.threads > 1) await model.threadsReady;
        } catch (e) {
          const r = classifyError(c, e);
          return r.outcome === 'rejected' && valid ? ok('rejected', `valid-graph-refused:${r.cls}`, e.message) : r;
        }
        if (!valid) {
          model.dispose();
          return fail('a graph with an empty layer output was accepted');
        }
        const r = mulberry32(c.seed ^ 0x9e3779b9);
        const x = Float32Array.from({ length: prod(model.inputShape) }, () => r() * 2 - 1);
        return runModel(model, () => src, { input: x, reference: (xx) => referenceForward(src, lib.dequantize, xx) });
      }
      case 'tfjsSynth':
      case 'tfjsNsfw': {
        const base = c.kind === 'tfjsNsfw' ? { modelJson: fx.nsfw.modelJson, data: fx.nsfw.weightData } : fx.keras[c.base % fx.keras.length];
        const raws = [];
        const state = { doc: structuredClone(base.modelJson), data: base.data };
        for (const e of c.edits) applyTfjsEdit(state, e, raws);
        let doc;
        try {
          doc = JSON.parse(serialize(state.doc, raws));
        } catch {
          return ok('skipped', 'not-json');
        }
        let src;
        try {
          src = lib.convertTfjsLayers(doc, state.data, c.labels ? { labels: c.labels } : {});
        } catch (e) {
          return classifyError(c, e);
        }
        try {
          lib.encodeModel(src);
        } catch (e) {
          return fail(`a converted model cannot be encoded: ${e?.constructor?.name}: ${e?.message}`);
        }
        const r = await loadAndRun(c, src, () => src);
        return r.outcome === 'rejected' ? ok('rejected', `converted-then-refused:${r.cls}`, r.detail) : r;
      }
      case 'image': {
        const base = fx.images[c.base % fx.images.length];
        const b = applyImageOps(base.bytes, c.ops);
        let preds;
        try {
          preds = await fx.classifier.classify(b, { topK: c.topK });
        } catch (e) {
          return classifyError(c, e);
        }
        return checkPredictions(preds, c.topK);
      }
      case 'rgba': {
        const img = rgbaInput(c);
        const options = { object: { topK: c.topK }, undefined: undefined, null: null, array: [], string: 'x' }[c.options];
        c.optionsNull = options === null;
        let preds;
        try {
          preds = await fx.classifier.classify(img, options);
        } catch (e) {
          return classifyError(c, e);
        }
        const topK = c.options === 'object' ? (c.topK ?? 3) : 3;
        if (!(Number.isInteger(topK) && topK >= 1) && !(topK === Infinity)) return fail(`classify() accepted topK ${String(topK)}`);
        return checkPredictions(preds, topK);
      }
      case 'options': {
        const base = fx.models[c.base % 2];
        c.optionsNull = c.options === null;
        c.badKernels = c.options && typeof c.options === 'object' && c.options.kernels !== undefined && !['auto', 'x86', 'arm', 'scalar'].includes(c.options.kernels);
        let model;
        try {
          model = await lib.load(base.bytes, c.options);
        } catch (e) {
          return classifyError(c, e);
        }
        const n = prod(model.inputShape);
        const inputs = {
          zero: () => new Float32Array(n),
          ramp: () => Float32Array.from({ length: n }, (_, i) => (i % 17) / 17),
          subarray: () => new Float32Array(n + 5).subarray(5),
          shared: () => new Float32Array(new SharedArrayBuffer(4 * n)),
          negzero: () => new Float32Array(n).fill(-0),
          denormal: () => new Float32Array(n).fill(1e-40),
          big: () => new Float32Array(n).fill(3e38),
          nan: () => new Float32Array(n).fill(NaN),
          inf: () => new Float32Array(n).fill(Infinity),
          short: () => new Float32Array(n - 1),
          long: () => new Float32Array(n + 1),
          f64: () => new Float64Array(n),
          array: () => new Array(n).fill(0),
          null: () => null,
          undefined: () => undefined,
          string: () => 'x',
          u8: () => new Uint8Array(n),
        };
        const good = ['zero', 'ramp', 'subarray', 'shared', 'negzero', 'denormal', 'big'].includes(c.input);
        try {
          let out;
          let accepted = false;
          try {
            out = await model.run(inputs[c.input]());
            accepted = true;
          } catch (e) {
            if (good) {
              const r = classifyError(c, e);
              return r.outcome === 'known-bug' ? r : fail(`run(${c.input}) failed: ${e?.constructor?.name}: ${e?.message}`);
            }
            if (!(e instanceof lib.InputError)) return fail(`run(${c.input}) rejected with ${e?.constructor?.name}, not InputError`);
            try {
              out = await model.run(inputs.zero()); // still usable
            } catch (e2) {
              const r = classifyError(c, e2);
              return r.outcome === 'known-bug' ? r : fail(`run() after a rejected input failed: ${e2?.constructor?.name}: ${e2?.message}`);
            }
          }
          if (!good && accepted) return fail(`run(${c.input}) was accepted`);
          if (out.length !== prod(model.outputShape)) return fail('wrong output length');
          if (!out.every(Number.isFinite) && c.input !== 'big') return fail(`non-finite output for input ${c.input}`);
        } finally {
          model.dispose();
          model.dispose();
        }
        try {
          await model.run(inputs.zero());
          return fail('run() after dispose() resolved');
        } catch (e) {
          if (!(e instanceof lib.DisposedError)) return fail(`run() after dispose() rejected with ${e?.constructor?.name}`);
        }
        return ok('accepted', good ? `ran:${c.input}` : `input-refused:${c.input}`);
      }
    }
    return fail(`unknown case kind ${c.kind}`);
  }

  /** Runs one case: { outcome: accepted|rejected|known-bug|skipped|FAIL, cls, detail, ms }. */
  async function runCase(c) {
    const t0 = performance.now();
    let r;
    try {
      r = await runCaseInner(c);
    } catch (e) {
      r = fail(`harness: ${e?.constructor?.name}: ${e?.message}\n${e?.stack}`);
    }
    const ms = performance.now() - t0;
    if (Object.keys(Object.prototype).length || ({}).polluted !== undefined) r = fail('Object.prototype was polluted');
    if ((c.kind === 'image' || c.kind === 'rgba') && !checkClassifierIntact()) r = fail('the classifier model changed its answer after this input');
    if (ms > timeLimitMs && r.outcome !== 'FAIL') r = { ...r, outcome: opts.slowIsFailure === false ? r.outcome : 'FAIL', slow: true, detail: `took ${ms.toFixed(0)} ms (limit ${timeLimitMs}); ${r.detail ?? r.cls}` };
    return { ...r, kind: c.kind, ms };
  }

  return { arbs, anyCase, runCase };
}

// ---------------------------------------------------------------------------------------
// The library from dist/ (script mode)

export async function loadDistLib() {
  const u = (p) => pathToFileURL(join(ROOT, p)).href;
  const idx = await import(u('dist/index.js'));
  const tfl = await import(u('dist/convert/tfjs-layers.js'));
  const node = await import(u('dist/convert/node.js'));
  return { ...idx, convertTfjsLayers: tfl.convertTfjsLayers, readTfjsModelDir: node.readTfjsModelDir };
}

// ---------------------------------------------------------------------------------------
// Script mode

function parseArgs(argv) {
  const a = { cases: 100_000, seed: 1, workers: Math.min(2, availableParallelism()), hangMs: 120_000, slowMs: 5_000, replay: undefined, worker: 0, attempt: 0, json: undefined, kind: undefined };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--cases') a.cases = Number(v), i++;
    else if (k === '--seed') a.seed = Number(v), i++;
    else if (k === '--workers') a.workers = Number(v), i++;
    else if (k === '--hang-ms') a.hangMs = Number(v), i++;
    else if (k === '--slow-ms') a.slowMs = Number(v), i++;
    else if (k === '--replay') a.replay = Number(v), i++;
    else if (k === '--worker') a.worker = Number(v), i++;
    else if (k === '--attempt') a.attempt = Number(v), i++;
    else if (k === '--json') a.json = v, i++;
    else if (k === '--kind') a.kind = v, i++;
    else if (k === '--help' || k === '-h') {
      console.log('usage: node scripts/fuzz.mjs [--cases N] [--seed S] [--workers W] [--slow-ms MS] [--hang-ms MS] [--kind K] [--json out.json] [--worker W --replay I]');
      process.exit(0);
    }
  }
  return a;
}

const workerSeed = (seed, w, restart) => (seed * 1000 + w + restart * 100) >>> 0;

async function workerMain() {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { seed, numRuns, slowMs, kind } = workerData;
  const lib = await loadDistLib();
  const fx = await makeFixtures(lib);
  const fz = makeFuzzer(lib, fx, { timeLimitMs: slowMs, full: true, slowIsFailure: false });
  const arb = kind ? fz.arbs[kind] : fz.anyCase;
  let i = 0;
  let batch = [];
  const flush = () => {
    if (batch.length) parentPort.postMessage({ type: 'results', batch });
    batch = [];
  };
  await fc.check(
    fc.asyncProperty(arb, async (c) => {
      parentPort.postMessage({ type: 'start', i, kind: c.kind });
      const r = await fz.runCase(c);
      const rec = { kind: r.kind, outcome: r.outcome, cls: r.cls, ms: r.ms, slow: r.slow ?? false };
      if (r.outcome === 'FAIL' || r.slow || (r.outcome === 'known-bug' && r.cls === 'huge-arena')) {
        rec.i = i;
        rec.detail = String(r.detail ?? '').slice(0, 500);
        if (r.outcome === 'FAIL' || r.slow) rec.case = fc.stringify(c).slice(0, 1500);
      }
      batch.push(rec);
      i++;
      if (batch.length >= 200) flush();
      return true;
    }),
    { seed, numRuns },
  );
  flush();
  parentPort.postMessage({ type: 'done' });
}

async function replay(a) {
  const lib = await loadDistLib();
  const fx = await makeFixtures(lib);
  const fz = makeFuzzer(lib, fx, { timeLimitMs: a.slowMs, full: true, slowIsFailure: false });
  const seed = workerSeed(a.seed, a.worker, a.attempt);
  await fc.check(
    fc.asyncProperty(a.kind ? fz.arbs[a.kind] : fz.anyCase, async (c) => {
      console.log('case:', fc.stringify(c).slice(0, 20000));
      const r = await fz.runCase(c);
      console.log('result:', r);
      return true;
    }),
    { seed, numRuns: 1, path: String(a.replay) },
  );
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.replay !== undefined) return replay(a);
  const { Worker } = await import('node:worker_threads');
  const t0 = performance.now();
  const stats = { cases: 0, byOutcome: {}, byClass: {}, byKind: {}, maxMs: 0, maxCase: null, slow: [], fails: [], hangs: [], huge: [], msByKind: {} };
  const per = Math.ceil(a.cases / a.workers);
  let lastPrint = 0;
  const mb = (x) => (x / 2 ** 20).toFixed(0);
  const print = (force) => {
    const now = performance.now();
    if (!force && now - lastPrint < 10_000) return;
    lastPrint = now;
    const s = (now - t0) / 1000;
    const rss = process.memoryUsage().rss;
    console.log(`[${s.toFixed(0)} s] ${stats.cases}/${a.cases} cases (${(stats.cases / s).toFixed(0)}/s), ${JSON.stringify(stats.byOutcome)}, rss ${mb(rss)} MiB, peak ${mb(process.resourceUsage().maxRSS * 1024)} MiB, max case ${stats.maxMs.toFixed(0)} ms`);
  };

  const runWorker = (w, numRuns, attempt = 0) =>
    new Promise((resolve) => {
      const seed = workerSeed(a.seed, w, attempt);
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { mnwFuzzWorker: true, seed, numRuns, slowMs: a.slowMs, kind: a.kind }, resourceLimits: { maxOldGenerationSizeMb: 4096 } });
      let current = null;
      let done = 0;
      let settled = false;
      const restart = (why) => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        void worker.terminate();
        // A worker that died before its first case (fixtures) would die again: stop there.
        resolve(current === null ? undefined : runWorker(w, numRuns - done - 1, attempt + 1));
      };
      const timer = setInterval(() => {
        if (current && performance.now() - current.t > a.hangMs) {
          stats.hangs.push({ worker: w, seed, i: current.i, kind: current.kind, replay: `node scripts/fuzz.mjs --seed ${a.seed} --worker ${w}${attempt ? ` --attempt ${attempt}` : ''} --replay ${current.i}` });
          console.log(`HANG: worker ${w} case ${current.i} (${current.kind}) ran over ${a.hangMs} ms; terminating the worker`);
          restart('hang');
        }
      }, 1000);
      worker.on('message', (m) => {
        if (m.type === 'start') current = { i: m.i, kind: m.kind, t: performance.now() };
        else if (m.type === 'results') {
          for (const r of m.batch) {
            done++;
            stats.cases++;
            stats.byOutcome[r.outcome] = (stats.byOutcome[r.outcome] ?? 0) + 1;
            const key = `${r.outcome}:${r.cls}`;
            stats.byClass[key] = (stats.byClass[key] ?? 0) + 1;
            stats.byKind[r.kind] ??= {};
            stats.byKind[r.kind][r.outcome] = (stats.byKind[r.kind][r.outcome] ?? 0) + 1;
            const mk = (stats.msByKind[r.kind] ??= { n: 0, total: 0, max: 0 });
            mk.n++;
            mk.total += r.ms;
            mk.max = Math.max(mk.max, r.ms);
            if (r.ms > stats.maxMs) {
              stats.maxMs = r.ms;
              stats.maxCase = { worker: w, seed, i: r.i, kind: r.kind, detail: r.detail };
            }
            const where = { worker: w, seed, i: r.i, replay: `node scripts/fuzz.mjs --seed ${a.seed} --worker ${w} --replay ${r.i}` };
            if (r.outcome === 'FAIL') stats.fails.push({ ...where, kind: r.kind, detail: r.detail, case: r.case });
            if (r.slow) stats.slow.push({ ...where, kind: r.kind, ms: Math.round(r.ms), outcome: `${r.outcome}:${r.cls}`, detail: r.detail, case: r.case });
            if (r.outcome === 'known-bug' && r.cls === 'huge-arena' && stats.huge.length < 20) stats.huge.push({ ...where, detail: r.detail });
          }
          print(false);
        } else if (m.type === 'done') {
          settled = true;
          clearInterval(timer);
          resolve();
        }
      });
      worker.on('error', (e) => {
        if (settled) return;
        stats.fails.push({ worker: w, seed, i: current?.i, kind: current?.kind, detail: `worker crashed: ${e?.stack ?? e}`, replay: `node scripts/fuzz.mjs --seed ${a.seed} --worker ${w} --replay ${current?.i}` });
        console.log(`worker ${w} crashed during case ${current?.i} (${current?.kind}): ${e?.message}`);
        restart('crash');
      });
    });

  console.log(`fuzzing ${a.cases} cases, seed ${a.seed}, ${a.workers} worker(s), slow > ${a.slowMs} ms, hang > ${a.hangMs} ms, node ${process.version}`);
  await Promise.all(Array.from({ length: a.workers }, (_, w) => runWorker(w, Math.min(per, a.cases - w * per))));
  print(true);
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    command: `node scripts/fuzz.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    node: process.version,
    cases: stats.cases,
    seconds: Math.round(seconds),
    casesPerSecond: Math.round(stats.cases / seconds),
    outcomes: stats.byOutcome,
    byClass: Object.fromEntries(Object.entries(stats.byClass).sort((x, y) => y[1] - x[1])),
    byKind: stats.byKind,
    msByKind: Object.fromEntries(Object.entries(stats.msByKind).map(([k, v]) => [k, { cases: v.n, meanMs: +(v.total / v.n).toFixed(2), maxMs: Math.round(v.max) }])),
    maxCaseMs: Math.round(stats.maxMs),
    maxCase: stats.maxCase,
    peakRssMiB: Math.round((process.resourceUsage().maxRSS * 1024) / 2 ** 20),
    fails: stats.fails.slice(0, 50),
    failCount: stats.fails.length,
    slow: stats.slow.slice(0, 50),
    slowCount: stats.slow.length,
    hangs: stats.hangs,
    hugeArenaExamples: stats.huge.slice(0, 5),
  };
  console.log('\n==== summary ====');
  console.log(`cases ${summary.cases} in ${summary.seconds} s (${summary.casesPerSecond}/s), max per-case ${summary.maxCaseMs} ms, peak RSS ${summary.peakRssMiB} MiB`);
  console.log('outcomes:', summary.outcomes);
  console.log('by outcome:class:');
  for (const [k, v] of Object.entries(summary.byClass)) console.log(`  ${String(v).padStart(7)}  ${k}`);
  console.log('per kind (cases, mean ms, max ms):');
  for (const [k, v] of Object.entries(summary.msByKind)) console.log(`  ${k.padEnd(14)} ${String(v.cases).padStart(7)} ${String(v.meanMs).padStart(8)} ${String(v.maxMs).padStart(7)}   ${JSON.stringify(summary.byKind[k])}`);
  console.log(`FAIL: ${summary.failCount}, slow (> ${a.slowMs} ms): ${summary.slowCount}, hangs: ${summary.hangs.length}`);
  for (const f of summary.fails.slice(0, 10)) console.log(`  FAIL ${f.kind}: ${f.detail}\n    replay: ${f.replay}`);
  for (const s of summary.slow.slice(0, 10)) console.log(`  SLOW ${s.kind} ${s.ms} ms (${s.outcome}): replay: ${s.replay}`);
  if (a.json) writeFileSync(a.json, JSON.stringify(summary, null, 2));
  process.exitCode = summary.failCount || summary.hangs.length ? 1 : 0;
}

const wt = await import('node:worker_threads');
if (!wt.isMainThread && wt.workerData?.mnwFuzzWorker === true) {
  await workerMain();
} else if (wt.isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
