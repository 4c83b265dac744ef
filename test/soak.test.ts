// Memory soak, short form (scripts/soak.mjs is the long one): 500 run() calls on one model
// and 20 + 10 load/dispose cycles must not grow memory or leave threads behind.
//
// Bounds (after warm-up, each measured after a full GC): 500 runs: RSS +32 MiB, V8 heap
// +4 MiB, external and ArrayBuffer memory +4 MiB. 20 threaded load/dispose cycles: RSS
// +100 MiB (allocator caching of freed shared memory; the long run shows it levels off), OS
// threads back to where they were. 10 single-thread cycles: external +40 MiB (at most ~3
// collectable 12 MiB wasm memories awaiting GC). Without a GC function the memory bounds
// are skipped (the other checks still run).
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, type Model } from '../src/index.js';

let gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  try {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  } catch {
    gc = undefined;
  }
}

const MiB = 2 ** 20;
const linux = process.platform === 'linux';
const bytes = new Uint8Array(readFileSync('weights/nsfwjs-mobilenet-v2.mnw'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const osThreads = (): number => Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

async function usage() {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(20);
  }
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB, external: m.external / MiB, arrayBuffers: m.arrayBuffers / MiB };
}

/** Waits (up to `ms`) for the OS thread count to drop to `n`; returns the last count. */
async function threadsSettle(n: number, ms = 3000): Promise<number> {
  const end = performance.now() + ms;
  let t = osThreads();
  while (t > n && performance.now() < end) {
    await sleep(50);
    t = osThreads();
  }
  return t;
}

const input = (seed: number) => Float32Array.from({ length: 224 * 224 * 3 }, (_, i) => ((i * 7919 + seed * 104729) % 1000) / 1000);

describe('soak', () => {
  let model: Model;
  beforeAll(async () => {
    model = await load(bytes);
    await model.threadsReady;
  });
  afterAll(() => model.dispose());

  it('500 run() calls: memory flat after warm-up, the answer never changes', async () => {
    const xs = [input(1), input(2)];
    const first = await model.run(xs[0]);
    for (let i = 0; i < 50; i++) await model.run(xs[i % 2]);
    const before = await usage();
    for (let i = 0; i < 500; i++) await model.run(xs[i % 2]);
    const after = await usage();
    const last = await model.run(xs[0]);
    expect(last.every((v, i) => Object.is(v, first[i]))).toBe(true);
    console.log(`500 runs on ${model.threads.count} thread(s): rss ${before.rss.toFixed(1)} -> ${after.rss.toFixed(1)} MiB, heap ${before.heap.toFixed(1)} -> ${after.heap.toFixed(1)}, external ${before.external.toFixed(1)} -> ${after.external.toFixed(1)}`);
    if (!gc) return;
    expect(after.rss - before.rss).toBeLessThan(32);
    expect(after.heap - before.heap).toBeLessThan(4);
    expect(after.external - before.external).toBeLessThan(4);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(4);
  });

  it('20 load/run/dispose cycles with compute threads: memory bounded, no thread left behind', async () => {
    const x = input(3);
    for (let i = 0; i < 3; i++) (await load(bytes)).dispose();
    const threads0 = linux ? await threadsSettle(0, 500) : 0;
    const before = await usage();
    for (let i = 0; i < 20; i++) {
      const m = await load(bytes);
      if (i % 2) await m.threadsReady; // half disposed while the threads still boot
      await m.run(x);
      m.dispose();
    }
    const after = await usage();
    console.log(`20 threaded cycles: rss ${before.rss.toFixed(1)} -> ${after.rss.toFixed(1)} MiB, external ${before.external.toFixed(1)} -> ${after.external.toFixed(1)}`);
    if (linux) expect(await threadsSettle(threads0)).toBeLessThanOrEqual(threads0);
    if (!gc) return;
    expect(after.rss - before.rss).toBeLessThan(100);
    expect(after.external - before.external).toBeLessThan(8);
  });

  it('10 single-thread load/run/dispose cycles: wasm memories are collected', async () => {
    const x = input(4);
    (await load(bytes, { threads: 1 })).dispose();
    const before = await usage();
    for (let i = 0; i < 10; i++) {
      const m = await load(bytes, { threads: 1 });
      await m.run(x);
      m.dispose();
    }
    const after = await usage();
    console.log(`10 single-thread cycles: rss ${before.rss.toFixed(1)} -> ${after.rss.toFixed(1)} MiB, external ${before.external.toFixed(1)} -> ${after.external.toFixed(1)}`);
    if (!gc) return;
    expect(after.external - before.external).toBeLessThan(40);
  });

  // The models are loaded in a function that returns: a suspended async frame keeps its dead
  // locals alive in V8, so a loop in the test body itself would pin the last model.
  async function loadRunDrop(n: number, x: Float32Array): Promise<void> {
    for (let i = 0; i < n; i++) {
      const m = await load(bytes);
      await m.threadsReady;
      expect(m.threads.count).toBeGreaterThan(1);
      await m.run(x);
    }
  }

  (linux ? it : it.skip)('threaded models dropped without dispose() are collected with their threads', async () => {
    const x = input(5);
    const threads0 = await threadsSettle(0, 500);
    await loadRunDrop(3, x);
    expect(osThreads()).toBeGreaterThan(threads0);
    if (!gc) return;
    await usage();
    expect(await threadsSettle(threads0, 3000)).toBeLessThanOrEqual(threads0);
  });
});
