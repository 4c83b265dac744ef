// Hostile inputs never crash, hang or corrupt: property-based fuzzing of load(), classify(),
// run() and convertTfjsLayers() (fast-check, fixed seed, 2,385 cases, ~40 s on one core).
// The generators and checks live in scripts/fuzz.mjs, which `npm run fuzz` runs for 100,000+
// cases; here they run against src/ with smaller dimension ranges (see makeFuzzer's `full`).
//
// Property: every case either succeeds with a model that runs (output of the declared length,
// finite unless the weights explain it, equal to a float64 reference for generated graphs) or
// rejects with a MobileNetWasmError subclass; never a wasm trap, another exception type,
// prototype pollution, a model that answers differently after bad input, or a case over 5 s.
// Failures print fast-check's shrunk counterexample; replay one with its seed and path.
//
// Known bugs (scripts/fuzz.mjs KNOWN_BUGS) are tallied, not failed, and each has an
// `it.fails` reproducer below that starts failing once the bug is fixed: then delete the
// reproducer's `.fails` marker (keep the test) and the KNOWN_BUGS entry.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as index from '../src/index.js';
import { convertTfjsLayers } from '../src/convert/tfjs-layers.js';
import { readTfjsModelDir } from '../src/convert/node.js';
import {
  HUGE_WASM_BYTES, KNOWN_BUGS, buildFlatJpeg, buildPng, exifSegment, kerasModel, makeFixtures, makeFuzzer, tinyModel,
} from '../scripts/fuzz.mjs';

const SEED = 0x6d6e77; // "mnw"
const lib = { ...index, convertTfjsLayers, readTfjsModelDir };
const { load, encodeModel, ImageDecodeError, InputError, MobileNetWasmError, ModelFormatError, OutOfMemoryError } = index;

type Outcome = { outcome: string; cls: string; detail?: string; kind: string; ms: number };
type Fuzzer = { arbs: Record<string, fc.Arbitrary<unknown>>; runCase: (c: unknown) => Promise<Outcome> };

let fx: Awaited<ReturnType<typeof makeFixtures>>;
let fz: Fuzzer;
const tally = new Map<string, Map<string, number>>();
const slowest = { ms: 0, kind: '' };
let total = 0;

beforeAll(async () => {
  fx = await makeFixtures(lib);
  fz = makeFuzzer(lib, fx, { timeLimitMs: 5000, full: false }) as Fuzzer;
});

afterAll(() => {
  fx?.classifier.dispose();
  const lines = [...tally].map(([kind, m]) => `  ${kind.padEnd(14)} ${[...m].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(`fuzz: ${total} cases, slowest ${slowest.ms.toFixed(0)} ms (${slowest.kind})\n${lines.join('\n')}`);
});

/** Runs `numRuns` cases of one family; returns the outcome counts. */
async function fuzz(family: string, numRuns: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(fz.arbs[family], async (c) => {
      const r = await fz.runCase(c);
      if (r.outcome === 'FAIL') throw new Error(`${r.kind}: ${r.detail}`);
      const key = `${r.outcome}:${r.cls}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (r.ms > slowest.ms) Object.assign(slowest, { ms: r.ms, kind: r.kind });
    }),
    { seed: SEED, numRuns },
  );
  tally.set(family, counts);
  total += numRuns;
  return counts;
}

const count = (m: Map<string, number>, prefix: string): number =>
  [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, n]) => a + n, 0);

describe('fuzz: .mnw model files', () => {
  it('byte flips, truncation, insertion and deletion (with and without a recomputed CRC)', async () => {
    const m = await fuzz('mnwBytes', 400);
    expect(count(m, 'rejected:ChecksumError')).toBeGreaterThan(0);
    expect(count(m, 'rejected:ModelFormatError')).toBeGreaterThan(0);
  });
  it('header JSON edits re-encoded with a valid CRC: shapes, strides, pads, channels, names, dtypes, scale/min, order', async () => {
    const m = await fuzz('mnwHeader', 450);
    expect(count(m, 'accepted')).toBeGreaterThan(10);
    expect(count(m, 'rejected:UnsupportedModelError')).toBeGreaterThan(0);
  });
  it('header-only edits of the bundled nsfwjs model', async () => {
    await fuzz('bundledHeader', 25);
  });
  it('in-memory ModelSource objects with JavaScript-only values (NaN, undefined, -0, typed arrays...)', async () => {
    await fuzz('source', 150);
  });
  it('random graphs of every op at odd sizes, dtypes, kernel variants and thread counts match a float64 reference', async () => {
    const m = await fuzz('graph', 170);
    expect(count(m, 'accepted:matches-reference')).toBeGreaterThan(90);
  });
});

