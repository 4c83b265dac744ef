// Bad input gets a typed error, never a wasm trap, and corrupts nothing: after every rejected
// call the model still gives the same answer as before.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  load, encodeModel, mobilenetV1, type Model,
  MobileNetWasmError, ModelFormatError, ChecksumError, InputError, DisposedError, OutOfMemoryError,
  UnsupportedModelError, ImageDecodeError, EnvironmentError,
} from '../src/index.js';

const bundled = new Uint8Array(readFileSync('weights/nsfwjs-mobilenet-v2.mnw'));
const dir = mkdtempSync(join(tmpdir(), 'mnw-'));

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('loading bad model files', () => {
  it.each([16, 100, 5000, bundled.length - 1])('truncated to %i bytes -> ModelFormatError', async (n) => {
    const e = await rejection(load(bundled.slice(0, n)));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e).not.toBeInstanceOf(ChecksumError);
  });
  it('empty input -> ModelFormatError', async () => {
    expect(await rejection(load(new Uint8Array(0)))).toBeInstanceOf(ModelFormatError);
  });
  it('a foreign file (the TF.js model.json) -> ModelFormatError naming it', async () => {
    const json = readFileSync('node_modules/nsfwjs/dist/models/mobilenet_v2/model.min.js');
    const e = await rejection(load(new Uint8Array(json)));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toMatch(/mobilenet-wasm|MNWB|magic/i);
  });
  it('a JPEG passed as a model -> ModelFormatError', async () => {
    expect(await rejection(load(new Uint8Array(readFileSync('samples/cat-photo.jpg'))))).toBeInstanceOf(ModelFormatError);
  });
  it('wrong magic -> ModelFormatError', async () => {
    const b = bundled.slice();
    b[0] = 0x58;
    expect(await rejection(load(b))).toBeInstanceOf(ModelFormatError);
  });
  it('unknown version -> ModelFormatError naming the version', async () => {
    const b = bundled.slice();
    new DataView(b.buffer).setUint32(4, 7, true);
    const e = await rejection(load(b));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toMatch(/7/);
  });
  it.each([0.3, 0.6, 0.99])('one flipped byte at %f of the file -> ChecksumError', async (at) => {
    const b = bundled.slice();
    b[Math.floor(b.length * at)] ^= 0x5a;
    expect(await rejection(load(b))).toBeInstanceOf(ChecksumError);
  });
  it('a missing file -> ModelFormatError', async () => {
    expect(await rejection(load(join(dir, 'nope.mnw')))).toBeInstanceOf(ModelFormatError);
  });
  it('a valid file from disk loads', async () => {
    const path = join(dir, 'v1.mnw');
    writeFileSync(path, encodeModel(mobilenetV1({ alpha: 0.25, inputSize: 128, classes: 10 })));
    const m = await load(path);
    expect(m.inputShape).toEqual([1, 128, 128, 3]);
    m.dispose();
  });
  it('an unsupported layer -> UnsupportedModelError naming it', async () => {
    const src = mobilenetV1({ alpha: 0.25, inputSize: 128, classes: 10 });
    const l = src.desc.layers[1];
    if (l.op !== 'depthwise') throw new Error('layout changed');
    l.kernel = [5, 5];
    const e = await rejection(load(src));
    expect(e).toBeInstanceOf(MobileNetWasmError);
    expect(e.message).toContain(l.name);
  });
  describe('weights that are not finite -> ModelFormatError naming the tensor', () => {
    const small = () => mobilenetV1({ alpha: 0.25, inputSize: 128, classes: 10 });
    const f32 = (t: { data: Uint8Array }) => new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
    it.each([
      ['NaN in a pointwise kernel', 'conv_pw_3/kernel', Number.NaN, 17],
      ['-Infinity in a depthwise kernel', 'conv_dw_5/depthwise_kernel', -Infinity, 8],
      ['Infinity in a dense kernel (the last tensor element)', 'logits/kernel', Infinity, -1],
      ['a batch-norm variance of -1 (sqrt of a negative)', 'conv_dw_2_bn/moving_variance', -1, 3],
    ])('%s', async (_what, name, value, at) => {
      // The message names the convolution the bad value was folded into.
      const layer = name.split('/')[0].replace(/_bn$/, '');
      const src = small();
      const t = src.tensors.find((x) => x.name === name);
      if (!t) throw new Error(`no tensor ${name}: ${src.tensors.map((x) => x.name).join(' ')}`);
      const v = f32(t);
      v[at < 0 ? v.length - 1 : at] = value;
      const e = await rejection(load(src, { threads: 1 }));
      expect(e).toBeInstanceOf(ModelFormatError);
      expect(e.message).toContain(layer);
    });
    it('a quantization scale whose values overflow f32', async () => {
      const src = small();
      const t = src.tensors.find((x) => x.name === 'conv_pw_1/kernel')!;
      const q = Uint8Array.from(f32(t), (_, i) => i % 256);
      Object.assign(t, { dtype: 'u8', data: q, scale: 1e300, min: 0 });
      const e = await rejection(load(src, { threads: 1 }));
      expect(e).toBeInstanceOf(ModelFormatError);
      expect(e.message).toContain('conv_pw_1/kernel');
    });
  });
  it('maxMemoryBytes below the need -> OutOfMemoryError naming the size', async () => {
    const e = await rejection(load(undefined, { maxMemoryBytes: 1_000_000 }));
    expect(e).toBeInstanceOf(OutOfMemoryError);
    expect(e.message).toMatch(/\d{7,} bytes/);
  });
  it('a build the runtime lacks -> EnvironmentError', async () => {
    // Node 20 without --experimental-wasm-relaxed-simd cannot compile the relaxed build.
    if (WebAssembly.validate(readFileSync('build/mobilenet-relaxed.wasm'))) return;
    expect(await rejection(load(undefined, { build: 'relaxed' }))).toBeInstanceOf(EnvironmentError);
  });
});

