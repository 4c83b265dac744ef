import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convertPath, readTfjsModelDir } from '../src/convert/node.js';
import { convertTfjsLayers } from '../src/convert/tfjs-layers.js';
import type { LayerDesc, ModelDesc, ModelSource, StoredTensor } from '../src/desc.js';
import {
  ChecksumError,
  MobileNetWasmError,
  ModelFormatError,
  UnsupportedModelError,
} from '../src/errors.js';
import {
  crc32,
  crc32Tables,
  useNativeCrc32,
  decodeModel,
  dequantize,
  encodeModel,
  halfToFloat,
  inferShapes,
  resolvePadding,
  validateModel,
} from '../src/format.js';

const NSFWJS_DIR = join(__dirname, '../node_modules/nsfwjs/dist/models/mobilenet_v2');
const SHIPPED = join(__dirname, '../weights/nsfwjs-mobilenet-v2.mnw');

// ---------------------------------------------------------------------------------------
// A tiny model exercising every op and every stored dtype.

function tensor(name: string, shape: number[], dtype: StoredTensor['dtype'], seed = 1): StoredTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const bpv = { f32: 4, f16: 2, u8: 1 }[dtype];
  const data = new Uint8Array(n * bpv);
  if (dtype === 'f32') {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = Math.sin(i * 0.7 + seed) * 0.5;
    data.set(new Uint8Array(f.buffer));
  } else if (dtype === 'f16') {
    const v = new DataView(data.buffer);
    for (let i = 0; i < n; i++) v.setUint16(2 * i, 0x3800 + ((i * 37 + seed) % 0x300), true); // 0.5 .. ~0.9
  } else {
    for (let i = 0; i < n; i++) data[i] = (i * 53 + seed) & 0xff;
  }
  const t: StoredTensor = { name, shape, dtype, data };
  if (dtype === 'u8') Object.assign(t, { scale: 0.01, min: -1.2 });
  return t;
}

function tinyModel(): ModelSource {
  const layers: LayerDesc[] = [
    {
      op: 'conv2d', name: 'stem', input: 'input', kernel: [3, 3], stride: 2,
      padding: { top: 0, bottom: 1, left: 0, right: 1 }, inChannels: 3, outChannels: 8,
      weights: 'stem/kernel', bias: 'stem/bias', activation: 'relu6',
    },
    {
      op: 'depthwise', name: 'dw', input: 'stem', kernel: [3, 3], stride: 1, padding: 'same', channels: 8,
      weights: 'dw/kernel', activation: 'relu',
      batchNorm: { mean: 'bn/mean', variance: 'bn/var', gamma: 'bn/gamma', epsilon: 1e-3 },
    },
    {
      op: 'conv2d', name: 'pw', input: 'dw', kernel: [1, 1], stride: 1, padding: 'valid', inChannels: 8,
      outChannels: 8, weights: 'pw/kernel', activation: 'linear',
    },
    { op: 'add', name: 'sum', inputs: ['stem', 'pw'] },
    { op: 'globalAvgPool', name: 'pool', input: 'sum' },
    { op: 'dense', name: 'fc', input: 'pool', inFeatures: 8, outFeatures: 3, weights: 'fc/kernel', bias: 'fc/bias', activation: 'linear' },
    { op: 'softmax', name: 'prob', input: 'fc' },
  ];
  const desc: ModelDesc = {
    family: 'test', input: 'input', inputShape: [1, 9, 10, 3], layers, output: 'prob',
    labels: ['a', 'b', 'c'], preprocess: { resize: 'bilinear', alignCorners: true, scale: 1 / 255, offset: 0 },
    meta: { license: 'MIT' },
  };
  const tensors = [
    tensor('stem/kernel', [3, 3, 3, 8], 'f32'),
    tensor('stem/bias', [8], 'f16'),
    tensor('dw/kernel', [3, 3, 8, 1], 'u8'),
    tensor('bn/mean', [8], 'f32', 2),
    tensor('bn/var', [8], 'u8', 3),
    tensor('bn/gamma', [8], 'f16', 4),
    tensor('pw/kernel', [1, 1, 8, 8], 'u8', 5), // 64 bytes, then odd-sized tensors test alignment
    tensor('fc/kernel', [8, 3], 'u8', 6),
    tensor('fc/bias', [3], 'f16', 7),
  ];
  return { desc, tensors };
}

/** Re-serializes a file after editing its header JSON, with a valid checksum. */
function rewriteHeader(bytes: Uint8Array, edit: (header: { desc: any; tensors: any[] }) => void): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const j = dv.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + j)));
  const data = bytes.subarray(Math.ceil((16 + j) / 16) * 16);
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((16 + json.length) / 16) * 16;
  const out = new Uint8Array(start + data.length);
  out.set(bytes.subarray(0, 16));
  out.set(json, 16);
  out.set(data, start);
  const odv = new DataView(out.buffer);
  odv.setUint32(8, json.length, true);
  odv.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