describe('fuzz: TF.js layers conversion', () => {
  it('mutated synthetic Keras models (functional, sequential; float32, uint8, float16 weights)', async () => {
    const m = await fuzz('tfjsSynth', 500);
    expect(count(m, 'accepted')).toBeGreaterThan(10);
  });
  it('mutated real nsfwjs topology and manifest', async () => {
    await fuzz('tfjsNsfw', 30);
  });
});

describe('fuzz: images and run() / load() misuse', () => {
  it('mutated JPEG (baseline, greyscale, CMYK, YCCK, EXIF) and PNG (every color type and depth) files', async () => {
    const m = await fuzz('image', 400);
    expect(count(m, 'accepted:classified')).toBeGreaterThan(20);
    expect(count(m, 'rejected:ImageDecodeError')).toBeGreaterThan(20);
  });
  it('RGBA objects with bad sizes, data types and topK', async () => {
    await fuzz('rgba', 200);
  });
  it('load options and run() inputs', async () => {
    await fuzz('options', 60);
  });
});

describe('unusual but valid images classify end to end', () => {
  const rgb = (img: { data: Uint8Array | Uint8ClampedArray }, i: number) => Array.from(img.data.subarray(4 * i, 4 * i + 4));

  it('Adobe CMYK and YCCK JPEGs (4 components) decode with the naive inverted-CMYK conversion', async () => {
    // Stored (Adobe, inverted) C, M, Y, K per 8x8 block; jpeg-js gives R = C*K/255 etc.
    const value = (c: number, bx: number) => [[200, 100, 50, 255], [255, 255, 255, 128]][bx][c];
    const cmyk = buildFlatJpeg({ width: 16, height: 8, comps: 4, adobe: 0, value });
    const img = await index.decodeImage(cmyk);
    expect([img.width, img.height]).toEqual([16, 8]);
    const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) <= 2);
    expect(near(rgb(img, 0), [200, 100, 50, 255])).toBe(true);
    expect(near(rgb(img, 8), [128, 128, 128, 255])).toBe(true);
    const ycck = buildFlatJpeg({ width: 8, height: 8, comps: 4, adobe: 2, value: (c: number) => [150, 128, 128, 255][c] });
    const y = await index.decodeImage(ycck);
    // YCCK: Y=150, Cb=Cr=128 -> C = M = Y = 255 - 150 (as libjpeg), then R = C * K / 255 with K = 255.
    expect(near(rgb(y, 0), [105, 105, 105, 255])).toBe(true);
    const preds = await fx.classifier.classify(cmyk, { topK: 3 });
    expect(preds).toHaveLength(3);
  });

  it('greyscale JPEG, 16-bit grey+alpha PNG, 1-bit PNG, palette PNG and 1x1 images classify', async () => {
    const files = [
      buildFlatJpeg({ width: 9, height: 17, comps: 1, value: (c: number, x: number, y: number) => 30 + 100 * x + 20 * y }),
      buildPng(5, 3, 4, 16, (x: number, y: number, s: number) => (s ? 0 : 65535 - x * 1000 - y)),
      buildPng(9, 9, 0, 1, (x: number, y: number) => (x ^ y) & 1),
      buildPng(1, 1, 6, 8, (_x: number, _y: number, s: number) => [1, 2, 3, 0][s]),
      buildFlatJpeg({ width: 1, height: 1, comps: 3, value: () => 77 }),
    ];
    for (const f of files) {
      const preds = await fx.classifier.classify(f);
      expect(preds.every((p) => Number.isFinite(p.probability))).toBe(true);
    }
  });

  it('huge claimed dimensions are refused from the header, before decoding', async () => {
    const png = buildPng(1, 1, 6, 8, () => 0);
    png.set([0x00, 0x01, 0x86, 0xa0, 0x00, 0x01, 0x86, 0xa0], 16); // 100000 x 100000
    const crc = (await import('../scripts/fuzz.mjs')).crc32(png, 12, 29);
    new DataView(png.buffer).setUint32(29, crc);
    const before = process.memoryUsage().arrayBuffers;
    await expect(fx.classifier.classify(png)).rejects.toThrow(/too large/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20); // nothing decoded
  });

  it('EXIF orientation is applied (src/exif.ts)', async () => {
    const f = buildFlatJpeg({ width: 16, height: 8, comps: 3, exif: 6, value: (_c: number, x: number) => 50 + 100 * x });
    const img = await index.decodeImage(f);
    expect([img.width, img.height]).toEqual([8, 16]); // stored 16 x 8, shown rotated 90 degrees
    expect(exifSegment(6, true)[6]).toBe(0x4d);
  });
});

