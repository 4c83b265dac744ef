// Reads an ONNX file (ModelProto) into a ModelSource, so `load('model.onnx')` runs a MobileNet
// exported from PyTorch, tf2onnx or our own exporter. Browser-safe: no node: imports, no Buffer,
// and no runtime dependency: the few protobuf messages needed are decoded by hand below, the
// reading twin of the writer in ./export.ts.
//
// The mapping (see docs/ONNX.md, "Importing ONNX"):
//   graph input NCHW [1,3,H,W] (or NHWC [1,H,W,3] followed by Transpose(0,3,1,2)) -> our NHWC input
//   Conv group=1 -> conv2d (OIHW -> HWIO); Conv group=C_in=C_out -> depthwise ([C,1,kh,kw] -> [kh,kw,C,1])
//   BatchNormalization after a Conv -> that conv's batchNorm; Relu / Clip(0,6) -> its activation
//   Pad (zeros, spatial) before a Conv -> added to its pads
//   Add -> add (or, with a per-channel constant, the bias of the Conv/Gemm/MatMul before it)
//   GlobalAveragePool / AveragePool over the whole map / ReduceMean over H,W -> globalAvgPool
//   Flatten / Reshape / Squeeze to [1,C] after pooling -> nothing
//   Gemm, MatMul (+ Add), and a 1x1 Conv on a pooled [1,C,1,1] vector -> dense
//   Softmax -> softmax; Transpose between NCHW and NHWC -> nothing; Identity, Dropout -> nothing
// Anything else is refused with an UnsupportedModelError naming every unsupported operator.

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
import { MobileNetWasmError, ModelFormatError, UnsupportedModelError } from '../errors.js';
import {
  LITTLE_ENDIAN_HOST, concatBytes, floatBytes, halfToFloat, resolvePadding, toBytes, validateModel,
} from '../format.js';

// ---------------------------------------------------------------------------------------
// Protobuf wire format, reading.
//
// Field numbers from onnx/onnx.proto (proto2; the same in onnx-proto 8.0.1's compiled
// definitions, which test/onnx-import.test.ts uses to write models independently of ours):
//   ModelProto         1 ir_version (int64), 8 opset_import (OperatorSetIdProto), 2 producer_name,
//                      3 producer_version, 4 domain, 5 model_version, 6 doc_string, 7 graph,
//                      14 metadata_props (StringStringEntryProto), 20 training_info, 25 functions
//   OperatorSetIdProto 1 domain, 2 version (int64)
//   StringStringEntryProto 1 key, 2 value
//   GraphProto         1 node, 2 name, 5 initializer (TensorProto), 15 sparse_initializer,
//                      10 doc_string, 11 input, 12 output, 13 value_info (ValueInfoProto)
//   NodeProto          1 input, 2 output, 3 name, 4 op_type, 7 domain, 5 attribute, 6 doc_string
//   AttributeProto     1 name, 20 type, 2 f (float), 3 i (int64), 4 s (bytes), 5 t (TensorProto),
//                      6 g (GraphProto), 7 floats, 8 ints, 9 strings, 10 tensors, 11 graphs
//                      (AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7)
//   TensorProto        1 dims (repeated int64), 2 data_type, 4 float_data (packed float),
//                      5 int32_data (packed int32; also float16/bfloat16 bits), 7 int64_data
//                      (packed int64), 8 name, 9 raw_data (little-endian bytes), 10 double_data
//                      (packed double), 13 external_data (StringStringEntryProto), 14 data_location
//                      (DEFAULT 0, EXTERNAL 1)
//                      (TensorProto.DataType: FLOAT 1, UINT8 2, INT8 3, INT32 6, INT64 7,
//                      FLOAT16 10, DOUBLE 11, BFLOAT16 16)
//   ValueInfoProto     1 name, 2 type (TypeProto)
//   TypeProto          1 tensor_type (TypeProto.Tensor: 1 elem_type, 2 shape)
//   TensorShapeProto   1 dim (Dimension: 1 dim_value (int64), 2 dim_param (string))
// Repeated scalars are accepted packed (wire type 2) and unpacked, as protobuf requires of parsers.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const DT_FLOAT = 1;
const DT_UINT8 = 2;
const DT_INT8 = 3;
const DT_INT32 = 6;
const DT_INT64 = 7;
const DT_FLOAT16 = 10;
const DT_DOUBLE = 11;
const DT_BFLOAT16 = 16;
const DATA_TYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING',
  9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};
const dataTypeName = (t: number): string => DATA_TYPE_NAMES[t] ?? `data type ${t}`;

const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;

const utf8 = new TextDecoder('utf-8');

/** A cursor over one message's bytes [pos, end) of the file. Every read is bounds-checked. */
class Reader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }

  more(): boolean {
    return this.pos < this.end;
  }

  fail(msg: string): never {
    throw new ModelFormatError(`not a valid ONNX file: ${msg} (in ${this.what}, byte ${this.pos})`);
  }

  /**
   * A varint as a number: exact up to 2^53; int64 values are read as two's complement (a
   * negative int32/int64 is 10 bytes), so -1 reads as -1. Larger magnitudes are approximate,
   * which only matters for values no supported operator accepts anyway.
   */
  varint(): number {
    const { buf } = this;
    let value = 0;
    let mul = 1;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = buf[this.pos++];
      if (i < 7) {
        value += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) return value;
        continue;
      }
      if (b < 0x80) {
        let big = 0n;
        for (let k = this.pos - 1; k >= start; k--) big = (big << 7n) | BigInt(buf[k] & 0x7f);
        return Number(BigInt.asIntN(64, big));
      }
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** The next field's [number, wire type]. */
  tag(): [number, number] {
    const key = this.varint();
    const field = Math.floor(key / 8);
    if (field < 1 || !Number.isSafeInteger(key)) this.fail(`invalid field tag ${key}`);
    return [field, key % 8];
  }

  /** A length-delimited field's payload as [start, end) within the file. */
  span(): [number, number] {
    const n = this.varint();
    if (n < 0 || n > this.end - this.pos) {
      this.fail(`length ${n} runs past the end of the enclosing message (${this.end - this.pos} bytes left): truncated or corrupt`);
    }
    const start = this.pos;
    this.pos += n;
    return [start, this.pos];
  }

  bytes(): Uint8Array {
    const [s, e] = this.span();
    return this.buf.subarray(s, e);
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  sub(what: string): Reader {
    const [s, e] = this.span();
    return new Reader(this.buf, s, e, what);
  }

  /** `n` raw bytes (a fixed32 / fixed64 value). */
  fixed(n: number): Uint8Array {
    if (this.end - this.pos < n) this.fail('truncated fixed-size value');
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }

  float(): number {
    const b = this.fixed(4);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.fixed(8);
        return;
      case WIRE_LEN:
        this.span();
        return;
      case WIRE_FIXED32:
        this.fixed(4);
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }

  expect(wire: number, want: number, field: string): void {
    if (wire !== want) this.fail(`field ${field} has wire type ${wire}, expected ${want}`);
  }

  /** A repeated varint field, packed or not, appended to `out`. */
  varints(wire: number, out: number[], field: string): void {
    if (wire === WIRE_VARINT) {
      out.push(this.varint());
      return;
    }
    this.expect(wire, WIRE_LEN, field);
    const r = this.sub(field);
    while (r.more()) out.push(r.varint());
    this.pos = r.end;
  }

  /** A repeated fixed-size field (float: 4, double: 8), packed or not: the raw little-endian bytes. */
  fixedRun(wire: number, size: 4 | 8, field: string): Uint8Array {
    if (wire === (size === 4 ? WIRE_FIXED32 : WIRE_FIXED64)) return this.fixed(size);
    this.expect(wire, WIRE_LEN, field);
    const b = this.bytes();
    if (b.length % size !== 0) this.fail(`packed field ${field} has ${b.length} bytes, not a multiple of ${size}`);
    return b;
  }
}

interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  raw?: Uint8Array;
  /** float_data (4 bytes each) or double_data (8 bytes each), in file order. */
  fixedRuns: Uint8Array[];
  /** int32_data or int64_data. */
  ints: number[];
  external: boolean;
  location?: string;
}

interface OnnxAttr {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats: number[];
  ints: number[];
}

interface OnnxNode {
  index: number;
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, OnnxAttr>;
}

interface OnnxValueInfo {
  name: string;
  elemType?: number;
  /** undefined: no shape given; a string: a symbolic dimension; undefined entry: unknown. */
  dims?: (number | string | undefined)[];
}

interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  sparseInitializers: number;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

interface OnnxModel {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsets: Map<string, number>;
  graph?: OnnxGraph;
  metadata: [string, string][];
  functions: number;
}