function expectError(fn: () => unknown, cls: Function, message?: RegExp): void {
  const e = errorOf(fn);
  expect(e).toBeInstanceOf(cls);
  if (cls === ModelFormatError) expect(e).not.toBeInstanceOf(ChecksumError);
  if (message) expect((e as Error).message).toMatch(message);
}

const dataStartOf = (bytes: Uint8Array): number =>
  Math.ceil((16 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)) / 16) * 16;

// ---------------------------------------------------------------------------------------

describe('crc32', () => {
  it('matches the standard check values and zlib', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const bytes = new Uint8Array(5000).map((_, i) => (i * 31 + 7) & 0xff);
    expect(crc32(bytes)).toBe(zlib.crc32(bytes));
  });
  it('the JavaScript tables and the native zlib.crc32 load() uses agree, on every length and offset', async () => {
    await useNativeCrc32();
    const bytes = new Uint8Array(4099).map((_, i) => (i * 131 + 17) & 0xff);
    for (const [a, b] of [[0, 0], [0, 1], [1, 8], [3, 4099], [5, 4000], [0, 4099]]) {
      const v = bytes.subarray(a, b);
      expect(crc32Tables(v)).toBe(zlib.crc32(v) >>> 0);
      expect(crc32(v)).toBe(crc32Tables(v));
    }
  });
});

describe('encode / decode', () => {
  it('round-trips f32, f16 and u8 tensors and the description', () => {
    const src = tinyModel();
    const bytes = encodeModel(src);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('MNWB');
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint32(4, true)).toBe(1);
    expect(dv.getUint32(12, true)).toBe(zlib.crc32(bytes.subarray(16)));
    const start = dataStartOf(bytes);
    expect(start % 16).toBe(0);

    const back = decodeModel(bytes);
    expect(back.desc).toEqual(src.desc);
    expect(back.tensors.map((t) => t.name)).toEqual(src.tensors.map((t) => t.name));
    back.tensors.forEach((t, i) => {
      const o = src.tensors[i];
      expect(t.dtype).toBe(o.dtype);
      expect(t.shape).toEqual(o.shape);
      expect(Array.from(t.data)).toEqual(Array.from(o.data));
      expect(t.scale).toBe(o.scale);
      expect(t.min).toBe(o.min);
      expect((t.data.byteOffset - start) % 4).toBe(0); // each tensor 4-aligned in the data section
    });
    // Also accepts an ArrayBuffer, and decoding is deterministic.
    expect(encodeModel(decodeModel(bytes.slice().buffer))).toEqual(bytes);
  });

  it('refuses to encode an invalid model', () => {
    const src = tinyModel();
    src.tensors[0] = { ...src.tensors[0], data: src.tensors[0].data.subarray(1) };
    expectError(() => encodeModel(src), ModelFormatError, /stem\/kernel/);
  });
});

