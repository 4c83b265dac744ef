// The `.mnw` container (see docs/FORMAT.md) and the structural validation of a model
// description. This file must stay usable in browsers: no node: imports, no Buffer.
//
//   offset 0  : magic "MNWB"
//   offset 4  : u32 LE format version (1)
//   offset 8  : u32 LE J = byte length of the header JSON
//   offset 12 : u32 LE CRC-32 (IEEE) of bytes [16, end of file)
//   offset 16 : J bytes UTF-8 JSON { desc, tensors: [{ name, shape, dtype, offset, byteLength, scale?, min? }] }
//   then zero padding to a multiple of 16 = data section start; tensor offsets are
//   relative to it and multiples of 4.

import type {
  Activation,
  LayerDesc,
  ModelDesc,
  ModelSource,
  Padding,
  StoredDtype,
  StoredTensor,
} from './desc.js';
import { ChecksumError, MobileNetWasmError, ModelFormatError, UnsupportedModelError, typedErrors } from './errors.js';

export const MNW_MAGIC = 'MNWB';
export const MNW_VERSION = 1;
/** Magic, version, header length and checksum. */
const PREFIX_BYTES = 16;
const DATA_ALIGN = 16;
const TENSOR_ALIGN = 4;
/** Largest accepted input side; bounds the arena the planner may be asked for. */
export const MAX_INPUT_SIDE = 4096;
const MAX_EXPLICIT_PAD = 2;

const DTYPE_BYTES: Record<StoredDtype, number> = { f32: 4, f16: 2, u8: 1 };
const KNOWN_OPS = ['conv2d', 'depthwise', 'add', 'globalAvgPool', 'dense', 'softmax'] as const;
const KNOWN_ACTIVATIONS: readonly Activation[] = ['linear', 'relu', 'relu6'];

/** Bytes per stored value of a dtype. */
export function bytesPerValue(dtype: StoredDtype): number {
  return DTYPE_BYTES[dtype];
}

// ---------------------------------------------------------------------------------------
// CRC-32

// Slice-by-8 tables: table k maps a byte to its CRC contribution k bytes further on, so the
// main loop consumes 8 bytes per step. Loading a model checks 2.7 MB; the byte-at-a-time loop
// took ~11 ms of startup there, this ~3 ms.
const CRC_TABLES: Uint32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k][n] = (t[k - 1][n] >>> 8) ^ t[0][t[k - 1][n] & 0xff];
  }
  return t;
})();
/** Node's native CRC-32 (zlib.crc32, Node 20.15+), once useNativeCrc32() has found it. */
let nativeCrc32: ((b: Uint8Array) => number) | null = null;

/**
 * Looks up Node's zlib.crc32, which checks a 2.7 MB model in ~0.3 ms where this module's
 * table-driven loop, still cold at startup, takes ~13 ms. Async because node:zlib can only
 * be imported lazily here (the same module runs in browsers). Harmless where it is missing.
 */
