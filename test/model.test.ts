// Whole networks against TF.js on the same weights and inputs.
//  - The bundled nsfwjs MobileNetV2 (uint8 weights) against the ORIGINAL nsfwjs files loaded by
//    @tensorflow/tfjs-layers on the cpu backend: softmax max |diff| <= 1e-4 on seeded random
//    inputs and on real images (same top class).
//  - MobileNetV1 1.0 / 0.5 and MobileNetV2 with seeded random weights against the same network
//    built from TF.js ops (batch-norm not folded): logits within 1e-4 relative, element by
//    element (|a - b| / max(1, |b|)). Random He-initialised V2 stacks grow logits of 20+ through
//    17 blocks, where f32 summation-order noise reaches ~1e-4 of a logit; for V2 the bound is
//    1e-5 of the largest logit (and 2e-4 element by element).
//  - Every kernel variant (x86, ARM, scalar twins) gives the same output on the bundled model.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tfl from '@tensorflow/tfjs-layers';
import { load, mobilenetV1, mobilenetV2, decodeImage, type Model } from '../src/index.js';
import { initTf, loadNsfwjsLayersModel, buildTfjsNetwork } from '../bench/peers/tfjs.mjs';
import { maxAbsDiff, maxRelDiff, mulberry32 } from './helpers/wasm.js';

type Tf = Awaited<ReturnType<typeof initTf>>;
let tf: Tf;
beforeAll(async () => {
  tf = await initTf('cpu');
});

function randomInput(seed: number, n: number, lo: number, hi: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

const argmax = (a: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
};

describe('bundled nsfwjs MobileNetV2 vs TF.js layers model (original nsfwjs files)', () => {
  let model: Model;
  let layers: { predict(x: unknown): { dataSync(): Float32Array; dispose(): void } };
  beforeAll(async () => {
    // One thread: the arena budget below is for the activations of a single-thread run (each
    // extra thread adds its own row-window scratch); threads.test.ts shows results are the same.
    model = await load(undefined, { threads: 1 });
    layers = (await loadNsfwjsLayersModel(tf, tfl)) as typeof layers;
  });
  const reference = (x: Float32Array): Float32Array =>
    tf.tidy(() => (layers.predict(tf.tensor4d(x, [1, 224, 224, 3])) as { dataSync(): Float32Array }).dataSync().slice());

  it('has the nsfwjs labels, input shape and a plan within the memory budget', () => {
    expect(model.labels).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
    expect(model.inputShape).toEqual([1, 224, 224, 3]);
    expect(model.outputShape).toEqual([1, 5]);
    expect(model.memory.arenaBytes).toBeGreaterThan(0);
    // The fused stem + first block and inverted-residual blocks: 1,517,376 bytes.
    expect(model.memory.arenaBytes).toBeLessThanOrEqual(1.6e6);
  });

  it.each([1, 2, 3, 4])('random input seed %i: softmax max |diff| <= 1e-4', async (seed) => {
    const x = randomInput(seed, 224 * 224 * 3, 0, 1);
    const ours = await model.run(x);
    const theirs = reference(x);
    const d = maxAbsDiff(ours, theirs);
    console.log(`nsfwjs seed ${seed}: max |diff| ${d.toExponential(2)}`);
    expect(d).toBeLessThanOrEqual(1e-4);
  });

  it.each(['samples/cat-photo.jpg', 'samples/rocket-photo.jpg', 'samples/beach-trip-drawing.png'])(
    '%s is classified as TF.js classifies it', async (file) => {
      const img = await decodeImage(new Uint8Array(readFileSync(file)));
      // The reference preprocesses with TF.js itself, as nsfwjs does: bilinear, alignCorners, / 255.
      const theirs = tf.tidy(() => {
        const rgba = tf.tensor3d(Int32Array.from(img.data), [img.height, img.width, 4], 'int32');
        const rgb = tf.cast(tf.slice(rgba, [0, 0, 0], [-1, -1, 3]), 'float32');
        const x = tf.expandDims(tf.div(tf.image.resizeBilinear(rgb, [224, 224], true), 255), 0);
        return (layers.predict(x) as { dataSync(): Float32Array }).dataSync().slice();
      });
      const top = await model.classify(file, { topK: 5 });
      const ours = Float32Array.from(model.labels, (l) => top.find((p) => p.label === l)!.probability);
      const d = maxAbsDiff(ours, theirs);
      console.log(`${file}: ours ${top[0].label} ${top[0].probability.toFixed(4)}, TF.js ${model.labels[argmax(theirs)]} ${Math.max(...theirs).toFixed(4)}, max |diff| ${d.toExponential(2)}`);
      expect(top[0].label).toBe(model.labels[argmax(theirs)]);
      expect(d).toBeLessThanOrEqual(1e-4);
    });

  it('the photograph and the drawing get the expected classes', async () => {
    expect((await model.classify('samples/cat-photo.jpg'))[0].label).toBe('Neutral');
    expect((await model.classify('samples/beach-trip-drawing.png'))[0].label).toBe('Drawing');
  });

  it('x86, ARM and scalar kernel variants agree on the bundled model', async () => {
    const x = randomInput(9, 224 * 224 * 3, 0, 1);
    const outs: Float32Array[] = [];
    for (const kernels of ['x86', 'arm', 'scalar'] as const) {
      const m = await load(undefined, { kernels, build: 'simd' });
      expect(m.kernels).toBe(kernels);
      outs.push(await m.run(x));
      m.dispose();
    }
    expect(maxAbsDiff(outs[0], outs[2])).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(outs[1], outs[2])).toBeLessThanOrEqual(1e-6);
  });
});