describe('decode errors', () => {
  const good = encodeModel(tinyModel());

  it('wrong magic, JSON, zip, ONNX, JS', () => {
    expectError(() => decodeModel(new Uint8Array(64).fill(7)), ModelFormatError, /not a mobilenet-wasm model/);
    const json = new TextEncoder().encode('{"modelTopology": {}, "weightsManifest": []}');
    expectError(() => decodeModel(json), ModelFormatError, /JSON/);
    expectError(() => decodeModel(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), ModelFormatError, /zip/);
    const onnx = new Uint8Array([0x08, 0x07, 0x12, 0x07, ...new TextEncoder().encode('pytorch'), 0, 0, 0, 0, 0]);
    expectError(() => decodeModel(onnx), ModelFormatError, /ONNX/);
    expectError(() => decodeModel(readFileSync(join(NSFWJS_DIR, 'model.min.js')).subarray(0, 200)), ModelFormatError, /JavaScript/);
  });

  it('unsupported version names it', () => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(4, 2, true);
    expectError(() => decodeModel(b), ModelFormatError, /version 2/);
  });

  it('truncation anywhere is reported as truncation with both lengths', () => {
    const start = dataStartOf(good);
    const cuts = [0, 2, 4, 10, 15, 16, 40, start - 5, start, start + 3, Math.floor((start + good.length) / 2), good.length - 1];
    for (const n of cuts) {
      const e = errorOf(() => decodeModel(good.subarray(0, n)));
      expect(e, `cut at ${n}`).toBeInstanceOf(ModelFormatError);
      expect(e).not.toBeInstanceOf(ChecksumError);
      expect((e as Error).message).toMatch(/truncated/);
      if (n >= 16) expect((e as Error).message).toContain(String(n));
    }
    expect((errorOf(() => decodeModel(good.subarray(0, good.length - 1))) as Error).message).toContain(
      `expected ${good.length} bytes, got ${good.length - 1}`,
    );
  });

  it('a flipped byte in the data or in the header is a ChecksumError', () => {
    const d = good.slice();
    d[d.length - 3] ^= 0x10;
    expectError(() => decodeModel(d), ChecksumError);
    const h = good.slice();
    h[20] ^= 0x01;
    expectError(() => decodeModel(h), ChecksumError);
    const c = good.slice();
    c[12] ^= 0x01; // the stored checksum itself
    expectError(() => decodeModel(c), ChecksumError);
  });

  it('trailing bytes are rejected', () => {
    const b = new Uint8Array(good.length + 4);
    b.set(good);
    new DataView(b.buffer).setUint32(12, crc32(b.subarray(16)), true);
    expectError(() => decodeModel(b), ModelFormatError, /unexpected bytes/);
  });

  it('bad header JSON', () => {
    const text = new TextEncoder().encode('{"desc": ');
    const b = new Uint8Array(32);
    b.set(new TextEncoder().encode('MNWB'));
    const dv = new DataView(b.buffer);
    dv.setUint32(4, 1, true);
    dv.setUint32(8, text.length, true);
    b.set(text, 16);
    dv.setUint32(12, crc32(b.subarray(16)), true);
    expectError(() => decodeModel(b), ModelFormatError, /JSON/);
  });

  const tableCases: [string, (h: { tensors: any[] }) => void, RegExp][] = [
    ['negative dim', (h) => (h.tensors[1].shape = [-8]), /shape/],
    ['fractional dim', (h) => (h.tensors[1].shape = [7.5]), /shape/],
    ['wrong byteLength', (h) => (h.tensors[1].byteLength += 2), /byteLength/],
    ['unknown dtype', (h) => (h.tensors[1].dtype = 'f64'), /dtype/],
    ['offset out of range', (h) => (h.tensors[1].offset = 1 << 24), /truncated|range/],
    ['misaligned offset', (h) => (h.tensors[1].offset += 2), /offset/],
    ['duplicate name', (h) => (h.tensors[1].name = h.tensors[0].name), /duplicate/],
    ['u8 without scale', (h) => delete h.tensors[2].scale, /scale/],
    ['u8 with infinite min', (h) => (h.tensors[2].min = null), /scale/],
    ['entry not an object', (h) => (h.tensors[0] = 3), /entry #0/],
  ];
  for (const [what, edit, msg] of tableCases) {
    it(`malformed tensor table: ${what}`, () => {
      expectError(() => decodeModel(rewriteHeader(good, edit)), ModelFormatError, msg);
    });
  }

  it('description errors surface from decode with their class', () => {
    const unknownOp = rewriteHeader(good, (h) => (h.desc.layers[4].op = 'maxPool'));
    expectError(() => decodeModel(unknownOp), UnsupportedModelError, /pool.*maxPool/);
    const wrongShape = rewriteHeader(good, (h) => (h.tensors[0].shape = [3, 3, 8, 3]));
    expectError(() => decodeModel(wrongShape), ModelFormatError, /stem\/kernel.*\[3,3,8,3\]/);
    const dangling = rewriteHeader(good, (h) => (h.desc.layers[2].input = 'nope'));
    expectError(() => decodeModel(dangling), ModelFormatError, /"nope"/);
  });

  it('never throws anything but its own error classes on garbage', () => {
    let state = 12345;
    const rand = (n: number): number => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % n;
    };
    const garbage = [null, -1, 0, 1.5, 1e300, 'x', '', [], {}, [1, 2], true];
    const paths: ((h: any, v: unknown) => void)[] = [
      (h, v) => (h.desc = v),
      (h, v) => (h.tensors = v),
      (h, v) => (h.desc.layers = v),
      (h, v) => (h.desc.layers[rand(7)] = v),
      (h, v) => (h.desc.inputShape = v),
      (h, v) => (h.desc.inputShape[rand(4)] = v),
      (h, v) => (h.desc.labels = v),
      (h, v) => (h.desc.meta = v),
      (h, v) => (h.desc.preprocess = v),
      (h, v) => (h.desc.output = v),
      (h, v) => {
        const l = h.desc.layers[rand(7)];
        const keys = Object.keys(l);
        l[keys[rand(keys.length)]] = v;
      },
      (h, v) => {
        const t = h.tensors[rand(h.tensors.length)];
        const keys = Object.keys(t);
        t[keys[rand(keys.length)]] = v;
      },
      (h, v) => (h.desc.layers[1].batchNorm.epsilon = v),
      (h, v) => (h.desc.layers[0].padding = v),
      (h, v) => (h.desc.layers[0].kernel = v),
    ];
    let typed = 0;
    for (let i = 0; i < 400; i++) {
      const bytes = rewriteHeader(good, (h) => paths[rand(paths.length)](h, garbage[rand(garbage.length)]));
      try {
        decodeModel(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(MobileNetWasmError);
        typed++;
      }
    }
    for (let i = 0; i < 200; i++) {
      const b = good.slice(0, rand(good.length + 1));
      if (b.length > 0) b[rand(b.length)] ^= 1 << rand(8);
      expect(() => decodeModel(b)).toThrow(MobileNetWasmError);
    }
    expect(typed).toBeGreaterThan(200);
    expect(() => decodeModel('nope' as unknown as Uint8Array)).toThrow(ModelFormatError);
  });
});

