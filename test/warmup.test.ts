// The start-up warm-up (src/warmup.ts) runs a tiny network on a throwaway instance: it must
// work for every build, kernel variant and thread setting load() can pick, and leave the
// models loaded after it unaffected.
import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { warmUp } from '../src/warmup.js';
import { compile } from '../src/wasm.js';
import { load } from '../src/index.js';

// Node 20 validates relaxed SIMD only behind this flag (as test/kernels-relaxed.test.ts does).
setFlagsFromString('--experimental-wasm-relaxed-simd');
const relaxed = (await compile('relaxed')) !== null;

describe('warmUp', () => {
  it.each([
    ['simd', 'x86', 1], ['simd', 'arm', 1], ['simd', 'scalar', 1], ['simd', 'x86', 2], ['simd', 'arm', 3],
  ] as const)('%s build, %s kernels, %i thread(s)', async (build, variant, threads) => {
    await expect(warmUp(build, variant, threads)).resolves.toBeUndefined();
  });
  it.skipIf(!relaxed).each([1, 2])('relaxed build, %i thread(s)', async (threads) => {
    await expect(warmUp('relaxed', 'x86', threads)).resolves.toBeUndefined();
  });

  it('a model loaded after it gives the same output as the debug build, which skips it', async () => {
    const x = Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => ((i * 7919) % 255) / 255);
    const warm = await load(undefined, { build: 'simd', threads: 1, kernels: 'scalar' });
    const cold = await load(undefined, { build: 'debug', threads: 1, kernels: 'scalar' });
    expect(Array.from(await warm.run(x))).toEqual(Array.from(await cold.run(x)));
    warm.dispose();
    cold.dispose();
  });
});