describe('random-weight MobileNets vs the same network built from TF.js ops', () => {
  const cases = [
    { name: 'MobileNetV1 1.0 224', elem: 1e-4, norm: 1e-5, build: () => mobilenetV1({ alpha: 1.0, inputSize: 224, softmax: false, seed: 3 }) },
    { name: 'MobileNetV1 0.5 160', elem: 1e-4, norm: 1e-5, build: () => mobilenetV1({ alpha: 0.5, inputSize: 160, softmax: false, seed: 4 }) },
    { name: 'MobileNetV1 0.25 128', elem: 1e-4, norm: 1e-5, build: () => mobilenetV1({ alpha: 0.25, inputSize: 128, softmax: false, seed: 8 }) },
    { name: 'MobileNetV2 1.0 224', elem: 2e-4, norm: 1e-5, build: () => mobilenetV2({ alpha: 1.0, inputSize: 224, softmax: false, seed: 5 }) },
    { name: 'MobileNetV2 0.35 128', elem: 2e-4, norm: 1e-5, build: () => mobilenetV2({ alpha: 0.35, inputSize: 128, softmax: false, seed: 6 }) },
    { name: 'MobileNetV2 1.4 96', elem: 2e-4, norm: 1e-5, build: () => mobilenetV2({ alpha: 1.4, inputSize: 96, softmax: false, seed: 7 }) },
  ];
  it.each(cases)('$name: logits within $elem relative', async ({ build, elem, norm }) => {
    const src = build();
    const [, h, w] = src.desc.inputShape;
    const x = randomInput(h, h * w * 3, -1, 1);
    const model = await load(src);
    const ours = await model.run(x);
    model.dispose();
    const net = buildTfjsNetwork(tf, src, { fused: false });
    const theirs = net.run(x);
    net.dispose();
    const d = maxRelDiff(ours, theirs);
    const dn = maxAbsDiff(ours, theirs) / Math.max(...Array.from(theirs, Math.abs));
    const spread = Math.max(...theirs) - Math.min(...theirs);
    console.log(`${src.desc.family} ${src.desc.meta?.alpha} ${h}: max rel diff ${d.toExponential(2)}, vs largest logit ${dn.toExponential(2)} (logit range ${spread.toFixed(2)})`);
    expect(spread).toBeGreaterThan(0.1); // the random network did not collapse to a constant
    expect(d).toBeLessThanOrEqual(elem);
    expect(dn).toBeLessThanOrEqual(norm);
  });
});