describe('validateModel', () => {
  function withLayer(i: number, patch: Record<string, unknown>): ModelSource {
    const src = tinyModel();
    src.desc.layers[i] = { ...src.desc.layers[i], ...patch } as LayerDesc;
    return src;
  }

  it('accepts the tiny model', () => {
    expect(() => validateModel(tinyModel())).not.toThrow();
  });

  it('unsupported but well-formed things', () => {
    expectError(() => validateModel(withLayer(4, { op: 'maxPool' })), UnsupportedModelError, /"pool".*maxPool/);
    expectError(() => validateModel(withLayer(0, { kernel: [5, 5] })), UnsupportedModelError, /"stem".*5x5/);
    expectError(() => validateModel(withLayer(1, { kernel: [1, 1] })), UnsupportedModelError, /"dw".*1x1/);
    expectError(() => validateModel(withLayer(0, { stride: 3 })), UnsupportedModelError, /stride 3/);
    expectError(() => validateModel(withLayer(0, { padding: { top: 3, bottom: 0, left: 0, right: 0 } })), UnsupportedModelError, /top padding 3/);
    expectError(() => validateModel(withLayer(2, { activation: 'sigmoid' })), UnsupportedModelError, /"pw".*sigmoid/);
    const big = tinyModel();
    big.desc.inputShape = [1, 5000, 10, 3];
    expectError(() => validateModel(big), UnsupportedModelError, /5000/);
    const gray = tinyModel();
    gray.desc.inputShape = [1, 9, 10, 1];
    expectError(() => validateModel(gray), UnsupportedModelError);
  });

  it('malformed things', () => {
    expectError(() => validateModel(withLayer(2, { input: 'nope' })), ModelFormatError, /"pw".*"nope"/);
    expectError(() => validateModel(withLayer(2, { input: 'sum' })), ModelFormatError, /"sum"/); // a later layer
    expectError(() => validateModel(withLayer(2, { name: 'dw' })), ModelFormatError, /duplicate/);
    expectError(() => validateModel(withLayer(2, { inChannels: 4 })), ModelFormatError, /"pw".*4 input channels/);
    expectError(() => validateModel(withLayer(5, { inFeatures: 9 })), ModelFormatError, /"fc"/);
    expectError(() => validateModel(withLayer(0, { padding: { top: -1, bottom: 0, left: 0, right: 0 } })), ModelFormatError);
    expectError(() => validateModel(withLayer(0, { padding: 'full' })), ModelFormatError);
    expectError(() => validateModel(withLayer(3, { inputs: ['stem', 'pool'] })), ModelFormatError, /"pool".*earlier/);
    expectError(() => validateModel(withLayer(1, { batchNorm: { mean: 'bn/mean', variance: 'bn/var', epsilon: NaN } })), ModelFormatError);
    const missing = tinyModel();
    missing.tensors.splice(1, 1);
    expectError(() => validateModel(missing), ModelFormatError, /"stem".*stem\/bias.*missing/);
    const wrongShape = tinyModel();
    wrongShape.tensors[3] = tensor('bn/mean', [4], 'f32');
    expectError(() => validateModel(wrongShape), ModelFormatError, /bn\/mean/);
    const labels = tinyModel();
    labels.desc.labels = ['a'];
    expectError(() => validateModel(labels), ModelFormatError, /1 labels/);
    const output = tinyModel();
    output.desc.output = 'nope';
    expectError(() => validateModel(output), ModelFormatError, /output/);
    const tiny = tinyModel();
    tiny.desc.inputShape = [1, 1, 1, 3];
    tiny.desc.layers[0] = { ...tiny.desc.layers[0], padding: 'valid' } as LayerDesc;
    expectError(() => validateModel(tiny), ModelFormatError, /"stem".*empty/);
  });
});