function parseModel(buf: Uint8Array): OnnxModel {
  const r = new Reader(buf, 0, buf.length, 'ModelProto');
  const m: OnnxModel = { irVersion: 0, producerName: '', producerVersion: '', opsets: new Map(), metadata: [], functions: 0 };
  let graphs = 0;
  while (r.more()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_VARINT, 'ir_version');
        m.irVersion = r.varint();
        break;
      case 2:
        r.expect(wire, WIRE_LEN, 'producer_name');
        m.producerName = r.string();
        break;
      case 3:
        r.expect(wire, WIRE_LEN, 'producer_version');
        m.producerVersion = r.string();
        break;
      case 7: {
        r.expect(wire, WIRE_LEN, 'graph');
        m.graph = parseGraph(r.sub('GraphProto'));
        graphs++;
        break;
      }
      case 8: {
        r.expect(wire, WIRE_LEN, 'opset_import');
        const o = r.sub('OperatorSetIdProto');
        let domain = '';
        let version = 0;
        while (o.more()) {
          const [f, w] = o.tag();
          if (f === 1 && w === WIRE_LEN) domain = o.string();
          else if (f === 2 && w === WIRE_VARINT) version = o.varint();
          else o.skip(w);
        }
        m.opsets.set(domain, version);
        break;
      }
      case 14: {
        r.expect(wire, WIRE_LEN, 'metadata_props');
        m.metadata.push(parseStringEntry(r.sub('StringStringEntryProto')));
        break;
      }
      case 25:
        r.skip(wire);
        m.functions++;
        break;
      default:
        r.skip(wire);
    }
  }
  if (graphs > 1) r.fail('more than one graph field');
  return m;
}

function parseStringEntry(r: Reader): [string, string] {
  let key = '';
  let value = '';
  while (r.more()) {
    const [f, w] = r.tag();
    if (f === 1 && w === WIRE_LEN) key = r.string();
    else if (f === 2 && w === WIRE_LEN) value = r.string();
    else r.skip(w);
  }
  return [key, value];
}

function parseGraph(r: Reader): OnnxGraph {
  const g: OnnxGraph = { name: '', nodes: [], initializers: [], sparseInitializers: 0, inputs: [], outputs: [] };
  while (r.more()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, 'node');
        g.nodes.push(parseNode(r.sub('NodeProto'), g.nodes.length));
        break;
      case 2:
        r.expect(wire, WIRE_LEN, 'name');
        g.name = r.string();
        break;
      case 5:
        r.expect(wire, WIRE_LEN, 'initializer');
        g.initializers.push(parseTensor(r.sub('TensorProto')));
        break;
      case 15:
        r.skip(wire);
        g.sparseInitializers++;
        break;
      case 11:
        r.expect(wire, WIRE_LEN, 'input');
        g.inputs.push(parseValueInfo(r.sub('ValueInfoProto')));
        break;
      case 12:
        r.expect(wire, WIRE_LEN, 'output');
        g.outputs.push(parseValueInfo(r.sub('ValueInfoProto')));
        break;
      default:
        r.skip(wire);
    }
  }
  return g;
}

function parseNode(r: Reader, index: number): OnnxNode {
  const n: OnnxNode = { index, name: '', opType: '', domain: '', inputs: [], outputs: [], attrs: new Map() };
  while (r.more()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, 'input');
        n.inputs.push(r.string());
        break;
      case 2:
        r.expect(wire, WIRE_LEN, 'output');
        n.outputs.push(r.string());
        break;
      case 3:
        r.expect(wire, WIRE_LEN, 'name');
        n.name = r.string();
        break;
      case 4:
        r.expect(wire, WIRE_LEN, 'op_type');
        n.opType = r.string();
        break;
      case 7:
        r.expect(wire, WIRE_LEN, 'domain');
        n.domain = r.string();
        break;
      case 5: {
        r.expect(wire, WIRE_LEN, 'attribute');
        const a = parseAttribute(r.sub('AttributeProto'));
        n.attrs.set(a.name, a);
        break;
      }
      default:
        r.skip(wire);
    }
  }
  if (n.opType === '') r.fail(`node #${index} has no op_type`);
  return n;
}

function parseAttribute(r: Reader): OnnxAttr {
  const a: OnnxAttr = { name: '', type: 0, floats: [], ints: [] };
  let type = 0;
  while (r.more()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_LEN, 'name');
        a.name = r.string();
        break;
      case 20:
        r.expect(wire, WIRE_VARINT, 'type');
        type = r.varint();
        break;
      case 2:
        r.expect(wire, WIRE_FIXED32, 'f');
        a.f = r.float();
        break;
      case 3:
        r.expect(wire, WIRE_VARINT, 'i');
        a.i = r.varint();
        break;
      case 4:
        r.expect(wire, WIRE_LEN, 's');
        a.s = r.bytes();
        break;
      case 5:
        r.expect(wire, WIRE_LEN, 't');
        a.t = parseTensor(r.sub('TensorProto'));
        break;
      case 7: {
        const run = r.fixedRun(wire, 4, 'floats');
        const v = new DataView(run.buffer, run.byteOffset, run.byteLength);
        for (let k = 0; k < run.length; k += 4) a.floats.push(v.getFloat32(k, true));
        break;
      }
      case 8:
        r.varints(wire, a.ints, 'ints');
        break;
      default: // g, strings, tensors, graphs, sparse tensors, type protos: not needed
        r.skip(wire);
    }
  }
  // Files from before AttributeProto.type (IR version 1) name no type: infer it.
  a.type =
    type ||
    (a.f !== undefined ? ATTR_FLOAT : a.i !== undefined ? ATTR_INT : a.s ? ATTR_STRING : a.t ? ATTR_TENSOR :
      a.floats.length ? ATTR_FLOATS : a.ints.length ? ATTR_INTS : 0);
  return a;
}

function parseTensor(r: Reader): OnnxTensor {
  const t: OnnxTensor = { name: '', dims: [], dataType: 0, fixedRuns: [], ints: [], external: false };
  while (r.more()) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        r.varints(wire, t.dims, 'dims');
        break;
      case 2:
        r.expect(wire, WIRE_VARINT, 'data_type');
        t.dataType = r.varint();
        break;
      case 4:
        t.fixedRuns.push(r.fixedRun(wire, 4, 'float_data'));
        break;
      case 10:
        t.fixedRuns.push(r.fixedRun(wire, 8, 'double_data'));
        break;
      case 5:
        r.varints(wire, t.ints, 'int32_data');
        break;
      case 7:
        r.varints(wire, t.ints, 'int64_data');
        break;
      case 8:
        r.expect(wire, WIRE_LEN, 'name');
        t.name = r.string();
        break;
      case 9:
        r.expect(wire, WIRE_LEN, 'raw_data');
        t.raw = r.bytes();
        break;
      case 13: {
        r.expect(wire, WIRE_LEN, 'external_data');
        const [key, value] = parseStringEntry(r.sub('StringStringEntryProto'));
        t.external = true;
        if (key === 'location') t.location = value;
        break;
      }
      case 14:
        r.expect(wire, WIRE_VARINT, 'data_location');
        if (r.varint() === 1) t.external = true;
        break;
      default: // segment, string_data, doc_string, uint64_data
        r.skip(wire);
    }
  }
  if (t.external) {
    throw new ModelFormatError(
      `ONNX tensor "${t.name}" keeps its data in an external file${t.location ? ` ("${t.location}")` : ''}; ` +
        'mobilenet-wasm reads single-file models only: re-save it with all tensors inside ' +
        '(Python: onnx.save_model(onnx.load(path), out, save_as_external_data=False))',
    );
  }
  return t;
}

function parseValueInfo(r: Reader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '' };
  while (r.more()) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WIRE_LEN) v.name = r.string();
    else if (field === 2 && wire === WIRE_LEN) {
      const type = r.sub('TypeProto');
      while (type.more()) {
        const [f, w] = type.tag();
        if (f !== 1 || w !== WIRE_LEN) {
          type.skip(w);
          continue;
        }
        const tt = type.sub('TypeProto.Tensor');
        while (tt.more()) {
          const [f2, w2] = tt.tag();
          if (f2 === 1 && w2 === WIRE_VARINT) v.elemType = tt.varint();
          else if (f2 === 2 && w2 === WIRE_LEN) v.dims = parseShape(tt.sub('TensorShapeProto'));
          else tt.skip(w2);
        }
      }
    } else r.skip(wire);
  }
  return v;
}

