// Threads: results bit-identical to one thread for 1-4 threads (each output element is computed
// by exactly one thread, by the same kernel), runs queue in order, dispose() stops the threads
// and a Node process exits by itself, and the fallback to one thread says why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { load, mobilenetV1, InputError, type Model } from '../src/index.js';
import { mulberry32 } from './helpers/wasm.js';
import { claimOrder } from '../src/threads-shared.js';

const input = (n: number, seed: number): Float32Array => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r());
};
const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe.each([
  { name: 'bundled nsfwjs MobileNetV2', source: () => undefined, n: 224 * 224 * 3 },
  { name: 'MobileNetV1 1.0 128 (random weights)', source: () => mobilenetV1({ alpha: 1, inputSize: 128, seed: 2 }), n: 128 * 128 * 3 },
])('$name', ({ source, n }) => {
  const x = input(n, 7);
  let one: Float32Array;
  beforeAll(async () => {
    const m = await load(source(), { threads: 1 });
    one = await m.run(x);
    m.dispose();
  });
  it.each([2, 3, 4])('%i threads give bit-identical results (run and runSync)', async (threads) => {
    const m = await load(source(), { threads });
    expect(bits(await m.run(x))).toEqual(bits(one)); // possibly before the threads are up
    await m.threadsReady;
    expect(m.threads).toEqual({ count: threads, requested: threads });
    expect(bits(await m.run(x))).toEqual(bits(one));
    // runSync() computes share 0 on the calling thread; thread 0 sits those runs out and
    // takes its share again in the next run().
    expect(bits(m.runSync(x))).toEqual(bits(one));
    expect(bits(m.runSync(x))).toEqual(bits(one));
    expect(bits(await m.run(x))).toEqual(bits(one));
    expect(bits(m.runSync(x))).toEqual(bits(one));
    m.dispose();
  });
});

describe('threaded model behaviour', () => {
  let m: Model;
  afterAll(() => m?.dispose());
  it('concurrent run() calls queue in call order and all resolve correctly', async () => {
    m = await load(undefined, { threads: 2 });
    await m.threadsReady;
    const xs = [1, 2, 3, 4, 5].map((s) => input(224 * 224 * 3, s));
    const want = [];
    for (const x of xs) want.push(bits(m.runSync(x)).slice());
    const got = await Promise.all(xs.map((x) => m.run(x)));
    got.forEach((g, i) => expect(bits(g)).toEqual(want[i]));
  });
  it('runSync() while a run() is in progress throws and leaves that run intact', async () => {
    const x = input(224 * 224 * 3, 6);
    const want = bits(m.runSync(x)).slice();
    const pending = m.run(x);
    await Promise.resolve(); // run() has started: its input is in the arena, the threads work
    expect(() => m.runSync(input(224 * 224 * 3, 7))).toThrow(/while a run\(\) of this model is in progress/);
    expect(bits(await pending)).toEqual(want);
    expect(bits(m.runSync(x))).toEqual(want); // and usable afterwards
  });
  it('a bad input in the queue rejects alone; the others still resolve', async () => {
    const x = input(224 * 224 * 3, 1);
    const [a, b, c] = await Promise.allSettled([m.run(x), m.run(new Float32Array(3)), m.run(x)]);
    expect(a.status).toBe('fulfilled');
    expect(b.status === 'rejected' && b.reason instanceof InputError).toBe(true);
    expect(c.status).toBe('fulfilled');
  });
  it('dispose() while the threads are still starting stops them', async () => {
    const d = await load(undefined, { threads: 2 });
    d.dispose();
    await d.threadsReady;
    expect(d.disposed).toBe(true);
  });
  it('rejects a bad thread count', async () => {
    await expect(load(undefined, { threads: 0 })).rejects.toBeInstanceOf(InputError);
    await expect(load(undefined, { threads: 1.5 })).rejects.toBeInstanceOf(InputError);
  });
});

describe('processes', () => {
  const node = (args: string[], code: string) =>
    spawnSync(process.execPath, [...args, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });

  it('a Node script that loads a 2-thread model, runs it and disposes it exits on its own', () => {
    const r = node([], `
      import { load } from './dist/index.js';
      const m = await load(undefined, { threads: 2 });
      await m.threadsReady;
      const p = await m.classify('samples/cat-photo.jpg');
      m.dispose();
      console.log(m.threads.count, p[0].label);`);
    expect(r.error).toBeUndefined(); // not killed by the timeout
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('2 Neutral');
  });
  it('even without dispose(), idle threads do not keep the process alive', () => {
    const r = node([], `
      import { load } from './dist/index.js';
      const m = await load(undefined, { threads: 2 });
      await m.threadsReady;
      await m.run(new Float32Array(224 * 224 * 3));
      console.log('ran');`);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
  });
  it('without SharedArrayBuffer it falls back to one thread and says why', () => {
    const r = node(['--no-harmony-sharedarraybuffer'], `
      import { load } from './dist/index.js';
      const m = await load(undefined, { threads: 2 });
      console.log(JSON.stringify(m.threads));
      console.log((await m.classify('samples/cat-photo.jpg'))[0].label);`);
    expect(r.status).toBe(0);
    const [report, label] = r.stdout.trim().split('\n');
    const t = JSON.parse(report) as { count: number; requested: number; reason: string };
    expect(t.count).toBe(1);
    expect(t.requested).toBe(2);
    expect(t.reason).toMatch(/SharedArrayBuffer/);
    expect(label).toBe('Neutral');
  });
});