export async function useNativeCrc32(): Promise<void> {
  if (nativeCrc32 || !(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) return;
  try {
    const zlib = (await import('node:zlib')) as { crc32?: (b: Uint8Array) => number };
    if (typeof zlib.crc32 === 'function') {
      const f = zlib.crc32;
      nativeCrc32 = (b) => f(b) >>> 0;
    }
  } catch {
    // not available: the JavaScript loop below does the same
  }
}

export function crc32(bytes: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(bytes) : crc32Tables(bytes);
}

/** CRC-32 (IEEE, as zlib and PNG) in JavaScript, slice-by-8. */
export function crc32Tables(bytes: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES;
  let c = 0xffffffff;
  const n = bytes.length;
  const end8 = n - (n % 8);
  let i = 0;
  for (; i < end8; i += 8) {
    const a = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ c;
    c = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[bytes[i + 4]] ^ t2[bytes[i + 5]] ^ t1[bytes[i + 6]] ^ t0[bytes[i + 7]];
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------
// Encoding

interface TensorEntry {
  name: string;
  shape: number[];
  dtype: StoredDtype;
  offset: number;
  byteLength: number;
  scale?: number;
  min?: number;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Serializes a model. Validates it first, so every file written can be read back. */
export function encodeModel(src: ModelSource): Uint8Array {
  validateModel(src);
  const entries: TensorEntry[] = [];
  let dataLength = 0;
  for (const t of src.tensors) {
    const offset = alignUp(dataLength, TENSOR_ALIGN);
    const entry: TensorEntry = { name: t.name, shape: t.shape, dtype: t.dtype, offset, byteLength: t.data.byteLength };
    if (t.dtype === 'u8') Object.assign(entry, { scale: t.scale, min: t.min });
    entries.push(entry);
    dataLength = offset + t.data.byteLength;
  }
  const header = new TextEncoder().encode(JSON.stringify({ desc: src.desc, tensors: entries }));
  const dataStart = alignUp(PREFIX_BYTES + header.length, DATA_ALIGN);
  const out = new Uint8Array(dataStart + dataLength);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MNW_MAGIC), 0);
  view.setUint32(4, MNW_VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, PREFIX_BYTES);
  src.tensors.forEach((t, i) => out.set(t.data, dataStart + entries[i].offset));
  view.setUint32(12, crc32(out.subarray(PREFIX_BYTES)), true);
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding

/**
 * Parses a `.mnw` file. Throws only ModelFormatError (ChecksumError on corruption) or
 * UnsupportedModelError. Tensor data are views into `bytes`, not copies.
 */
export function decodeModel(bytes: Uint8Array | ArrayBuffer): ModelSource {
  try {
    return decodeUnchecked(bytes);
  } catch (e) {
    // The contract is typed errors only; a RangeError from a hostile length field or a
    // bug must not leak out as something callers cannot `instanceof`.
    if (e instanceof MobileNetWasmError) throw e;
    throw new ModelFormatError(`unreadable model file: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function decodeUnchecked(input: Uint8Array | ArrayBuffer): ModelSource {
  const bytes = toBytes(input);
  checkMagic(bytes);
  if (bytes.length < PREFIX_BYTES) {
    throw new ModelFormatError(`truncated model file: expected at least ${PREFIX_BYTES} bytes, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== MNW_VERSION) {
    throw new ModelFormatError(
      `unsupported .mnw format version ${version}; this build of mobilenet-wasm reads version ${MNW_VERSION}`,
    );
  }
  const headerEnd = PREFIX_BYTES + view.getUint32(8, true);
  if (bytes.length < headerEnd) {
    throw new ModelFormatError(
      `truncated model file: the header alone needs ${headerEnd} bytes, got ${bytes.length}`,
    );
  }
  const storedCrc = view.getUint32(12, true);
  // A corrupted file usually surfaces as bad JSON or a bad table first; blaming the
  // checksum in that case tells the user the truth (the file is damaged, not misbuilt).
  const formatError = (msg: string): ModelFormatError =>
    crc32(bytes.subarray(PREFIX_BYTES)) !== storedCrc ? checksumError(msg) : new ModelFormatError(msg);

  const header = parseHeaderJson(bytes.subarray(PREFIX_BYTES, headerEnd), formatError);
  const dataStart = alignUp(headerEnd, DATA_ALIGN);
  const entries = parseTensorTable(header.tensors, formatError);
  const expected = dataStart + entries.reduce((end, e) => Math.max(end, e.offset + e.byteLength), 0);
  if (bytes.length < expected) {
    throw new ModelFormatError(`truncated model file: expected ${expected} bytes, got ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw formatError(`model file has ${bytes.length - expected} unexpected bytes after the last tensor`);
  }
  const actualCrc = crc32(bytes.subarray(PREFIX_BYTES));
  if (actualCrc !== storedCrc) throw checksumError(`stored ${hex(storedCrc)}, computed ${hex(actualCrc)}`);

  const tensors = entries.map((e): StoredTensor => {
    const t: StoredTensor = {
      name: e.name,
      shape: e.shape,
      dtype: e.dtype,
      data: bytes.subarray(dataStart + e.offset, dataStart + e.offset + e.byteLength),
    };
    if (e.dtype === 'u8') Object.assign(t, { scale: e.scale, min: e.min });
    return t;
  });
  const src: ModelSource = { desc: header.desc as ModelDesc, tensors };
  validateModel(src);
  return src;
}

/**
 * A value from an untrusted model for an error message: never throws (BigInt, circular or
 * 20,000-deep values included) and never runs long.
 */
export function show(v: unknown, max = 120): string {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)) ?? typeof v;
  } catch {
    s = Array.isArray(v) ? `[an array of ${v.length}]` : typeof v === 'object' && v !== null ? '[an object]' : typeof v;
  }
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** The bytes of a model given as a Uint8Array or an ArrayBuffer (from any realm). */
export function toBytes(input: Uint8Array | ArrayBuffer, what = 'a model'): Uint8Array {
  if (input instanceof Uint8Array) return input;
  // instanceof fails across realms (iframes, workers' transfers, vm, jsdom); the tag does not.
  const tag = Object.prototype.toString.call(input);
  if (tag === '[object Uint8Array]') {
    const view = input as unknown as Uint8Array;
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  }
  if (tag === '[object ArrayBuffer]') return new Uint8Array(input as ArrayBuffer);
  throw new ModelFormatError(`${what} must be given as a Uint8Array or an ArrayBuffer`);
}

/** The parts one after another, in one array (the part itself when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

function checksumError(detail: string): ChecksumError {
  return new ChecksumError(`model file is corrupted: CRC-32 mismatch (${detail})`);
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function checkMagic(bytes: Uint8Array): void {
  const n = Math.min(bytes.length, MNW_MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== MNW_MAGIC.charCodeAt(i)) {
      throw new ModelFormatError(`not a mobilenet-wasm model (.mnw): wrong magic bytes${sniffFormat(bytes)}`);
    }
  }
}

/** A hint for the commonest wrong inputs, so the message says what to do instead. */
function sniffFormat(bytes: Uint8Array): string {
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3; // UTF-8 BOM
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  const c = bytes[i];
  const convertHint = '; convert it first with `mobilenet-wasm convert <model.json> <out.mnw>`';
  if (c === 0x7b || c === 0x5b) return ` (this looks like JSON, e.g. a TF.js model.json${convertHint})`;
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return ' (this looks like a zip archive, e.g. a Keras .keras file; extract and convert it)';
  }
  // ONNX ModelProto starts with field 1 (ir_version, varint), then usually field 2 or 7.
  if (bytes[0] === 0x08 && bytes.length > 2 && bytes[1] < 0x80 && (bytes[2] === 0x12 || bytes[2] === 0x3a)) {
    return ' (this looks like an ONNX model, which mobilenet-wasm cannot read)';
  }
  if (c === 0x21 || c === 0x28 || c === 0x2f || (c >= 0x61 && c <= 0x7a)) {
    return ` (this looks like text or JavaScript, e.g. a JS-wrapped TF.js model${convertHint})`;
  }
  return '';
}

interface RawHeader {
  desc: unknown;
  tensors: unknown;
}

function parseHeaderJson(bytes: Uint8Array, formatError: (msg: string) => ModelFormatError): RawHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw formatError(`model header is not valid UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isRecord(parsed) || !isRecord(parsed.desc) || !Array.isArray(parsed.tensors)) {
    throw formatError('model header JSON must be an object with a "desc" object and a "tensors" array');
  }
  return { desc: parsed.desc, tensors: parsed.tensors };
}

function parseTensorTable(raw: unknown, formatError: (msg: string) => ModelFormatError): TensorEntry[] {
  const list = raw as unknown[];
  const seen = new Set<string>();
  return list.map((item, i) => {
    const problem = tensorEntryProblem(item);
    if (problem) throw formatError(`malformed tensor table entry #${i}: ${problem}`);
    const entry = item as TensorEntry;
    if (seen.has(entry.name)) throw formatError(`malformed tensor table: duplicate tensor name "${entry.name}"`);
    seen.add(entry.name);
    return entry;
  });
}

function tensorEntryProblem(item: unknown): string | undefined {
  if (!isRecord(item)) return 'not an object';
  const { name, shape, dtype, offset, byteLength } = item;
  if (typeof name !== 'string' || name === '') return 'name must be a non-empty string';
  const base = storedTensorProblem(name, shape, dtype, item.scale, item.min);
  if (base) return base;
  if (!isNonNegInt(offset) || offset % TENSOR_ALIGN !== 0) {
    return `"${name}": offset must be a non-negative multiple of ${TENSOR_ALIGN}, got ${String(offset)}`;
  }
  const expected = product(shape as number[]) * DTYPE_BYTES[dtype as StoredDtype];
  if (byteLength !== expected) {
    return `"${name}": byteLength ${String(byteLength)} != ${expected} (shape [${String(shape)}] of ${String(dtype)})`;
  }
  return undefined;
}

/** The checks shared by the file's tensor table and in-memory StoredTensors. */
function storedTensorProblem(name: string, shape: unknown, dtype: unknown, scale: unknown, min: unknown): string | undefined {
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    return `"${name}": shape must be an array of non-negative integers, got ${show(shape)}`;
  }
  if (!Number.isSafeInteger(product(shape) * 4)) return `"${name}": shape [${shape}] is too large`;
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'u8') {
    return `"${name}": dtype must be "f32", "f16" or "u8", got ${show(dtype)}`;
  }
  if (dtype === 'u8' && !(isFiniteNumber(scale) && isFiniteNumber(min))) {
    return `"${name}": u8 tensors need finite "scale" and "min"`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Dequantization

export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The loop that dequantizes uint8 values: out[i] = data[i] * scale + min, computed in f64 and
 * rounded once to f32.
 */
export type DequantizeU8 = (data: Uint8Array, scale: number, min: number, out: Float32Array) => void;

export const dequantizeU8: DequantizeU8 = (data, scale, min, out) => {
  for (let i = 0; i < out.length; i++) out[i] = data[i] * scale + min;
};

/** The tensor's values as a fresh Float32Array, whatever its stored dtype. */
export function dequantize(t: StoredTensor): Float32Array {
  return dequantizeWith(t, dequantizeU8);
}

/** dequantize(), with uint8 values computed by `u8` (the same arithmetic, elsewhere). */
export function dequantizeWith(t: StoredTensor, u8: DequantizeU8): Float32Array {
  const problem = storedTensorProblem(t.name, t.shape, t.dtype, t.scale, t.min);
  if (problem) throw new ModelFormatError(`cannot dequantize: ${problem}`);
  const n = product(t.shape);
  if (!(t.data instanceof Uint8Array) || t.data.byteLength !== n * DTYPE_BYTES[t.dtype]) {
    throw new ModelFormatError(`cannot dequantize "${t.name}": expected ${n * DTYPE_BYTES[t.dtype]} bytes`);
  }
  const out = new Float32Array(n);
  if (t.dtype === 'u8') {
    u8(t.data, t.scale as number, t.min as number, out);
  } else if (t.dtype === 'f16') {
    const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  } else if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(t.data);
  } else {
    const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}

/** Little-endian f32 bytes of the values (a view of them on little-endian hosts). */
export function floatBytes(v: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(4 * i, v[i], true);
  return out;
}

/** IEEE 754 binary16 bits -> number, including subnormals, infinities and NaN. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

// ---------------------------------------------------------------------------------------
// Shapes

export interface ResolvedPadding {
  top: number;
  bottom: number;
  left: number;
  right: number;
  outH: number;
  outW: number;
}

/**
 * Pads and output size of a convolution, as TensorFlow computes them. The output may be
 * empty (<= 0) for inputs smaller than the kernel; callers decide whether that is an error.
 */
export function resolvePadding(
  padding: Padding,
  inH: number,
  inW: number,
  kh: number,
  kw: number,
  stride: number,
): ResolvedPadding {
  if (padding === 'same') {
    const [top, bottom, outH] = samePads(inH, kh, stride);
    const [left, right, outW] = samePads(inW, kw, stride);
    return { top, bottom, left, right, outH, outW };
  }
  const p = padding === 'valid' ? { top: 0, bottom: 0, left: 0, right: 0 } : padding;
  return {
    top: p.top,
    bottom: p.bottom,
    left: p.left,
    right: p.right,
    outH: Math.floor((inH + p.top + p.bottom - kh) / stride) + 1,
    outW: Math.floor((inW + p.left + p.right - kw) / stride) + 1,
  };
}

/** TF SAME along one axis: [before, after, out]; the odd pixel goes after. */
function samePads(size: number, k: number, stride: number): [number, number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before, out];
}

/**
 * The activation shape of every layer (and of desc.input): NHWC [1,H,W,C] for maps,
 * [1,F] for vectors. Throws like validateModel on a description it cannot follow.
 */
export function inferShapes(desc: ModelDesc): Map<string, number[]> {
  checkDescFields(desc);
  const shapes = new Map<string, number[]>([[desc.input, [...desc.inputShape]]]);
  for (const layer of desc.layers) {
    if (shapes.has(layer.name)) throw new ModelFormatError(`duplicate layer name "${layer.name}"`);
    shapes.set(layer.name, layerOutputShape(layer, shapes));
  }
  return shapes;
}

/**
 * Output shape of one (field-checked) layer given the shapes computed so far. Also checks
 * the layer's own consistency with its inputs (channels, spatial size).
 */
export function layerOutputShape(layer: LayerDesc, shapes: Map<string, number[]>): number[] {
  const inputOf = (name: string): number[] => {
    const s = shapes.get(name);
    if (!s) throw new ModelFormatError(`layer "${layer.name}": input "${name}" is not the model input or an earlier layer`);
    return s;
  };
  switch (layer.op) {
    case 'conv2d':
    case 'depthwise': {
      const [, h, w, c] = mapShape(layer.name, inputOf(layer.input));
      const inC = layer.op === 'conv2d' ? layer.inChannels : layer.channels;
      const outC = layer.op === 'conv2d' ? layer.outChannels : layer.channels;
      if (c !== inC) {
        throw new ModelFormatError(`layer "${layer.name}": expects ${inC} input channels, "${layer.input}" has ${c}`);
      }
      const p = resolvePadding(layer.padding, h, w, layer.kernel[0], layer.kernel[1], layer.stride);
      if (p.outH <= 0 || p.outW <= 0) {
        throw new ModelFormatError(
          `layer "${layer.name}": output would be empty (${h}x${w} input, ${layer.kernel.join('x')} kernel, stride ${layer.stride})`,
        );
      }
      return [1, p.outH, p.outW, outC];
    }
    case 'add': {
      const [a, b] = layer.inputs.map(inputOf);
      if (a.join() !== b.join()) {
        throw new ModelFormatError(`layer "${layer.name}": cannot add shapes [${a}] and [${b}]`);
      }
      return [...a];
    }
    case 'globalAvgPool':
      return [1, mapShape(layer.name, inputOf(layer.input))[3]];
    case 'dense': {
      const f = flatFeatures(layer.name, inputOf(layer.input));
      if (f !== layer.inFeatures) {
        throw new ModelFormatError(`layer "${layer.name}": expects ${layer.inFeatures} input features, "${layer.input}" has ${f}`);
      }
      return [1, layer.outFeatures];
    }
    case 'softmax':
      return [1, flatFeatures(layer.name, inputOf(layer.input))];
  }
}

function mapShape(layerName: string, shape: number[]): number[] {
  if (shape.length !== 4) {
    throw new ModelFormatError(`layer "${layerName}" needs an NHWC feature map input, got shape [${shape}]`);
  }
  return shape;
}

/** Features of a vector input; a [1,1,1,C] map is the same memory as [1,C] (Keras Flatten). */
function flatFeatures(layerName: string, shape: number[]): number {
  if (shape.length === 2) return shape[1];
  if (shape.length === 4 && shape[1] === 1 && shape[2] === 1) return shape[3];
  throw new UnsupportedModelError(
    `layer "${layerName}" needs a flat input ([1,F] or [1,1,1,C]); flattening a [${shape}] map is not supported`,
  );
}

// ---------------------------------------------------------------------------------------
// Validation

/**
 * Structural validation of a model: the description is well-formed and supported, and
 * every tensor it references exists with the shape the layer needs. Throws
 * ModelFormatError (malformed) or UnsupportedModelError (well-formed, not supported).
 */
export function validateModel(src: ModelSource): void {
  typedErrors(() => validateUnchecked(src));
}

function validateUnchecked(src: ModelSource): void {
  if (!isRecord(src) || !Array.isArray(src.tensors)) {
    throw new ModelFormatError('a model source must be an object with "desc" and a "tensors" array');
  }
  const tensors = checkTensors(src.tensors);
  const shapes = inferShapes(src.desc);
  for (const l of src.desc.layers) checkLayerTensors(l, tensors);
  const out = shapes.get(src.desc.output);
  if (src.desc.labels !== undefined && out) {
    const size = product(out.slice(1));
    if (src.desc.labels.length !== size) {
      throw new ModelFormatError(`model has ${src.desc.labels.length} labels but its output "${src.desc.output}" has ${size} values`);
    }
  }
}

function checkTensors(list: unknown[]): Map<string, StoredTensor> {
  const byName = new Map<string, StoredTensor>();
  list.forEach((t, i) => {
    if (!isRecord(t) || typeof t.name !== 'string' || t.name === '') {
      throw new ModelFormatError(`tensor #${i} must be an object with a non-empty name`);
    }
    const problem = storedTensorProblem(t.name, t.shape, t.dtype, t.scale, t.min);
    if (problem) throw new ModelFormatError(`malformed tensor ${problem}`);
    const st = t as unknown as StoredTensor;
    const expected = product(st.shape) * DTYPE_BYTES[st.dtype];
    if (!(st.data instanceof Uint8Array) || st.data.byteLength !== expected) {
      throw new ModelFormatError(`tensor "${st.name}": data must be a Uint8Array of ${expected} bytes`);
    }
    if (byName.has(st.name)) throw new ModelFormatError(`duplicate tensor name "${st.name}"`);
    byName.set(st.name, st);
  });
  return byName;
}

function checkLayerTensors(l: LayerDesc, tensors: Map<string, StoredTensor>): void {
  const need = (name: string | undefined, shape: number[], role: string): void => {
    if (name === undefined) return;
    const t = tensors.get(name);
    if (!t) throw new ModelFormatError(`layer "${l.name}": ${role} tensor "${name}" is missing`);
    if (t.shape.join() !== shape.join()) {
      throw new ModelFormatError(`layer "${l.name}": ${role} tensor "${name}" has shape [${t.shape}], expected [${shape}]`);
    }
  };
  if (l.op === 'conv2d' || l.op === 'depthwise') {
    const outC = l.op === 'conv2d' ? l.outChannels : l.channels;
    const w = l.op === 'conv2d' ? [...l.kernel, l.inChannels, l.outChannels] : [...l.kernel, l.channels, 1];
    need(l.weights, w, 'weights');
    need(l.bias, [outC], 'bias');
    if (l.batchNorm) {
      const bn = l.batchNorm;
      need(bn.mean, [outC], 'batch-norm mean');
      need(bn.variance, [outC], 'batch-norm variance');
      need(bn.gamma, [outC], 'batch-norm gamma');
      need(bn.beta, [outC], 'batch-norm beta');
    }
  } else if (l.op === 'dense') {
    need(l.weights, [l.inFeatures, l.outFeatures], 'weights');
    need(l.bias, [l.outFeatures], 'bias');
  }
}

/** Type-level checks of the description (it may come from an untrusted file). */
function checkDescFields(desc: unknown): asserts desc is ModelDesc {
  if (!isRecord(desc)) throw new ModelFormatError('model description must be an object');
  const d = desc;
  if (typeof d.family !== 'string') throw new ModelFormatError('desc.family must be a string');
  if (typeof d.input !== 'string' || d.input === '') throw new ModelFormatError('desc.input must be a non-empty string');
  checkInputShape(d.inputShape);
  if (!Array.isArray(d.layers) || d.layers.length === 0) throw new ModelFormatError('desc.layers must be a non-empty array');
  d.layers.forEach(checkLayerFields);
  if (d.layers.some((l) => (l as LayerDesc).name === d.input)) {
    throw new ModelFormatError(`a layer is named like the model input "${d.input}"`);
  }
  if (typeof d.output !== 'string' || !d.layers.some((l) => (l as LayerDesc).name === d.output)) {
    throw new ModelFormatError(`desc.output ${show(d.output)} is not the name of a layer`);
  }
  if (d.labels !== undefined && !(Array.isArray(d.labels) && d.labels.every((s) => typeof s === 'string'))) {
    throw new ModelFormatError('desc.labels must be an array of strings');
  }
  checkPreprocess(d.preprocess);
  if (d.meta !== undefined && !(isRecord(d.meta) && Object.values(d.meta).every((v) => typeof v === 'string'))) {
    throw new ModelFormatError('desc.meta must map strings to strings');
  }
}

function checkInputShape(s: unknown): void {
  if (!Array.isArray(s) || s.length !== 4 || !s.every(isNonNegInt)) {
    throw new ModelFormatError(`desc.inputShape must be [1, H, W, 3] with integers, got ${show(s)}`);
  }
  const [n, h, w, c] = s as number[];
  if (h < 1 || w < 1) throw new ModelFormatError(`desc.inputShape [${s}] has an empty spatial size`);
  if (n !== 1 || c !== 3) {
    throw new UnsupportedModelError(`input shape [${s}] is not supported: only batch 1 with 3 channels (RGB)`);
  }
  if (h > MAX_INPUT_SIDE || w > MAX_INPUT_SIDE) {
    throw new UnsupportedModelError(`input size ${h}x${w} is not supported: at most ${MAX_INPUT_SIDE} per side`);
  }
}

function checkPreprocess(p: unknown): void {
  if (p === undefined) return;
  if (
    !isRecord(p) ||
    p.resize !== 'bilinear' ||
    typeof p.alignCorners !== 'boolean' ||
    !isFiniteNumber(p.scale) ||
    !isFiniteNumber(p.offset)
  ) {
    throw new ModelFormatError(`desc.preprocess must be { resize: "bilinear", alignCorners, scale, offset }, got ${show(p)}`);
  }
}

function checkLayerFields(raw: unknown, index: number): void {
  if (!isRecord(raw) || typeof raw.name !== 'string' || raw.name === '') {
    throw new ModelFormatError(`layer #${index} must be an object with a non-empty "name"`);
  }
  const l = raw;
  const where = `layer "${l.name}"`;
  const bad = (field: string, want: string): never => {
    throw new ModelFormatError(`${where} (${String(l.op)}): "${field}" must be ${want}, got ${show(l[field])}`);
  };
  const str = (f: string): void => {
    if (typeof l[f] !== 'string' || l[f] === '') bad(f, 'a non-empty string');
  };
  const optStr = (f: string): void => {
    if (l[f] !== undefined) str(f);
  };
  const posInt = (f: string): void => {
    if (!isNonNegInt(l[f]) || l[f] === 0) bad(f, 'a positive integer');
  };

  if (typeof l.op !== 'string' || !(KNOWN_OPS as readonly string[]).includes(l.op)) {
    throw new UnsupportedModelError(`${where}: operator ${show(l.op)} is not supported (known: ${KNOWN_OPS.join(', ')})`);
  }
  switch (l.op) {
    case 'conv2d':
    case 'depthwise':
      str('input');
      str('weights');
      optStr('bias');
      if (l.op === 'conv2d') {
        posInt('inChannels');
        posInt('outChannels');
      } else {
        posInt('channels');
      }
      checkKernel(l, where, bad);
      checkPaddingField(l.padding, where, bad);
      checkBatchNorm(l.batchNorm, bad);
      checkActivation(l.activation, where);
      break;
    case 'add':
      if (!Array.isArray(l.inputs) || l.inputs.length !== 2 || !l.inputs.every((s) => typeof s === 'string')) {
        bad('inputs', 'an array of two layer names');
      }
      break;
    case 'dense':
      str('input');
      str('weights');
      optStr('bias');
      posInt('inFeatures');
      posInt('outFeatures');
      checkActivation(l.activation, where);
      break;
    default: // globalAvgPool, softmax
      str('input');
  }
}

type Bad = (field: string, want: string) => never;

function checkKernel(l: Record<string, unknown>, where: string, bad: Bad): void {
  const k = l.kernel;
  if (!Array.isArray(k) || k.length !== 2 || !k.every((v) => isNonNegInt(v) && v > 0)) bad('kernel', '[kh, kw] positive integers');
  const [kh, kw] = k as number[];
  const allowed = l.op === 'conv2d' ? [1, 3] : [3];
  if (kh !== kw || !allowed.includes(kh)) {
    throw new UnsupportedModelError(`${where}: ${kh}x${kw} ${String(l.op)} kernels are not supported (only ${allowed.map((a) => `${a}x${a}`).join(' or ')})`);
  }
  if (!isNonNegInt(l.stride) || l.stride === 0) bad('stride', 'a positive integer');
  if (l.stride !== 1 && l.stride !== 2) throw new UnsupportedModelError(`${where}: stride ${String(l.stride)} is not supported (only 1 or 2)`);
}

function checkPaddingField(p: unknown, where: string, bad: Bad): void {
  if (p === 'same' || p === 'valid') return;
  if (!isRecord(p)) return bad('padding', '"same", "valid" or { top, bottom, left, right }');
  for (const side of ['top', 'bottom', 'left', 'right']) {
    if (!isNonNegInt(p[side])) bad('padding', 'pads that are non-negative integers');
    if ((p[side] as number) > MAX_EXPLICIT_PAD) {
      throw new UnsupportedModelError(`${where}: explicit ${side} padding ${String(p[side])} is not supported (at most ${MAX_EXPLICIT_PAD})`);
    }
  }
}

function checkBatchNorm(bn: unknown, bad: Bad): void {
  if (bn === undefined) return;
  const want = '{ mean, variance, gamma?, beta?, epsilon } with tensor names and a finite epsilon >= 0';
  if (!isRecord(bn) || typeof bn.mean !== 'string' || typeof bn.variance !== 'string') return bad('batchNorm', want);
  if (!(bn.gamma === undefined || typeof bn.gamma === 'string')) bad('batchNorm', want);
  if (!(bn.beta === undefined || typeof bn.beta === 'string')) bad('batchNorm', want);
  if (!isFiniteNumber(bn.epsilon) || bn.epsilon < 0) bad('batchNorm', want);
}

function checkActivation(a: unknown, where: string): void {
  if (typeof a !== 'string' || !(KNOWN_ACTIVATIONS as readonly string[]).includes(a)) {
    throw new UnsupportedModelError(`${where}: activation ${show(a)} is not supported (known: ${KNOWN_ACTIVATIONS.join(', ')})`);
  }
}

// ---------------------------------------------------------------------------------------
// Small helpers

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