function parseShape(r: Reader): (number | string | undefined)[] {
  const dims: (number | string | undefined)[] = [];
  while (r.more()) {
    const [f, w] = r.tag();
    if (f !== 1 || w !== WIRE_LEN) {
      r.skip(w);
      continue;
    }
    const d = r.sub('TensorShapeProto.Dimension');
    let dim: number | string | undefined;
    while (d.more()) {
      const [f2, w2] = d.tag();
      if (f2 === 1 && w2 === WIRE_VARINT) dim = d.varint();
      else if (f2 === 2 && w2 === WIRE_LEN) dim = d.string();
      else d.skip(w2);
    }
    dims.push(dim);
  }
  return dims;
}

// ---------------------------------------------------------------------------------------
// Tensor values


function elementCount(t: OnnxTensor): number {
  let n = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModelFormatError(`ONNX tensor "${t.name}" has an invalid dimension ${d}`);
    n *= d;
  }
  if (!Number.isSafeInteger(n * 8)) throw new ModelFormatError(`ONNX tensor "${t.name}" is too large ([${t.dims}])`);
  return n;
}

/** The bytes of raw_data, checked to hold n values of `size` bytes. */
function rawOf(t: OnnxTensor, n: number, size: number): Uint8Array | undefined {
  if (t.raw === undefined) return undefined;
  if (t.raw.length !== n * size) {
    throw new ModelFormatError(
      `ONNX tensor "${t.name}": raw_data has ${t.raw.length} bytes, [${t.dims}] of ${dataTypeName(t.dataType)} needs ${n * size}`,
    );
  }
  return t.raw;
}

function countMismatch(t: OnnxTensor, got: number, n: number): ModelFormatError {
  return new ModelFormatError(`ONNX tensor "${t.name}" holds ${got} values, its shape [${t.dims}] needs ${n}`);
}

/** A float tensor's values (FLOAT, DOUBLE, FLOAT16, BFLOAT16) as float32. */
function floatValues(t: OnnxTensor): Float32Array {
  const n = elementCount(t);
  // Sizes are checked against the data present before allocating: a hostile shape must not
  // make us allocate gigabytes.
  switch (t.dataType) {
    case DT_FLOAT: {
      const b = rawOf(t, n, 4) ?? concatBytes(t.fixedRuns);
      if (b.length !== 4 * n) throw countMismatch(t, b.length / 4, n);
      const out = new Float32Array(n);
      if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(b);
      else {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
      }
      return out;
    }
    case DT_DOUBLE: {
      const b = rawOf(t, n, 8) ?? concatBytes(t.fixedRuns);
      if (b.length !== 8 * n) throw countMismatch(t, b.length / 8, n);
      const out = new Float32Array(n);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < n; i++) out[i] = v.getFloat64(8 * i, true);
      return out;
    }
    case DT_FLOAT16:
    case DT_BFLOAT16: {
      const conv = t.dataType === DT_FLOAT16 ? halfToFloat : (h: number) => bfloat(h);
      const raw = rawOf(t, n, 2);
      if (!raw && t.ints.length !== n) throw countMismatch(t, t.ints.length, n);
      const out = new Float32Array(n);
      if (raw) {
        const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        for (let i = 0; i < n; i++) out[i] = conv(v.getUint16(2 * i, true));
      } else {
        for (let i = 0; i < n; i++) out[i] = conv(t.ints[i] & 0xffff);
      }
      return out;
    }
    default:
      throw new UnsupportedModelError(`ONNX tensor "${t.name}" has ${dataTypeName(t.dataType)} values; only float tensors are supported as weights`);
  }
}

const bfloatView = new DataView(new ArrayBuffer(4));
function bfloat(h: number): number {
  bfloatView.setUint32(0, h << 16);
  return bfloatView.getFloat32(0);
}