describe('thread plan', () => {
  it('7x7 blocks split into evenly shared steps, 14x14 blocks expand apart; the classifier head runs on thread 0 without barriers', async () => {
    const { buildPlan } = await import('../src/plan.js');
    const { mobilenetV2 } = await import('../src/index.js');
    const src = mobilenetV2({ alpha: 1, inputSize: 224, classes: 10 });
    const one = buildPlan(src, 'x86', 1);
    const two = buildPlan(src, 'x86', 2);
    expect(two.macs).toBe(one.macs);
    // Four 7x7 blocks with an expansion as three steps (expand, depthwise, project) instead of
    // one fused step each, and seven 14x14 blocks as two (expand, fused depthwise + project).
    expect(two.steps.length).toBe(one.steps.length + 4 * 2 + 7);
    const last = two.steps.filter((s) => s.layers.some((l) => l.startsWith('block_16')));
    expect(last.map((s) => s.kernel)).toEqual(['gemm_4x8_f32_x86', 'dwconv3x3_nhwc_f32_x86', 'gemm_4x8_f32_x86']);
    for (const s of last) expect(s.chunks.length).toBeGreaterThanOrEqual(2);
    const mid = two.steps.filter((s) => s.layers.some((l) => l.startsWith('block_8_')));
    expect(mid.map((s) => [s.kernel, s.layers])).toEqual([
      ['gemm_4x8_f32_x86', ['block_8_expand']],
      ['ibottleneck3x3_nhwc_f32_x86', ['block_8_depthwise', 'block_8_project', 'block_8_add']],
    ]);
    // GEMMs with fewer pixels than output channels split into column ranges of whole 8-wide
    // blocks (args: M, K, N, ..., ldo = the full width), so each thread reads its share of the weights.
    const expand16 = last[0].chunks.map((c) => c[0]);
    expect(expand16.map((a) => a[0])).toEqual(expand16.map(() => 49));
    expect(expand16.reduce((n, a) => n + (a[2] as number), 0)).toBe(960);
    expect(expand16.every((a) => a[9] === 960 && (a[2] as number) % 8 === 0)).toBe(true);
    const project14 = two.steps.find((s) => s.layers.includes('block_14_project'))!.chunks.map((c) => c[0]);
    expect(project14.every((a) => a[0] === 49 && a[9] === 160)).toBe(true);
    // Where pixels outnumber channels (block 6 expands its 28x28 input), by rows of the whole width.
    const expand6 = two.steps.find((s) => s.layers.includes('block_6_expand'))!.chunks.map((c) => c[0]);
    expect(expand6.reduce((m, a) => m + (a[0] as number), 0)).toBe(28 * 28);
    expect(expand6.every((a) => a[2] === 192 && a[9] === 192)).toBe(true);
    // Wider blocks stay fused whole.
    expect(two.steps.find((s) => s.layers.includes('block_5_expand'))?.kernel).toBe('ibottleneck3x3_nhwc_f32_x86');
    const head = two.steps.slice(-3);
    expect(head.every((s) => s.chunks.length === 1 && !s.syncAfter)).toBe(true);
    expect(two.steps.slice(0, -3).every((s) => s.syncAfter)).toBe(true);
    expect(one.steps.length).toBeGreaterThan(10);
  });
});

describe('claimOrder', () => {
  it('gives every runner, the caller of run() included, every chunk exactly once, its own first', () => {
    for (let T = 1; T <= 8; T++) {
      for (let K = 1; K <= 20; K++) {
        for (let runner = 0; runner <= T; runner++) {
          const order = claimOrder(runner, T, K);
          expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: K }, (_, c) => c));
          const own = order.filter((c) => Math.floor((c * T) / K) === runner);
          expect(order.slice(0, own.length)).toEqual([...own].sort((a, b) => a - b));
        }
      }
    }
    expect(claimOrder(0, 2, 4)).toEqual([0, 1, 3, 2]);
    expect(claimOrder(1, 2, 4)).toEqual([2, 3, 1, 0]);
    expect(claimOrder(2, 2, 4)).toEqual([3, 2, 1, 0]);
  });
});