describe('shapes and padding', () => {
  it('resolvePadding follows TensorFlow', () => {
    expect(resolvePadding('same', 224, 224, 3, 3, 2)).toEqual({ top: 0, bottom: 1, left: 0, right: 1, outH: 112, outW: 112 });
    expect(resolvePadding('same', 7, 8, 3, 3, 2)).toEqual({ top: 1, bottom: 1, left: 0, right: 1, outH: 4, outW: 4 });
    expect(resolvePadding('same', 5, 5, 3, 3, 1)).toEqual({ top: 1, bottom: 1, left: 1, right: 1, outH: 5, outW: 5 });
    expect(resolvePadding('same', 5, 5, 1, 1, 2)).toEqual({ top: 0, bottom: 0, left: 0, right: 0, outH: 3, outW: 3 });
    expect(resolvePadding('valid', 225, 224, 3, 3, 2)).toMatchObject({ outH: 112, outW: 111 });
    expect(resolvePadding({ top: 0, bottom: 1, left: 0, right: 1 }, 224, 224, 3, 3, 2)).toMatchObject({ outH: 112, outW: 112 });
    expect(resolvePadding('valid', 2, 2, 3, 3, 1).outH).toBeLessThanOrEqual(0);
  });

  it('inferShapes on the tiny model', () => {
    const s = inferShapes(tinyModel().desc);
    expect(s.get('input')).toEqual([1, 9, 10, 3]);
    // Explicit pads then valid: floor((9 + 0 + 1 - 3) / 2) + 1 = 4 rows, floor((10 + 1 - 3) / 2) + 1 = 5 columns.
    expect(s.get('stem')).toEqual([1, 4, 5, 8]);
    expect(s.get('dw')).toEqual([1, 4, 5, 8]);
    expect(s.get('pool')).toEqual([1, 8]);
    expect(s.get('prob')).toEqual([1, 3]);
  });
});

describe('dequantize', () => {
  it('u8 is q * scale + min', () => {
    const t: StoredTensor = { name: 'q', shape: [4], dtype: 'u8', data: new Uint8Array([0, 1, 128, 255]), scale: 0.5, min: -1 };
    expect(Array.from(dequantize(t))).toEqual([-1, -0.5, 63, 126.5]);
  });

  it('f16 including subnormals, infinities and NaN', () => {
    const halves = [0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x3555, 0x7bff, 0x7c00, 0xfc00, 0x7e00];
    const data = new Uint8Array(halves.length * 2);
    halves.forEach((h, i) => new DataView(data.buffer).setUint16(2 * i, h, true));
    const out = dequantize({ name: 'h', shape: [halves.length], dtype: 'f16', data });
    expect(Object.is(out[1], -0)).toBe(true);
    expect(Array.from(out.subarray(0, 11))).toEqual([
      0, -0, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 1, -2, Math.fround(0.333251953125), 65504, Infinity, -Infinity,
    ]);
    expect(out[11]).toBeNaN();
    expect(halfToFloat(0x3555)).toBe(0.333251953125);
  });

  it('f32 is a copy, also from an unaligned view', () => {
    const f = new Float32Array([1.5, -2.25, 3e-30]);
    const backing = new Uint8Array(13);
    backing.set(new Uint8Array(f.buffer), 1);
    const t: StoredTensor = { name: 'f', shape: [3], dtype: 'f32', data: backing.subarray(1) };
    const out = dequantize(t);
    expect(Array.from(out)).toEqual(Array.from(f));
    out[0] = 9;
    expect(backing[1]).toBe(new Uint8Array(f.buffer)[0]);
  });

  it('rejects a length mismatch with a typed error', () => {
    expectError(() => dequantize({ name: 'x', shape: [3], dtype: 'f16', data: new Uint8Array(5) }), ModelFormatError);
  });
});

// ---------------------------------------------------------------------------------------
// The converter on the real nsfwjs files