// ---------------------------------------------------------------------------------------
// Known bugs: each `it.fails` asserts the correct behaviour and currently fails.

describe('known bugs (it.fails: these start failing when fixed; then drop `.fails`) and fixed ones', () => {
  it('KNOWN_BUGS lists what these reproduce', () => {
    expect(KNOWN_BUGS.map((b: { id: string }) => b.id)).toEqual([]);
  });

  it('FIXED huge-arena: an 800-byte model file makes load() reserve 1.2 GB of wasm memory', async () => {
    // One 3x3 conv, 16 channels, input 4096x4096 (the largest side accepted): 800 bytes on disk.
    const C = 16;
    const src = {
      desc: {
        family: 'x', input: 'input', inputShape: [1, 4096, 4096, 3] as [number, number, number, number], output: 'c',
        layers: [{ op: 'conv2d' as const, name: 'c', input: 'input', kernel: [3, 3] as [number, number], stride: 1, padding: 'same' as const, inChannels: 3, outChannels: C, weights: 'w', activation: 'relu6' as const }],
      },
      tensors: [{ name: 'w', shape: [3, 3, 3, C], dtype: 'u8' as const, data: new Uint8Array(27 * C), scale: 0.01, min: 0 }],
    };
    const bytes = encodeModel(src);
    expect(bytes.length).toBeLessThan(1000);
    let m: Awaited<ReturnType<typeof load>> | undefined;
    try {
      m = await load(bytes, { threads: 1 });
    } catch (e) {
      expect(e).toBeInstanceOf(OutOfMemoryError); // the fix: refuse by default (a default cap)
      return;
    }
    const wasmBytes = m.memory.wasmBytes;
    m.dispose(); // never run it: that takes ~15 s and 2.4 GB RSS
    expect(wasmBytes).toBeLessThan(HUGE_WASM_BYTES);
  });

  it('FIXED options-null: load(bytes, null) throws TypeError', async () => {
    const m = await load(encodeModel(tinyModel()), null as never);
    m.dispose();
  });

  it('FIXED options-null: classify(image, null) throws TypeError', async () => {
    await expect(fx.classifier.classify({ data: new Uint8Array(16), width: 2, height: 2 }, null as never)).resolves.toHaveLength(3);
  });

  it('FIXED kernels-option-unchecked: load({ kernels: "foo" }) loads, then run() fails with an "internal error"', async () => {
    await expect(load(encodeModel(tinyModel()), { kernels: 'foo' as never, threads: 1 })).rejects.toBeInstanceOf(InputError);
  });

  it('FIXED stringify-in-error-message: a BigInt stride in a ModelSource throws TypeError', async () => {
    const src = tinyModel();
    (src.desc.layers[0] as unknown as { stride: unknown }).stride = 2n;
    await expect(load(src as never, { threads: 1 })).rejects.toBeInstanceOf(MobileNetWasmError);
  });

  it('FIXED stringify-in-error-message: a 20000-deep array in model.json makes the converter throw RangeError', () => {
    const { modelJson, data } = kerasModel(undefined);
    const deep = JSON.parse('['.repeat(20000) + ']'.repeat(20000));
    modelJson.modelTopology.model_config!.config.layers[3].config.epsilon = deep;
    expect(() => convertTfjsLayers(modelJson, data)).toThrow(MobileNetWasmError);
  });

  it('FIXED fetch-error: load() of an unreachable http URL rejects with TypeError("fetch failed")', async () => {
    await expect(load('http://127.0.0.1:1/model.mnw')).rejects.toBeInstanceOf(ModelFormatError);
  });

});