/** An integer tensor's values (INT64, INT32, INT8, UINT8): shapes and axes. */
function intValues(t: OnnxTensor): number[] {
  const n = elementCount(t);
  const size = t.dataType === DT_INT64 ? 8 : t.dataType === DT_INT32 ? 4 : t.dataType === DT_INT8 || t.dataType === DT_UINT8 ? 1 : 0;
  if (size === 0) throw new UnsupportedModelError(`ONNX tensor "${t.name}" has ${dataTypeName(t.dataType)} values where integers are expected`);
  const raw = rawOf(t, n, size);
  if (!raw) {
    if (t.ints.length !== n) throw countMismatch(t, t.ints.length, n);
    return t.dataType === DT_UINT8 ? t.ints.map((x) => x & 0xff) : [...t.ints];
  }
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (size === 8) out.push(Number(v.getBigInt64(8 * i, true)));
    else if (size === 4) out.push(v.getInt32(4 * i, true));
    else out.push(t.dataType === DT_INT8 ? v.getInt8(i) : v.getUint8(i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Detection

/** Tag bytes of every ModelProto field, with its wire type: what may follow ir_version. */
const MODEL_TAGS = new Set([0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2, 0xca]);


/**
 * Whether the bytes start like an ONNX ModelProto: field 1 (ir_version, a small varint), then
 * the tag of another ModelProto field or the end of the data. A `.mnw` file starts with 'M'.
 */
export function looksLikeOnnx(input: Uint8Array | ArrayBuffer): boolean {
  let b: Uint8Array;
  try {
    b = toBytes(input, 'an ONNX model');
  } catch {
    return false;
  }
  if (b.length < 2 || b[0] !== 0x08) return false;
  let i = 1;
  let version = 0;
  let mul = 1;
  for (; i < b.length && i < 5; i++) {
    version += (b[i] & 0x7f) * mul;
    mul *= 128;
    if (b[i] < 0x80) break;
  }
  if (i >= 5 || version < 1 || version > 1000) return false;
  return i + 1 >= b.length || MODEL_TAGS.has(b[i + 1]);
}

// ---------------------------------------------------------------------------------------
// Operator support

const SUPPORTED_OPS = [
  'Conv', 'BatchNormalization', 'Relu', 'Clip', 'Add', 'GlobalAveragePool', 'AveragePool', 'ReduceMean',
  'Flatten', 'Reshape', 'Squeeze', 'Gemm', 'MatMul', 'Softmax', 'Transpose', 'Pad', 'Constant', 'Identity', 'Dropout',
];
const SUPPORTED = new Set(SUPPORTED_OPS);

const isDefaultDomain = (d: string): boolean => d === '' || d === 'ai.onnx';

function nodeLabel(n: OnnxNode): string {
  return n.name !== '' ? `"${n.name}"` : `#${n.index}${n.outputs[0] ? ` (output "${n.outputs[0]}")` : ''}`;
}

/** Refuses, all at once, every operator type no mapping exists for, naming its nodes. */
function checkOperators(nodes: OnnxNode[]): void {
  const bad = new Map<string, OnnxNode[]>();
  for (const n of nodes) {
    if (isDefaultDomain(n.domain) && SUPPORTED.has(n.opType)) continue;
    const key = isDefaultDomain(n.domain) ? n.opType : `${n.domain}.${n.opType}`;
    bad.set(key, [...(bad.get(key) ?? []), n]);
  }
  if (bad.size === 0) return;
  const parts = [...bad].map(([op, list]) => {
    const shown = list.slice(0, 5).map(nodeLabel).join(', ');
    const more = list.length > 5 ? ` and ${list.length - 5} more` : '';
    return `${op} (${list.length === 1 ? 'node' : `${list.length} nodes`} ${shown}${more})`;
  });
  throw new UnsupportedModelError(
    `ONNX model uses ${bad.size === 1 ? 'an operator' : `${bad.size} operators`} mobilenet-wasm does not support: ${parts.join('; ')}. ` +
      `Supported: ${SUPPORTED_OPS.join(', ')} (in the combinations MobileNet V1/V2 use; see docs/ONNX.md)`,
  );
}

// ---------------------------------------------------------------------------------------
// Graph mapping

type Layout = 'nchw' | 'nhwc';
interface Pads {
  top: number;
  left: number;
  bottom: number;
  right: number;
}

/**
 * What an ONNX tensor is in our graph. `layer` names the activation holding its values (always
 * NHWC in our memory); `layout` is how the ONNX graph sees it. `tip` marks the raw output of one
 * of our conv/depthwise/dense layers (through Identity/Dropout) that nothing else reads, into
 * which a following BatchNormalization, bias Add or activation may be folded.
 */
type Value =
  | { kind: 'const'; t: OnnxTensor }
  | { kind: 'map'; layer: string; layout: Layout; h: number; w: number; c: number; tip: boolean }
  /** [1,F] in ONNX (rank 2), or [1,F,1,1] / [1,1,1,F] (rank 4, after pooling). */
  | { kind: 'vec'; layer: string; f: number; rank: 2 | 4; layout: Layout; tip: boolean }
  /** A zero Pad of a map, waiting to be absorbed by the Conv that reads it. */
  | { kind: 'pad'; src: MapValue; pads: Pads; node: string };
type MapValue = Extract<Value, { kind: 'map' }>;
type VecValue = Extract<Value, { kind: 'vec' }>;
type ActValue = MapValue | VecValue;

const FLT_MAX = 3.4028234663852886e38;

function claim(used: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
  used.add(name);
  return name;
}

/** TF/ONNX SAME along one axis: [before, after]; SAME_UPPER puts the odd pixel after. */
function samePads(size: number, k: number, stride: number, upper: boolean): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  const small = Math.floor(total / 2);
  return upper ? [small, total - small] : [total - small, small];
}

class Importer {
  readonly layers: LayerDesc[] = [];
  readonly tensors: StoredTensor[] = [];
  private readonly layerNames = new Set<string>(['input']);
  private readonly tensorNames = new Set<string>();
  private readonly values = new Map<string, Value>();
  private readonly consumers = new Map<string, number>();
  private readonly graphOutputs: Set<string>;
  /** f32 values of the biases we created, by tensor name, so a later bias Add can sum into them. */
  private readonly biasValues = new Map<string, Float32Array>();
  private readonly layerByName = new Map<string, LayerDesc>();
  /** Our NHWC input shape and a description of the ONNX input, set by input(). */
  inputShape: [number, number, number, number] = [1, 1, 1, 3];
  inputNote = '';

  constructor(
    private readonly graph: OnnxGraph,
    private readonly opset: number,
  ) {
    this.graphOutputs = new Set(graph.outputs.map((o) => o.name));
    for (const n of graph.nodes) for (const i of n.inputs) if (i !== '') this.consumers.set(i, (this.consumers.get(i) ?? 0) + 1);
    for (const t of graph.initializers) this.values.set(t.name, { kind: 'const', t });
  }

  /** Read once by exactly one node and not a graph output: may be folded into its producer. */
  private sole(name: string): boolean {
    return this.consumers.get(name) === 1 && !this.graphOutputs.has(name);
  }

  private unsupported(n: OnnxNode, why: string): never {
    throw new UnsupportedModelError(`ONNX node ${nodeLabel(n)} (${n.opType}): ${why}`);
  }

  // -- attributes and inputs ------------------------------------------------------------

  private attrInt(n: OnnxNode, name: string, dflt: number): number {
    const a = n.attrs.get(name);
    if (!a) return dflt;
    if (a.i === undefined) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: attribute "${name}" must be an int`);
    return a.i;
  }

  private attrFloat(n: OnnxNode, name: string, dflt: number): number {
    const a = n.attrs.get(name);
    if (!a) return dflt;
    if (a.f === undefined) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: attribute "${name}" must be a float`);
    return a.f;
  }

  private attrInts(n: OnnxNode, name: string): number[] | undefined {
    const a = n.attrs.get(name);
    return a ? a.ints : undefined;
  }

  private attrString(n: OnnxNode, name: string, dflt: string): string {
    const a = n.attrs.get(name);
    return a?.s ? utf8.decode(a.s) : dflt;
  }

  private value(n: OnnxNode, k: number): Value {
    const name = n.inputs[k];
    if (name === undefined || name === '') throw new ModelFormatError(`ONNX node ${nodeLabel(n)} (${n.opType}) lacks input ${k}`);
    const v = this.values.get(name);
    if (!v) this.unsupported(n, `its input "${name}" comes from an output mobilenet-wasm does not map`);
    return v;
  }

  private optionalConst(n: OnnxNode, k: number): OnnxTensor | undefined {
    if (n.inputs[k] === undefined || n.inputs[k] === '') return undefined;
    return this.constant(n, k);
  }

  private constant(n: OnnxNode, k: number): OnnxTensor {
    const v = this.value(n, k);
    if (v.kind !== 'const') this.unsupported(n, `input ${k} ("${n.inputs[k]}") must be a constant (an initializer or Constant node)`);
    return v.t;
  }

  private act(n: OnnxNode, k: number): ActValue {
    const v = this.value(n, k);
    if (v.kind === 'map' || v.kind === 'vec') return v;
    if (v.kind === 'pad') this.unsupported(n, `reads the output of Pad node ${v.node}; a Pad may only feed a Conv`);
    return this.unsupported(n, `input ${k} ("${n.inputs[k]}") is a constant; only computed activations are supported there`);
  }

  /** The ints of an attribute (older opsets) or of a constant input (newer ones). */
  private intsFromAttrOrInput(n: OnnxNode, attr: string, input: number): number[] | undefined {
    const a = this.attrInts(n, attr);
    if (a) return a;
    const t = this.optionalConst(n, input);
    return t ? intValues(t) : undefined;
  }

  private set(n: OnnxNode, v: Value, k = 0): void {
    const name = n.outputs[k];
    if (name !== undefined && name !== '') this.values.set(name, v);
  }

  // -- our side -------------------------------------------------------------------------

  private layerName(n: OnnxNode): string {
    return claim(this.layerNames, n.name || n.outputs[0] || `${n.opType}_${n.index}`);
  }

  private addLayer<L extends LayerDesc>(layer: L): L {
    this.layers.push(layer);
    this.layerByName.set(layer.name, layer);
    return layer;
  }

  private tensor(base: string, shape: number[], values: Float32Array): string {
    const name = claim(this.tensorNames, base);
    this.tensors.push({ name, shape, dtype: 'f32', data: floatBytes(values) });
    return name;
  }

  /** The conv/depthwise/dense layer whose raw, otherwise unread output `v` is, if any. */
  private foldTarget(v: ActValue): Conv2DLayer | DepthwiseLayer | DenseLayer | undefined {
    if (!v.tip) return undefined;
    const l = this.layerByName.get(v.layer);
    return l && (l.op === 'conv2d' || l.op === 'depthwise' || l.op === 'dense') ? l : undefined;
  }

  /** ONNX dims of an activation. */
  private onnxDims(v: ActValue): number[] {
    if (v.kind === 'map') return v.layout === 'nchw' ? [1, v.c, v.h, v.w] : [1, v.h, v.w, v.c];
    if (v.rank === 2) return [1, v.f];
    return v.layout === 'nchw' ? [1, v.f, 1, 1] : [1, 1, 1, v.f];
  }

  // -- the graph ------------------------------------------------------------------------

  input(): void {
    const inits = new Set(this.graph.initializers.map((t) => t.name));
    const inputs = this.graph.inputs.filter((i) => !inits.has(i.name));
    if (inputs.length !== 1) {
      throw new UnsupportedModelError(
        `ONNX graph has ${inputs.length} inputs (${inputs.map((i) => `"${i.name}"`).join(', ') || 'none'}); mobilenet-wasm models take exactly one image`,
      );
    }
    const inp = inputs[0];
    if (inp.elemType !== undefined && inp.elemType !== DT_FLOAT) {
      throw new UnsupportedModelError(`ONNX input "${inp.name}" is ${dataTypeName(inp.elemType)}; only FLOAT inputs are supported`);
    }
    const dims = inp.dims;
    if (!dims || dims.length !== 4) {
      throw new UnsupportedModelError(
        `ONNX input "${inp.name}" must have a 4-D shape ([1,3,H,W] or [1,H,W,3]), got ${dims ? `[${dims.map((d) => d ?? '?')}]` : 'no shape'}`,
      );
    }
    const [n, ...rest] = dims;
    if (typeof n === 'number' && n !== 1) {
      throw new UnsupportedModelError(`ONNX input "${inp.name}" has batch size ${n}; only batch 1 is supported`);
    }
    if (!rest.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d > 0)) {
      throw new UnsupportedModelError(
        `ONNX input "${inp.name}" has shape [${dims.map((d) => d ?? '?')}] with symbolic or unknown sizes; only the batch dimension may be symbolic`,
      );
    }
    const [d1, d2, d3] = rest;
    // NCHW unless it is clearly NHWC: 3 channels last and not first, or, for [1,3,H,3], every reader a Transpose to NCHW.
    const readers = this.graph.nodes.filter((x) => x.inputs.includes(inp.name));
    const toNchw = (x: OnnxNode): boolean => x.opType === 'Transpose' && (this.attrInts(x, 'perm') ?? []).join() === '0,3,1,2';
    const nhwc = d3 === 3 && (d1 !== 3 || (readers.length > 0 && readers.every(toNchw)));
    const [h, w, c] = nhwc ? [d1, d2, d3] : [d2, d3, d1];
    if (c !== 3) throw new UnsupportedModelError(`ONNX input "${inp.name}" [${dims}] does not have 3 channels (RGB)`);
    this.inputShape = [1, h, w, 3];
    this.inputNote = `"${inp.name}" float32 ${nhwc ? 'NHWC' : 'NCHW'} [${nhwc ? `1,${h},${w},3` : `1,3,${h},${w}`}]`;
    this.values.set(inp.name, { kind: 'map', layer: 'input', layout: nhwc ? 'nhwc' : 'nchw', h, w, c: 3, tip: false });
  }

  /** Nodes in an order where every input is produced first (ONNX requires it; tolerate it not being so). */
  sortedNodes(): OnnxNode[] {
    const produced = new Set<string>(this.values.keys());
    const producers = new Set<string>();
    for (const n of this.graph.nodes) {
      for (const o of n.outputs) {
        if (o === '') continue;
        if (producers.has(o) || produced.has(o)) {
          throw new ModelFormatError(`ONNX tensor "${o}" is produced twice (again by node ${nodeLabel(n)})`);
        }
        producers.add(o);
      }
    }
    for (const n of this.graph.nodes) {
      for (const i of n.inputs) {
        if (i !== '' && !produced.has(i) && !producers.has(i)) {
          throw new ModelFormatError(`ONNX node ${nodeLabel(n)} (${n.opType}) reads "${i}", which no node, initializer or graph input provides`);
        }
      }
    }
    // Already sorted (the normal case): keep the file's order.
    const seen = new Set(produced);
    let sorted = true;
    for (const n of this.graph.nodes) {
      if (!n.inputs.every((i) => i === '' || seen.has(i))) {
        sorted = false;
        break;
      }
      for (const o of n.outputs) seen.add(o);
    }
    if (sorted) return this.graph.nodes;
    // Kahn's algorithm, linear in the graph's size (a hostile file must not make this quadratic).
    const producer = new Map<string, OnnxNode>();
    for (const n of this.graph.nodes) for (const o of n.outputs) if (o !== '') producer.set(o, n);
    const waiting = new Map<OnnxNode, number>();
    const readers = new Map<OnnxNode, OnnxNode[]>();
    const ready: OnnxNode[] = [];
    for (const n of this.graph.nodes) {
      let count = 0;
      for (const i of n.inputs) {
        const p = i === '' || produced.has(i) ? undefined : producer.get(i);
        if (!p) continue;
        count++;
        const list = readers.get(p);
        if (list) list.push(n);
        else readers.set(p, [n]);
      }
      waiting.set(n, count);
      if (count === 0) ready.push(n);
    }
    const order: OnnxNode[] = [];
    for (let k = 0; k < ready.length; k++) {
      const n = ready[k];
      order.push(n);
      for (const r of readers.get(n) ?? []) {
        const left = (waiting.get(r) ?? 0) - 1;
        waiting.set(r, left);
        if (left === 0) ready.push(r);
      }
    }
    if (order.length !== this.graph.nodes.length) {
      const stuck = this.graph.nodes.find((n) => (waiting.get(n) ?? 0) > 0) as OnnxNode;
      throw new ModelFormatError(`ONNX graph has a cycle through node ${nodeLabel(stuck)}`);
    }
    return order;
  }

  node(n: OnnxNode): void {
    switch (n.opType) {
      case 'Constant':
        return this.constantNode(n);
      case 'Identity':
      case 'Dropout':
        return this.passThrough(n);
      case 'Conv':
        return this.conv(n);
      case 'BatchNormalization':
        return this.batchNorm(n);
      case 'Relu':
      case 'Clip':
        return this.activation(n);
      case 'Add':
        return this.add(n);
      case 'GlobalAveragePool':
      case 'AveragePool':
      case 'ReduceMean':
        return this.pool(n);
      case 'Flatten':
      case 'Reshape':
      case 'Squeeze':
        return this.reshape(n);
      case 'Gemm':
      case 'MatMul':
        return this.dense(n);
      case 'Softmax':
        return this.softmax(n);
      case 'Transpose':
        return this.transpose(n);
      case 'Pad':
        return this.pad(n);
      default: // unreachable: checkOperators ran first
        this.unsupported(n, 'operator not supported');
    }
  }

  private constantNode(n: OnnxNode): void {
    const a = [...n.attrs.values()][0];
    if (n.attrs.size !== 1 || !a) throw new ModelFormatError(`ONNX Constant node ${nodeLabel(n)} must have exactly one attribute`);
    const name = n.outputs[0] ?? '';
    let t: OnnxTensor;
    const floats = (v: number[], dims: number[]): OnnxTensor => {
      const raw = floatBytes(Float32Array.from(v));
      return { name, dims, dataType: DT_FLOAT, raw: LITTLE_ENDIAN_HOST ? raw.slice() : raw, fixedRuns: [], ints: [], external: false };
    };
    const ints = (v: number[], dims: number[]): OnnxTensor => ({ name, dims, dataType: DT_INT64, fixedRuns: [], ints: v, external: false });
    if (a.name === 'value' && a.t) t = { ...a.t, name };
    else if (a.name === 'value_float' && a.f !== undefined) t = floats([a.f], []);
    else if (a.name === 'value_floats') t = floats(a.floats, [a.floats.length]);
    else if (a.name === 'value_int' && a.i !== undefined) t = ints([a.i], []);
    else if (a.name === 'value_ints') t = ints(a.ints, [a.ints.length]);
    else this.unsupported(n, `a Constant given by "${a.name}" is not supported (only value, value_float(s), value_int(s))`);
    this.set(n, { kind: 'const', t });
  }

  private passThrough(n: OnnxNode): void {
    if (n.outputs.slice(1).some((o) => o !== '' && (this.consumers.get(o) || this.graphOutputs.has(o)))) {
      this.unsupported(n, 'only its first output (the data) may be used');
    }
    const v = this.value(n, 0);
    if (v.kind === 'map' || v.kind === 'vec') this.set(n, { ...v, tip: v.tip && this.sole(n.outputs[0]) });
    else this.set(n, v);
  }

  private conv(n: OnnxNode): void {
    const xv = this.value(n, 0);
    const wt = this.constant(n, 1);
    const bt = this.optionalConst(n, 2);
    if (wt.dims.length !== 4) this.unsupported(n, `weights [${wt.dims}] are not 4-D: only 2-D convolutions are supported`);
    const [O, Ig, kh, kw] = wt.dims;
    const ks = this.attrInts(n, 'kernel_shape');
    if (ks && ks.join() !== `${kh},${kw}`) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: kernel_shape [${ks}] does not match weights [${wt.dims}]`);
    const dil = this.attrInts(n, 'dilations') ?? [1, 1];
    if (dil.some((d) => d !== 1)) this.unsupported(n, `dilations [${dil}] are not supported (only 1)`);
    const strides = this.attrInts(n, 'strides') ?? [1, 1];
    if (strides.length !== 2 || strides[0] !== strides[1]) this.unsupported(n, `strides [${strides}] are not supported (equal strides only)`);
    const stride = strides[0];
    const group = this.attrInt(n, 'group', 1);

    // A 1x1 convolution of a pooled [1,C,1,1] vector is a dense layer (Keras-style classifiers).
    if (xv.kind === 'vec') {
      const padsAttr = this.attrInts(n, 'pads') ?? [];
      if (xv.rank !== 4 || xv.layout !== 'nchw' || kh !== 1 || kw !== 1 || group !== 1 || padsAttr.some((p) => p !== 0)) {
        this.unsupported(n, 'a Conv of a pooled vector must be 1x1, group 1, unpadded, on [1,C,1,1]');
      }
      if (Ig !== xv.f) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: weights [${wt.dims}] do not match ${xv.f} input channels`);
      const w = floatValues(wt);
      const name = this.layerName(n);
      const out = new Float32Array(Ig * O);
      for (let o = 0; o < O; o++) for (let i = 0; i < Ig; i++) out[i * O + o] = w[o * Ig + i];
      const layer: DenseLayer = {
        name, op: 'dense', input: xv.layer, inFeatures: Ig, outFeatures: O,
        weights: this.tensor(`${name}/W`, [Ig, O], out), activation: 'linear',
      };
      if (bt) layer.bias = this.biasTensor(n, name, bt, O);
      this.addLayer(layer);
      this.set(n, { kind: 'vec', layer: name, f: O, rank: 4, layout: 'nchw', tip: this.sole(n.outputs[0]) });
      return;
    }

    let x: MapValue;
    let extra: Pads = { top: 0, left: 0, bottom: 0, right: 0 };
    if (xv.kind === 'pad') {
      x = xv.src;
      extra = xv.pads;
    } else if (xv.kind === 'map') x = xv;
    else return this.unsupported(n, `input "${n.inputs[0]}" is a constant`);
    if (x.layout !== 'nchw') this.unsupported(n, `reads "${n.inputs[0]}" in NHWC layout; ONNX Conv needs NCHW (a Transpose(0,3,1,2) is missing)`);

    const C = x.c;
    const depthwise = group !== 1;
    if (depthwise && !(group === C && O === C && Ig === 1)) {
      this.unsupported(n, `grouped convolution with group=${group} over ${C} channels (weights [${wt.dims}]) is not supported: only group=1 or depthwise (group = input channels = output channels)`);
    }
    if (!depthwise && Ig !== C) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: weights [${wt.dims}] expect ${Ig} input channels, "${n.inputs[0]}" has ${C}`);

    // Padding: ONNX pads are [top, left, bottom, right] (x1_begin, x2_begin, x1_end, x2_end).
    const h = x.h + extra.top + extra.bottom;
    const w = x.w + extra.left + extra.right;
    const autoPad = this.attrString(n, 'auto_pad', 'NOTSET');
    let padding: Padding;
    if (autoPad === 'SAME_UPPER' && extra.top + extra.left + extra.bottom + extra.right === 0) padding = 'same';
    else {
      let p: Pads;
      if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
        const [t, b] = samePads(h, kh, stride, autoPad === 'SAME_UPPER');
        const [l, r] = samePads(w, kw, stride, autoPad === 'SAME_UPPER');
        p = { top: t, left: l, bottom: b, right: r };
      } else if (autoPad === 'VALID') p = { top: 0, left: 0, bottom: 0, right: 0 };
      else if (autoPad === 'NOTSET') {
        const pads = this.attrInts(n, 'pads') ?? [0, 0, 0, 0];
        if (pads.length !== 4) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: pads [${pads}] must have 4 values`);
        if (pads.some((v) => v < 0)) this.unsupported(n, `negative pads [${pads}] are not supported`);
        p = { top: pads[0], left: pads[1], bottom: pads[2], right: pads[3] };
      } else throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: unknown auto_pad "${autoPad}"`);
      const total = { top: p.top + extra.top, left: p.left + extra.left, bottom: p.bottom + extra.bottom, right: p.right + extra.right };
      padding = total.top + total.left + total.bottom + total.right === 0 ? 'valid' : total;
    }
    const res = resolvePadding(padding, x.h, x.w, kh, kw, stride);
    if (!(res.outH > 0 && res.outW > 0)) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: output would be empty`);

    const wv = floatValues(wt);
    const name = this.layerName(n);
    let layer: Conv2DLayer | DepthwiseLayer;
    if (depthwise) {
      // [C,1,kh,kw] -> [kh,kw,C,1]
      const out = new Float32Array(wv.length);
      for (let c = 0; c < C; c++) for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) out[(y * kw + xx) * C + c] = wv[(c * kh + y) * kw + xx];
      layer = {
        name, op: 'depthwise', input: x.layer, kernel: [kh, kw], stride, padding, channels: C,
        weights: this.tensor(`${name}/W`, [kh, kw, C, 1], out), activation: 'linear',
      };
    } else {
      // OIHW [O,I,kh,kw] -> HWIO [kh,kw,I,O]
      const out = new Float32Array(wv.length);
      for (let o = 0; o < O; o++) {
        for (let i = 0; i < C; i++) {
          for (let y = 0; y < kh; y++) {
            for (let xx = 0; xx < kw; xx++) out[((y * kw + xx) * C + i) * O + o] = wv[((o * C + i) * kh + y) * kw + xx];
          }
        }
      }
      layer = {
        name, op: 'conv2d', input: x.layer, kernel: [kh, kw], stride, padding, inChannels: C, outChannels: O,
        weights: this.tensor(`${name}/W`, [kh, kw, C, O], out), activation: 'linear',
      };
    }
    if (bt) layer.bias = this.biasTensor(n, name, bt, O);
    this.addLayer(layer);
    this.set(n, { kind: 'map', layer: name, layout: 'nchw', h: res.outH, w: res.outW, c: O, tip: this.sole(n.outputs[0]) });
  }

  /** A bias tensor of `size` values from a constant whose values are per output channel. */
  private biasTensor(n: OnnxNode, layer: string, t: OnnxTensor, size: number, scale = 1): string {
    const v = floatValues(t);
    let b: Float32Array;
    if (v.length === size) b = v;
    else if (v.length === 1) b = new Float32Array(size).fill(v[0]);
    else return this.unsupported(n, `bias "${t.name}" [${t.dims}] does not have ${size} values`);
    if (scale !== 1) b = b.map((x) => x * scale);
    const name = this.tensor(`${layer}/B`, [size], b);
    this.biasValues.set(name, b);
    return name;
  }

  private batchNorm(n: OnnxNode): void {
    const x = this.act(n, 0);
    const l = this.foldTarget(x);
    if (!l || l.op === 'dense' || l.batchNorm || l.activation !== 'linear' || x.kind !== 'map') {
      this.unsupported(n, 'a BatchNormalization must directly follow a Conv (before any activation) whose output feeds nothing else');
    }
    if (n.outputs.slice(1).some((o) => o !== '') || this.attrInt(n, 'training_mode', 0) !== 0) {
      this.unsupported(n, 'training-mode batch normalization is not supported');
    }
    if (this.opset < 9 && this.attrInt(n, 'spatial', 1) !== 1) this.unsupported(n, 'spatial=0 is not supported');
    const C = l.op === 'conv2d' ? l.outChannels : l.channels;
    const epsilon = this.attrFloat(n, 'epsilon', 1e-5);
    if (!(Number.isFinite(epsilon) && epsilon >= 0)) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: epsilon ${epsilon} is invalid`);
    const param = (k: number, role: string): string => {
      const t = this.constant(n, k);
      const v = floatValues(t);
      if (v.length !== C) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: ${role} "${t.name}" has ${v.length} values, expected ${C}`);
      return this.tensor(`${l.name}/bn_${role}`, [C], v);
    };
    l.batchNorm = { gamma: param(1, 'gamma'), beta: param(2, 'beta'), mean: param(3, 'mean'), variance: param(4, 'variance'), epsilon };
    this.set(n, { ...x, tip: this.sole(n.outputs[0]) });
  }

  private activation(n: OnnxNode): void {
    let act: Activation = 'relu';
    if (n.opType === 'Clip') {
      let lo: number;
      let hi: number;
      if (this.opset >= 11) {
        const scalar = (k: number, dflt: number): number => {
          const t = this.optionalConst(n, k);
          if (!t) return dflt;
          const v = floatValues(t);
          if (v.length !== 1) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: Clip bound "${t.name}" is not a scalar`);
          return v[0];
        };
        lo = scalar(1, -Infinity);
        hi = scalar(2, Infinity);
      } else {
        lo = this.attrFloat(n, 'min', -FLT_MAX);
        hi = this.attrFloat(n, 'max', FLT_MAX);
      }
      if (lo === 0 && hi === 6) act = 'relu6';
      else if (lo === 0 && hi >= FLT_MAX) act = 'relu';
      else this.unsupported(n, `Clip(min=${lo}, max=${hi}) is not supported: only Clip(0, 6) (ReLU6) and Clip(0, +inf) (ReLU)`);
    }
    const x = this.act(n, 0);
    const l = this.foldTarget(x);
    if (!l || l.activation !== 'linear') {
      this.unsupported(n, 'an activation must directly follow a Conv, Gemm or MatMul (and its BatchNormalization) whose output feeds nothing else; mobilenet-wasm has no standalone activation layer');
    }
    l.activation = act;
    this.set(n, { ...x, tip: false });
  }

  private add(n: OnnxNode): void {
    const a = this.value(n, 0);
    const b = this.value(n, 1);
    if (a.kind === 'const' || b.kind === 'const') {
      // A per-channel constant after a Conv/Gemm/MatMul: its bias.
      const x = a.kind === 'const' ? b : a;
      const cv = a.kind === 'const' ? a : b;
      if (cv.kind !== 'const' || (x.kind !== 'map' && x.kind !== 'vec')) {
        return this.unsupported(n, 'adding two constants, or a constant to a Pad, is not supported');
      }
      const c = cv.t;
      const l = this.foldTarget(x);
      if (!l || l.activation !== 'linear' || (l.op !== 'dense' && l.batchNorm)) {
        this.unsupported(n, 'adding a constant is supported only as the bias of the Conv, Gemm or MatMul right before it');
      }
      const dims = this.onnxDims(x);
      const chAxis = x.kind === 'map' ? (x.layout === 'nchw' ? 1 : 3) : x.rank === 2 ? 1 : x.layout === 'nchw' ? 1 : 3;
      const C = x.kind === 'map' ? x.c : x.f;
      // Right-aligned broadcasting: every dim of the constant is 1 except, optionally, the channel axis.
      const off = dims.length - c.dims.length;
      const perChannel =
        off >= 0 && c.dims.every((d, i) => d === 1 || (i + off === chAxis && d === C));
      if (!perChannel) this.unsupported(n, `constant "${c.name}" [${c.dims}] does not broadcast per channel over [${dims}]`);
      const v = floatValues(c);
      const add = v.length === 1 ? new Float32Array(C).fill(v[0]) : v;
      if (l.bias) {
        const old = this.biasValues.get(l.bias) as Float32Array;
        const sum = old.map((y, i) => y + add[i]);
        this.tensors.splice(this.tensors.findIndex((t) => t.name === l.bias), 1, { name: l.bias, shape: [C], dtype: 'f32', data: floatBytes(sum) });
        this.biasValues.set(l.bias, sum);
      } else {
        l.bias = this.tensor(`${l.name}/B`, [C], add);
        this.biasValues.set(l.bias, add);
      }
      this.set(n, { ...x, tip: this.sole(n.outputs[0]) });
      return;
    }
    if (a.kind === 'pad' || b.kind === 'pad') return this.unsupported(n, 'a Pad may only feed a Conv');
    if (this.onnxDims(a).join() !== this.onnxDims(b).join() || a.kind !== b.kind || a.layout !== b.layout) {
      this.unsupported(n, `adding [${this.onnxDims(a)}] and [${this.onnxDims(b)}] (broadcasting) is not supported`);
    }
    const name = this.layerName(n);
    this.addLayer({ name, op: 'add', inputs: [a.layer, b.layer] });
    this.set(n, { ...a, layer: name, tip: false });
  }

  private pool(n: OnnxNode): void {
    const x = this.act(n, 0);
    if (x.kind !== 'map') return this.unsupported(n, 'pooling is supported on feature maps only');
    let keep = true;
    let layout: Layout = 'nchw';
    if (n.opType === 'ReduceMean') {
      const axes = (this.opset >= 18 ? this.intsFromAttrOrInput(n, 'axes', 1) : this.attrInts(n, 'axes'))?.map((a) => (a < 0 ? a + 4 : a));
      const want = x.layout === 'nchw' ? '2,3' : '1,2';
      if (!axes || [...axes].sort().join() !== want) {
        this.unsupported(n, `ReduceMean over axes [${axes ?? 'all'}] is not supported: only over the spatial axes (${want} for ${x.layout.toUpperCase()})`);
      }
      keep = this.attrInt(n, 'keepdims', 1) !== 0;
      layout = x.layout;
    } else {
      if (x.layout !== 'nchw') this.unsupported(n, `reads "${n.inputs[0]}" in NHWC layout; ONNX ${n.opType} needs NCHW`);
      if (n.opType === 'AveragePool') {
        const k = this.attrInts(n, 'kernel_shape') ?? [];
        const pads = this.attrInts(n, 'pads') ?? [];
        const autoPad = this.attrString(n, 'auto_pad', 'NOTSET');
        if (k.join() !== `${x.h},${x.w}` || pads.some((p) => p !== 0) || !(autoPad === 'NOTSET' || autoPad === 'VALID')) {
          this.unsupported(n, `AveragePool with kernel [${k}] over a ${x.h}x${x.w} map: only pooling over the whole map (unpadded) is supported`);
        }
      }
    }
    const name = this.layerName(n);
    this.addLayer({ name, op: 'globalAvgPool', input: x.layer });
    this.set(n, { kind: 'vec', layer: name, f: x.c, rank: keep ? 4 : 2, layout, tip: false });
  }

  private reshape(n: OnnxNode): void {
    const x = this.act(n, 0);
    const dims = this.onnxDims(x);
    let out: number[];
    if (n.opType === 'Flatten') {
      let axis = this.attrInt(n, 'axis', 1);
      if (axis < 0) axis += dims.length;
      if (axis < 0 || axis > dims.length) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: Flatten axis out of range`);
      const prod = (d: number[]): number => d.reduce((p, q) => p * q, 1);
      out = [prod(dims.slice(0, axis)), prod(dims.slice(axis))];
    } else if (n.opType === 'Squeeze') {
      const axes = (this.opset >= 13 ? this.intsFromAttrOrInput(n, 'axes', 1) : this.attrInts(n, 'axes'))?.map((a) => (a < 0 ? a + dims.length : a));
      out = axes ? dims.filter((_, i) => !axes.includes(i)) : dims.filter((d) => d !== 1);
      if (axes && axes.some((a) => dims[a] !== 1)) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: squeezes an axis that is not 1`);
    } else {
      const shape = intValues(this.constant(n, 1));
      const allowZero = this.attrInt(n, 'allowzero', 0) !== 0;
      out = shape.map((s, i) => (s === 0 && !allowZero ? dims[i] : s));
      const known = out.filter((s) => s !== -1).reduce((p, q) => p * q, 1);
      const total = dims.reduce((p, q) => p * q, 1);
      if (out.filter((s) => s === -1).length > 1 || out.some((s) => s === undefined || s < -1)) {
        throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: invalid Reshape shape [${shape}]`);
      }
      out = out.map((s) => (s === -1 ? total / known : s));
    }
    const F = dims.reduce((p, q) => p * q, 1);
    if (out.reduce((p, q) => p * q, 1) !== F) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: cannot reshape [${dims}] to [${out}]`);
    if (out.join() === dims.join()) {
      this.set(n, { ...x, tip: false });
      return;
    }
    const flatSource = x.kind === 'vec' || (x.h === 1 && x.w === 1);
    if (!flatSource) {
      this.unsupported(n, `reshaping a [${dims}] feature map is not supported; only a pooled [1,C,1,1] or [1,C] may become [1,C]`);
    }
    let v: VecValue;
    if (out.join() === `1,${F}`) v = { kind: 'vec', layer: x.layer, f: F, rank: 2, layout: 'nchw', tip: false };
    else if (out.join() === `1,${F},1,1`) v = { kind: 'vec', layer: x.layer, f: F, rank: 4, layout: 'nchw', tip: false };
    else if (out.join() === `1,1,1,${F}`) v = { kind: 'vec', layer: x.layer, f: F, rank: 4, layout: 'nhwc', tip: false };
    else return this.unsupported(n, `reshaping [${dims}] to [${out}] is not supported (only to [1,C])`);
    this.set(n, v);
  }

  private dense(n: OnnxNode): void {
    const x = this.act(n, 0);
    if (x.kind !== 'vec' || x.rank !== 2) {
      this.unsupported(n, `reads [${this.onnxDims(x)}]; ${n.opType} is supported on a [1,F] vector only (Flatten after pooling)`);
    }
    const bt = this.constant(n, 1);
    if (bt.dims.length !== 2) this.unsupported(n, `weights "${bt.name}" [${bt.dims}] are not 2-D`);
    const gemm = n.opType === 'Gemm';
    if (gemm && this.attrInt(n, 'transA', 0) !== 0) this.unsupported(n, 'transA=1 is not supported');
    const transB = gemm && this.attrInt(n, 'transB', 0) !== 0;
    const alpha = gemm ? this.attrFloat(n, 'alpha', 1) : 1;
    const beta = gemm ? this.attrFloat(n, 'beta', 1) : 1;
    const [F, O] = transB ? [bt.dims[1], bt.dims[0]] : bt.dims;
    if (F !== x.f) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: weights [${bt.dims}] expect ${F} features, "${n.inputs[0]}" has ${x.f}`);
    const wv = floatValues(bt);
    let w = wv;
    if (transB) {
      w = new Float32Array(F * O);
      for (let o = 0; o < O; o++) for (let i = 0; i < F; i++) w[i * O + o] = wv[o * F + i];
    }
    if (alpha !== 1) w = w.map((v) => v * alpha);
    const name = this.layerName(n);
    const layer: DenseLayer = {
      name, op: 'dense', input: x.layer, inFeatures: F, outFeatures: O,
      weights: this.tensor(`${name}/W`, [F, O], w), activation: 'linear',
    };
    const ct = gemm ? this.optionalConst(n, 2) : undefined;
    if (ct && beta !== 0) {
      if (!(ct.dims.length <= 2 && ct.dims.every((d, i) => d === 1 || (i === ct.dims.length - 1 && d === O)))) {
        this.unsupported(n, `bias "${ct.name}" [${ct.dims}] does not broadcast per output over [1,${O}]`);
      }
      layer.bias = this.biasTensor(n, name, ct, O, beta);
    }
    this.addLayer(layer);
    this.set(n, { kind: 'vec', layer: name, f: O, rank: 2, layout: 'nchw', tip: this.sole(n.outputs[0]) });
  }

  private softmax(n: OnnxNode): void {
    const x = this.act(n, 0);
    const dims = this.onnxDims(x);
    let axis = this.attrInt(n, 'axis', this.opset >= 13 ? -1 : 1);
    if (axis < 0) axis += dims.length;
    const F = dims.reduce((p, q) => p * q, 1);
    // Opset 13+: softmax along one axis, which must hold all values. Before: over the
    // dims from `axis` on, with everything before it of size 1.
    const ok = this.opset >= 13 ? dims[axis] === F : axis >= 0 && axis < dims.length && dims.slice(0, axis).every((d) => d === 1);
    if (!ok || (x.kind === 'map' && !(x.h === 1 && x.w === 1))) {
      this.unsupported(n, `Softmax over axis ${axis} of [${dims}] is not supported: only over the classes of a [1,C] vector`);
    }
    const name = this.layerName(n);
    this.addLayer({ name, op: 'softmax', input: x.layer });
    this.set(n, x.kind === 'vec' ? { ...x, layer: name, tip: false } : { kind: 'vec', layer: name, f: F, rank: 4, layout: x.layout, tip: false });
  }

  private transpose(n: OnnxNode): void {
    const x = this.act(n, 0);
    const rank = this.onnxDims(x).length;
    const perm = (this.attrInts(n, 'perm') ?? [...Array(rank).keys()].reverse()).join();
    const identity = [...Array(rank).keys()].join();
    if (perm === identity || (rank === 2 && x.kind === 'vec' && perm === '1,0' && x.f === 1)) {
      this.set(n, { ...x, tip: false });
      return;
    }
    if (rank === 4 && x.layout === 'nhwc' && perm === '0,3,1,2') this.set(n, { ...x, layout: 'nchw', tip: false });
    else if (rank === 4 && x.layout === 'nchw' && perm === '0,2,3,1') this.set(n, { ...x, layout: 'nhwc', tip: false });
    else this.unsupported(n, `Transpose(perm=[${perm}]) of [${this.onnxDims(x)}] is not supported: only between NCHW and NHWC`);
  }

  private pad(n: OnnxNode): void {
    const x = this.act(n, 0);
    if (x.kind !== 'map' || x.layout !== 'nchw') return this.unsupported(n, 'Pad is supported on NCHW feature maps only');
    const mode = this.attrString(n, 'mode', 'constant');
    if (mode !== 'constant') this.unsupported(n, `Pad mode "${mode}" is not supported (only constant zeros)`);
    let pads: number[] | undefined;
    let value = 0;
    if (this.opset >= 11) {
      pads = intValues(this.constant(n, 1));
      const cv = this.optionalConst(n, 2);
      if (cv) value = floatValues(cv)[0] ?? 0;
      const axesT = this.optionalConst(n, 3);
      if (axesT) {
        const axes = intValues(axesT).map((a) => (a < 0 ? a + 4 : a));
        const full = new Array<number>(8).fill(0);
        axes.forEach((a, i) => {
          full[a] = pads?.[i] ?? 0;
          full[a + 4] = pads?.[i + axes.length] ?? 0;
        });
        pads = full;
      }
    } else {
      pads = this.attrInts(n, 'pads') ?? this.attrInts(n, 'paddings');
      value = this.attrFloat(n, 'value', 0);
    }
    if (!pads || pads.length !== 8) throw new ModelFormatError(`ONNX node ${nodeLabel(n)}: Pad needs 8 pads for a 4-D tensor, got [${pads ?? ''}]`);
    if (value !== 0) this.unsupported(n, `padding with ${value} is not supported (only zeros)`);
    if (pads[0] || pads[1] || pads[4] || pads[5] || pads.some((p) => p < 0)) {
      this.unsupported(n, `pads [${pads}] are not supported: only non-negative spatial padding`);
    }
    this.set(n, { kind: 'pad', src: x, pads: { top: pads[2], left: pads[3], bottom: pads[6], right: pads[7] }, node: nodeLabel(n) });
  }

  /** The layer holding the graph output, and the output's size. */
  output(): { layer: string; size: number; note: string } {
    const outs = this.graph.outputs;
    if (outs.length !== 1) {
      throw new UnsupportedModelError(`ONNX graph has ${outs.length} outputs (${outs.map((o) => `"${o.name}"`).join(', ')}); only one is supported`);
    }
    const v = this.values.get(outs[0].name);
    if (!v || v.kind === 'const' || v.kind === 'pad' || v.layer === 'input') {
      throw new UnsupportedModelError(`ONNX graph output "${outs[0].name}" is not computed by any supported layer`);
    }
    const size = v.kind === 'map' ? v.h * v.w * v.c : v.f;
    const note =
      v.kind === 'map' && v.layout === 'nchw'
        ? `"${outs[0].name}" NCHW [${this.onnxDims(v)}], returned by run() as NHWC [1,${v.h},${v.w},${v.c}]`
        : `"${outs[0].name}" [${this.onnxDims(v)}]`;
    return { layer: v.layer, size, note };
  }
}