describe('nsfwjs mobilenet_v2 conversion', () => {
  let files: Awaited<ReturnType<typeof readTfjsModelDir>>;
  let src: ModelSource;

  beforeAll(async () => {
    files = await readTfjsModelDir(join(NSFWJS_DIR, 'model.min.js'));
    src = await convertPath(join(NSFWJS_DIR, 'model.min.js'));
  });

  it('reads the JS-wrapped topology and base64 shard', () => {
    const mj = files.modelJson as any;
    const layers = mj.modelTopology.model_config.config.layers as { class_name: string }[];
    expect(layers.length).toBe(162);
    const byClass: Record<string, number> = {};
    for (const l of layers) byClass[l.class_name] = (byClass[l.class_name] ?? 0) + 1;
    expect(byClass).toEqual({
      InputLayer: 1, ZeroPadding2D: 5, Conv2D: 35, BatchNormalization: 52, ReLU: 35, DepthwiseConv2D: 17,
      Add: 10, AveragePooling2D: 1, Flatten: 1, Dense: 3, Dropout: 2,
    });
    expect(files.weightData.byteLength).toBe(2_619_461);
  });

  it('folds 162 Keras layers into 67 fused layers', () => {
    const counts: Record<string, number> = {};
    for (const l of src.desc.layers) {
      const key = l.op === 'conv2d' ? `conv2d ${l.kernel.join('x')}` : l.op;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    // 35 Conv2D = stem 3x3 + 16 expand + 17 project + Conv_1; all 52 BN and 35 ReLU folded.
    expect(counts).toEqual({ 'conv2d 3x3': 1, depthwise: 17, 'conv2d 1x1': 34, add: 10, globalAvgPool: 1, dense: 3, softmax: 1 });
    expect(src.desc.layers.length).toBe(67);
    const convs = src.desc.layers.filter((l) => l.op === 'conv2d' || l.op === 'depthwise');
    expect(convs.every((l) => l.batchNorm?.epsilon === 0.001 && l.bias === undefined)).toBe(true);
    const explicit = convs.filter((l) => typeof l.padding === 'object');
    expect(explicit.map((l) => l.name)).toEqual([
      'Conv1', 'block_1_depthwise', 'block_3_depthwise', 'block_6_depthwise', 'block_13_depthwise',
    ]);
    expect(explicit.every((l) => JSON.stringify(l.padding) === '{"top":0,"bottom":1,"left":0,"right":1}' && l.stride === 2)).toBe(true);
    // ReLU6 everywhere except after the project convs.
    const linear = convs.filter((l) => l.activation === 'linear').map((l) => l.name);
    expect(linear.length).toBe(17);
    expect(linear.every((n) => n.endsWith('_project'))).toBe(true);
    expect(src.desc.layers.filter((l) => l.op === 'dense').map((l) => [l.name, l.activation, l.bias !== undefined])).toEqual([
      ['dense_1', 'relu', true], ['dense_2', 'relu', true], ['dense_3', 'linear', true],
    ]);
  });

  it('keeps all 266 tensors as the original uint8 bytes', () => {
    expect(src.tensors.length).toBe(266);
    const values = src.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(values).toBe(2_619_461);
    expect(src.tensors.every((t) => t.dtype === 'u8')).toBe(true);
    const manifest = (files.modelJson as any).weightsManifest[0].weights as any[];
    let offset = 0;
    const byName = new Map(src.tensors.map((t) => [t.name, t]));
    for (const w of manifest) {
      const n = w.shape.reduce((a: number, b: number) => a * b, 1);
      const t = byName.get(w.name)!;
      expect(t, w.name).toBeDefined();
      expect(t.shape).toEqual(w.shape);
      expect(t.scale).toBe(w.quantization.scale);
      expect(t.min).toBe(w.quantization.min);
      expect(Buffer.compare(t.data, files.weightData.subarray(offset, offset + n))).toBe(0);
      offset += n;
    }
    expect(offset).toBe(files.weightData.byteLength);
  });

  it('has the nsfwjs labels, preprocessing, provenance and shapes', () => {
    expect(src.desc.labels).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
    expect(src.desc.preprocess).toEqual({ resize: 'bilinear', alignCorners: true, scale: 1 / 255, offset: 0 });
    expect(src.desc.meta).toMatchObject({ source: 'nsfwjs@4.4.0 dist/models/mobilenet_v2', license: 'MIT' });
    expect(src.desc.family).toBe('mobilenet_v2');
    expect(src.desc.inputShape).toEqual([1, 224, 224, 3]);
    const shapes = inferShapes(src.desc);
    expect(shapes.get('Conv1')).toEqual([1, 112, 112, 32]);
    expect(shapes.get('Conv_1')).toEqual([1, 7, 7, 1280]);
    expect(shapes.get('average_pooling2d_1')).toEqual([1, 1280]);
    expect(shapes.get(src.desc.output)).toEqual([1, 5]);
  });

  it('round-trips through .mnw, and the shipped file is up to date', () => {
    const bytes = encodeModel(src);
    const back = decodeModel(bytes);
    expect(back.desc).toEqual(src.desc);
    expect(back.tensors.every((t, i) => Buffer.compare(t.data, src.tensors[i].data) === 0)).toBe(true);
    if (existsSync(SHIPPED)) expect(Buffer.compare(readFileSync(SHIPPED), bytes)).toBe(0);
  });

  it('caller options override the nsfwjs defaults', async () => {
    const other = await convertPath(NSFWJS_DIR, { labels: ['1', '2', '3', '4', '5'], meta: { note: 'x' } });
    expect(other.desc.labels).toEqual(['1', '2', '3', '4', '5']);
    expect(other.desc.meta).toMatchObject({ license: 'MIT', note: 'x' });
    const plain = await convertPath(NSFWJS_DIR, { nsfwjs: false });
    expect(plain.desc.labels).toBeUndefined();
    expect(plain.desc.preprocess).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------
// The converter on small synthetic Keras models

describe('convertTfjsLayers on synthetic models', () => {
  type W = { name: string; shape: number[]; dtype: 'float32'; quantization?: Record<string, unknown> };
  function kerasModel(quant?: 'uint8' | 'float16') {
    const ref = (n: string) => [[[n, 0, 0, {}]]];
    const layers = [
      { name: 'in', class_name: 'InputLayer', config: { batch_input_shape: [null, 8, 8, 3] }, inbound_nodes: [] },
      { name: 'pad', class_name: 'ZeroPadding2D', config: { padding: [[0, 1], [0, 1]] }, inbound_nodes: ref('in') },
      { name: 'c1', class_name: 'Conv2D', config: { filters: 4, kernel_size: [3, 3], strides: [2, 2], padding: 'valid', activation: 'relu', use_bias: true }, inbound_nodes: ref('pad') },
      { name: 'dw', class_name: 'DepthwiseConv2D', config: { kernel_size: 3, strides: 1, padding: 'same', use_bias: false, depth_multiplier: 1 }, inbound_nodes: ref('c1') },
      { name: 'bn', class_name: 'BatchNormalization', config: { axis: -1, epsilon: 1e-5, scale: false, center: true }, inbound_nodes: ref('dw') },
      { name: 'r6', class_name: 'ReLU', config: { max_value: 6 }, inbound_nodes: ref('bn') },
      { name: 'c2', class_name: 'Conv2D', config: { filters: 4, kernel_size: 1, padding: 'same', use_bias: false }, inbound_nodes: ref('r6') },
      { name: 'sum', class_name: 'Add', config: {}, inbound_nodes: [[['c1', 0, 0, {}], ['c2', 0, 0, {}]]] },
      { name: 'gap', class_name: 'GlobalAveragePooling2D', config: {}, inbound_nodes: ref('sum') },
      { name: 'drop', class_name: 'Dropout', config: { rate: 0.5 }, inbound_nodes: ref('gap') },
      { name: 'fc', class_name: 'Dense', config: { units: 2, activation: 'linear', use_bias: true }, inbound_nodes: ref('drop') },
      { name: 'sm', class_name: 'Activation', config: { activation: 'softmax' }, inbound_nodes: ref('fc') },
    ];
    const weights: W[] = [
      { name: 'c1/kernel', shape: [3, 3, 3, 4], dtype: 'float32' },
      { name: 'c1/bias', shape: [4], dtype: 'float32' },
      { name: 'dw/depthwise_kernel', shape: [3, 3, 4, 1], dtype: 'float32' },
      { name: 'bn/beta', shape: [4], dtype: 'float32' },
      { name: 'bn/moving_mean', shape: [4], dtype: 'float32' },
      { name: 'bn/moving_variance', shape: [4], dtype: 'float32' },
      { name: 'c2/kernel', shape: [1, 1, 4, 4], dtype: 'float32' },
      { name: 'fc/kernel', shape: [4, 2], dtype: 'float32' },
      { name: 'fc/bias', shape: [2], dtype: 'float32' },
    ];
    if (quant === 'uint8') weights.forEach((w) => (w.quantization = { dtype: 'uint8', scale: 0.02, min: -1 }));
    if (quant === 'float16') weights.forEach((w) => (w.quantization = { dtype: 'float16' }));
    const bytesPer = quant === 'uint8' ? 1 : quant === 'float16' ? 2 : 4;
    const total = weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * bytesPer, 0);
    const data = new Uint8Array(total).map((_, i) => (i * 7) & 0xff);
    const modelJson = {
      modelTopology: {
        keras_version: '2.2.4',
        model_config: { class_name: 'Model', config: { name: 'm', layers, input_layers: [['in', 0, 0]], output_layers: [['sm', 0, 0]] } },
      },
      weightsManifest: [{ paths: ['group1-shard1of2', 'group1-shard2of2'], weights }],
    };
    return { modelJson, data, layers };
  }

  it('folds padding, batch-norm and activations and keeps each stored dtype', () => {
    for (const [quant, dtype] of [[undefined, 'f32'], ['uint8', 'u8'], ['float16', 'f16']] as const) {
      const { modelJson, data } = kerasModel(quant);
      const src = convertTfjsLayers(modelJson, data, { labels: ['x', 'y'] });
      expect(src.desc.layers.map((l) => `${l.op}:${l.name}`)).toEqual([
        'conv2d:c1', 'depthwise:dw', 'conv2d:c2', 'add:sum', 'globalAvgPool:gap', 'dense:fc', 'softmax:sm',
      ]);
      const [c1, dw] = src.desc.layers as [any, any];
      expect(c1.padding).toEqual({ top: 0, bottom: 1, left: 0, right: 1 });
      expect(c1.activation).toBe('relu');
      expect(c1.bias).toBe('c1/bias');
      expect(dw.activation).toBe('relu6');
      expect(dw.batchNorm).toEqual({ mean: 'bn/moving_mean', variance: 'bn/moving_variance', beta: 'bn/beta', epsilon: 1e-5 });
      expect(src.desc.output).toBe('sm');
      expect(src.tensors.every((t) => t.dtype === dtype)).toBe(true);
      expect(src.tensors.reduce((n, t) => n + t.data.byteLength, 0)).toBe(data.byteLength);
      expect(decodeModel(encodeModel(src)).desc).toEqual(src.desc);
    }
  });

  it('accepts a Sequential config', () => {
    const modelJson = {
      modelTopology: {
        class_name: 'Sequential',
        config: {
          name: 's',
          layers: [
            { class_name: 'Conv2D', config: { name: 'c', batch_input_shape: [null, 4, 4, 3], filters: 2, kernel_size: [1, 1], activation: 'relu6', use_bias: false } },
            { class_name: 'Flatten', config: { name: 'f' } },
          ],
        },
      },
      weightsManifest: [{ paths: [], weights: [{ name: 'c/kernel', shape: [1, 1, 3, 2], dtype: 'float32' }] }],
    };
    // Flatten of a 4x4 map is not supported...
    expectError(() => convertTfjsLayers(modelJson, new Uint8Array(24)), UnsupportedModelError, /Flatten "f"/);
    modelJson.modelTopology.config.layers.pop();
    // ...without it the conv alone converts.
    const src = convertTfjsLayers(modelJson, new Uint8Array(24));
    expect(src.desc.layers).toMatchObject([{ op: 'conv2d', name: 'c', activation: 'relu6', inChannels: 3, outChannels: 2 }]);
    expect(src.desc.inputShape).toEqual([1, 4, 4, 3]);
  });

  it('reports unsupported layers by class and name', () => {
    const { modelJson, data, layers } = kerasModel();
    layers[5].class_name = 'LeakyReLU';
    layers[8].class_name = 'MaxPooling2D';
    const e = errorOf(() => convertTfjsLayers(modelJson, data)) as Error;
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/LeakyReLU \(r6\).*MaxPooling2D \(gap\)/);
  });

  it('refuses folds that would change another reader', () => {
    const { modelJson, data, layers } = kerasModel();
    // "dw" is read by the BatchNormalization and the Add: folding would change the Add's input.
    layers[7].inbound_nodes = [[['dw', 0, 0, {}], ['c2', 0, 0, {}]]];
    expectError(() => convertTfjsLayers(modelJson, data), UnsupportedModelError, /BatchNormalization "bn"/);
  });

  it('typed errors for a broken manifest', () => {
    const { modelJson, data } = kerasModel();
    expectError(() => convertTfjsLayers(modelJson, data.subarray(10)), ModelFormatError, /missing shard/);
    (modelJson.weightsManifest[0].weights as W[]).splice(0, 1);
    expectError(() => convertTfjsLayers(modelJson, data), ModelFormatError);
    expectError(() => convertTfjsLayers(42, data), ModelFormatError);
  });

  describe('reading model.json with binary shards from disk', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'mnw-format-test-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('concatenates the shards in manifest order', async () => {
      const { modelJson, data } = kerasModel('uint8');
      writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
      writeFileSync(join(dir, 'group1-shard1of2'), data.subarray(0, 50));
      writeFileSync(join(dir, 'group1-shard2of2'), data.subarray(50));
      const read = await readTfjsModelDir(join(dir, 'model.json'));
      expect(Buffer.compare(read.weightData, data)).toBe(0);
      const src = await convertPath(dir, { family: 'tiny' });
      expect(src.desc.family).toBe('tiny');
      expect(src.desc.labels).toBeUndefined();
      rmSync(join(dir, 'group1-shard2of2'));
      await expect(readTfjsModelDir(dir)).rejects.toBeInstanceOf(ModelFormatError);
    });
  });
});