describe('running with bad input', () => {
  let model: Model;
  let x: Float32Array;
  let expected: Float32Array;
  beforeAll(async () => {
    model = await load();
    x = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => (i % 255) / 255);
    expected = await model.run(x);
  });
  const unchanged = async (): Promise<void> => {
    expect(await model.run(x)).toEqual(expected);
  };

  it('wrong length -> InputError', async () => {
    expect(await rejection(model.run(new Float32Array(10)))).toBeInstanceOf(InputError);
    expect(await rejection(model.run(new Float32Array(224 * 224 * 3 + 1)))).toBeInstanceOf(InputError);
    await unchanged();
  });
  it('wrong type -> InputError', async () => {
    const e = await rejection(model.run(new Float64Array(224 * 224 * 3) as unknown as Float32Array));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toContain('Float64Array');
    expect(await rejection(model.run([1, 2, 3] as unknown as Float32Array))).toBeInstanceOf(InputError);
    expect(await rejection(model.run(null as unknown as Float32Array))).toBeInstanceOf(InputError);
    await unchanged();
  });
  it.each([NaN, Infinity, -Infinity])('%f in the input -> InputError naming the first bad index', async (v) => {
    for (const at of [0, 12345, x.length - 1]) {
      const bad = x.slice();
      bad[at] = v;
      bad[x.length - 1] = v; // a later one too: the first is named
      const e = await rejection(model.run(bad));
      expect(e).toBeInstanceOf(InputError);
      expect(e.message).toContain(`input[${at}] is ${v}`);
      await unchanged();
    }
  });
  it('run() output is a copy the caller may change', async () => {
    const out = await model.run(x);
    out.fill(42);
    await unchanged();
  });
  it('bad images -> ImageDecodeError; bad topK -> InputError', async () => {
    expect(await rejection(model.classify(new Uint8Array([1, 2, 3])))).toBeInstanceOf(ImageDecodeError);
    expect(await rejection(model.classify('samples/does-not-exist.png'))).toBeInstanceOf(ImageDecodeError);
    const jpg = new Uint8Array(readFileSync('samples/cat-photo.jpg'));
    expect(await rejection(model.classify(jpg.slice(0, 2000)))).toBeInstanceOf(ImageDecodeError);
    expect(await rejection(model.classify(jpg, { topK: 0 }))).toBeInstanceOf(InputError);
    expect(await model.classify({ data: new Uint8Array(16).fill(200), width: 2, height: 2 }, { topK: 1 })).toHaveLength(1);
    expect(await rejection(model.classify({ data: new Uint8Array(11), width: 2, height: 2 }))).toBeInstanceOf(InputError);
    await unchanged();
  });
  it('use after dispose -> DisposedError; dispose twice is harmless', async () => {
    const m = await load();
    m.dispose();
    m.dispose();
    expect(m.disposed).toBe(true);
    expect(await rejection(m.run(x))).toBeInstanceOf(DisposedError);
    expect(await rejection(m.classify('samples/cat-photo.jpg'))).toBeInstanceOf(DisposedError);
  });
  it('concurrent runs all resolve to the right answers', async () => {
    const y = x.map((v) => 1 - v);
    const other = await model.run(y);
    const results = await Promise.all([model.run(x), model.run(y), model.run(x), model.run(y)]);
    expect(results[0]).toEqual(expected);
    expect(results[1]).toEqual(other);
    expect(results[2]).toEqual(expected);
    expect(results[3]).toEqual(other);
  });
});