// ---------------------------------------------------------------------------------------
// Metadata (our exporter's metadata_props)

/** Keys our exporter writes about the graph itself; a desc.meta key colliding with one was written as `meta.<key>`. */
const OUR_KEYS = new Set(['family', 'input_layout', 'input_shape', 'exported_by', 'labels', 'preprocess']);

function parseJson(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function readPreprocess(v: unknown): Preprocess | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const p = v as Record<string, unknown>;
  const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (p.resize !== 'bilinear' || typeof p.alignCorners !== 'boolean' || !finite(p.scale) || !finite(p.offset)) return undefined;
  return { resize: 'bilinear', alignCorners: p.alignCorners, scale: p.scale, offset: p.offset };
}

// ---------------------------------------------------------------------------------------
// Entry point

/**
 * Maps an ONNX MobileNet (ModelProto bytes) to a ModelSource: weights as f32 tensors in our
 * layouts, batch-norm kept as `batchNorm` of its conv, input NHWC [1,H,W,3] whatever the ONNX
 * layout. Labels and preprocessing come from our exporter's metadata_props when present.
 * Throws ModelFormatError (not ONNX, truncated, corrupt, external data) or
 * UnsupportedModelError (naming every unsupported operator type and its nodes), nothing else.
 */
export function importOnnx(bytes: Uint8Array | ArrayBuffer): ModelSource {
  try {
    return importUnchecked(toBytes(bytes, 'an ONNX model'));
  } catch (e) {
    if (e instanceof MobileNetWasmError) throw e;
    throw new ModelFormatError(`unreadable ONNX model: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function importUnchecked(bytes: Uint8Array): ModelSource {
  if (bytes.length === 0) throw new ModelFormatError('not a valid ONNX file: empty');
  const model = parseModel(bytes);
  const graph = model.graph;
  if (!graph) throw new ModelFormatError('not a valid ONNX file: the ModelProto has no graph (truncated?)');
  const opset = model.opsets.get('') ?? model.opsets.get('ai.onnx');
  if (opset === undefined || opset < 1) throw new ModelFormatError('ONNX model imports no opset of the default domain');
  if (graph.sparseInitializers > 0) throw new UnsupportedModelError('ONNX sparse initializers are not supported');
  checkOperators(graph.nodes);

  const im = new Importer(graph, opset);
  im.input();
  for (const n of im.sortedNodes()) im.node(n);
  const out = im.output();

  const props = new Map(model.metadata);
  const labels = parseJson(props.get('labels'));
  const preprocess = readPreprocess(parseJson(props.get('preprocess')));
  const meta: Record<string, string> = {};
  for (const [k, v] of model.metadata) {
    if (OUR_KEYS.has(k)) continue;
    const m = /^meta\.(.+?)(_\d+)?$/.exec(k);
    meta[m && OUR_KEYS.has(m[1]) && !(m[1] in meta) ? m[1] : k] = v;
  }
  const producer = [model.producerName, model.producerVersion].filter((s) => s !== '').join(' ');
  meta.onnx_source = `${producer ? `${producer}, ` : ''}opset ${opset}; input ${im.inputNote} (run() takes NHWC [${im.inputShape}]); output ${out.note}`;

  const family = props.get('family');
  const desc: ModelDesc = {
    family: family && family !== '' ? family : 'onnx',
    input: 'input',
    inputShape: im.inputShape,
    layers: im.layers,
    output: out.layer,
    meta,
  };
  if (Array.isArray(labels) && labels.every((s) => typeof s === 'string') && labels.length === out.size) desc.labels = labels as string[];
  if (preprocess) desc.preprocess = preprocess;

  const src: ModelSource = { desc, tensors: im.tensors };
  validateModel(src);
  return src;
}
