#!/usr/bin/env node
// Memory soak: many run() calls on one model, many load/dispose cycles, and models dropped
// without dispose(). Records RSS, V8 heap, external and ArrayBuffer memory and the OS thread
// count at intervals (each after a full GC) and says whether anything grows without bound.
//
//   npm run soak                              # 10,000 runs, 200 + 200 load/dispose cycles
//   node scripts/soak.mjs --runs 2000 --cycles 50 --json soak.json
//
// Uses dist/ (npm run build first). GC is exposed with v8.setFlagsFromString + vm rather than
// --expose-gc, because compute threads cannot start under --expose-gc (see docs/RELIABILITY.md).
// Note: WebAssembly memory of single-threaded models counts in `external`; the shared memory
// of threaded models counts in neither `external` nor `arrayBuffers`, only in RSS.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const args = { runs: 10_000, cycles: 200, every: 1000, cycleEvery: 20, json: undefined };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (k === 'help') {
    console.log('usage: node scripts/soak.mjs [--runs N] [--cycles N] [--every N] [--cycle-every N] [--json out.json]');
    process.exit(0);
  }
  if (k === 'json') args.json = process.argv[i + 1];
  else args[k.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = Number(process.argv[i + 1]);
}

const { load } = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href);
const bytes = new Uint8Array(readFileSync(join(ROOT, 'weights/nsfwjs-mobilenet-v2.mnw')));
const cat = new Uint8Array(readFileSync(join(ROOT, 'samples/cat-photo.jpg')));
const MiB = 2 ** 20;
const osThreads = () => (existsSync('/proc/self/status') ? Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) : NaN);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Memory after a full GC (three rounds, letting finalizers and worker exits run). */
async function sample(label, extra = {}) {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(30);
  }
  const m = process.memoryUsage();
  const s = {
    label,
    rssMiB: +(m.rss / MiB).toFixed(1),
    heapUsedMiB: +(m.heapUsed / MiB).toFixed(1),
    externalMiB: +(m.external / MiB).toFixed(1),
    arrayBuffersMiB: +(m.arrayBuffers / MiB).toFixed(1),
    osThreads: osThreads(),
    ...extra,
  };
  console.log(
    `${label.padEnd(34)} rss ${String(s.rssMiB).padStart(7)}  heap ${String(s.heapUsedMiB).padStart(6)}  external ${String(s.externalMiB).padStart(7)}  arrayBuffers ${String(s.arrayBuffersMiB).padStart(6)}  threads ${s.osThreads}` +
      Object.entries(extra).map(([k, v]) => `  ${k} ${v}`).join(''),
  );
  return s;
}

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

function r(x) {
  let s = x >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const t0 = performance.now();
const report = { command: `node scripts/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(), node: process.version, phases: {} };
const start = await sample('start');

// --- 1. run() calls on one model (default options: compute threads) ---------------------------
{
  const rand = r(1);
  const inputs = [0, 1, 2].map(() => Float32Array.from({ length: 224 * 224 * 3 }, () => rand()));
  const model = await load(bytes);
  await model.threadsReady;
  console.log(`\nphase 1: ${args.runs} run() calls, ${model.threads.count} thread(s)${model.threads.reason ? ` (${model.threads.reason})` : ''}, every 100th a classify() of a JPEG`);
  const first = await model.run(inputs[0]);
  for (let i = 0; i < 100; i++) await model.run(inputs[i % 3]); // warm-up
  const samples = [await sample('runs: after 100 warm-up runs', { runs: 0, msPerRun: 0 })];
  let t = performance.now();
  for (let i = 1; i <= args.runs; i++) {
    if (i % 100 === 0) await model.classify(cat);
    else await model.run(inputs[i % 3]);
    if (i % args.every === 0) {
      const msPerRun = +((performance.now() - t) / args.every).toFixed(2);
      samples.push(await sample(`runs: ${i}`, { runs: i, msPerRun }));
      t = performance.now();
    }
  }
  const last = await model.run(inputs[0]);
  const same = first.every((v, i) => Object.is(v, last[i]));
  model.dispose();
  const xs = samples.map((s) => s.runs);
  report.phases.runs = {
    runs: args.runs,
    threads: model.threads.count,
    samples,
    rssGrowthMiB: +(samples.at(-1).rssMiB - samples[0].rssMiB).toFixed(1),
    rssSlopeMiBPer1000: +(slope(xs, samples.map((s) => s.rssMiB)) * 1000).toFixed(2),
    externalSlopeMiBPer1000: +(slope(xs, samples.map((s) => s.externalMiB)) * 1000).toFixed(3),
    heapSlopeMiBPer1000: +(slope(xs, samples.map((s) => s.heapUsedMiB)) * 1000).toFixed(3),
    lastOutputBitIdenticalToFirst: same,
  };
  console.log(`  -> first and last output of the same input bit-identical: ${same}`);
}

// --- 2. load/dispose cycles, with compute threads and without ----------------------------------
for (const [name, options] of [['cycles (threads: default)', {}], ['cycles (threads: 1)', { threads: 1 }]]) {
  console.log(`\nphase 2: ${args.cycles} load/run/dispose ${name}`);
  const x = new Float32Array(224 * 224 * 3).fill(0.5);
  for (let i = 0; i < 5; i++) {
    const m = await load(bytes, options);
    await m.run(x);
    m.dispose();
  }
  const samples = [await sample(`${name}: after 5 warm-up`, { cycles: 0 })];
  let t = performance.now();
  for (let i = 1; i <= args.cycles; i++) {
    const m = await load(bytes, options);
    // Half the time dispose before the threads have booted, half after a threaded run.
    if (i % 2) await m.threadsReady;
    await m.run(x);
    m.dispose();
    if (i % args.cycleEvery === 0) {
      samples.push(await sample(`${name}: ${i}`, { cycles: i, msPerCycle: +((performance.now() - t) / args.cycleEvery).toFixed(0) }));
      t = performance.now();
    }
  }
  await sleep(500);
  const settled = await sample(`${name}: +0.5 s`, { cycles: args.cycles });
  const xs = samples.map((s) => s.cycles);
  report.phases[name] = {
    cycles: args.cycles,
    samples: [...samples, settled],
    rssGrowthMiB: +(settled.rssMiB - samples[0].rssMiB).toFixed(1),
    rssSlopeMiBPer100: +(slope(xs, samples.map((s) => s.rssMiB)) * 100).toFixed(2),
    externalSlopeMiBPer100: +(slope(xs, samples.map((s) => s.externalMiB)) * 100).toFixed(3),
    threadsLeft: settled.osThreads - start.osThreads,
  };
}

// --- 3. models dropped without dispose() ------------------------------------------------------
for (const [name, options] of [['dropped (threads: 1)', { threads: 1 }], ['dropped (threads: default)', {}]]) {
  console.log(`\nphase 3: 10 models loaded, run, and dropped without dispose(): ${name}`);
  const before = await sample(`${name}: before`);
  const x = new Float32Array(224 * 224 * 3).fill(0.25);
  // In a function that returns: a suspended async frame (this module's top level) keeps its
  // dead locals alive in V8, which would pin the last model.
  const loadRunDrop = async () => {
    for (let i = 0; i < 10; i++) {
      const m = await load(bytes, options);
      await m.threadsReady;
      await m.run(x);
    }
  };
  await loadRunDrop();
  await sample(`${name}: GC`); // collects the models; their FinalizationRegistry callbacks stop the threads
  await sleep(1000);
  const after = await sample(`${name}: after, GC, +1 s`);
  report.phases[name] = { before, after, rssGrowthMiB: +(after.rssMiB - before.rssMiB).toFixed(1), externalGrowthMiB: +(after.externalMiB - before.externalMiB).toFixed(1), threadsLeft: after.osThreads - before.osThreads };
}

report.seconds = Math.round((performance.now() - t0) / 1000);
report.peakRssMiB = Math.round((process.resourceUsage().maxRSS * 1024) / MiB);
report.start = start;
console.log('\n==== summary ====');
console.log(`${report.seconds} s, peak RSS ${report.peakRssMiB} MiB, node ${process.version}`);
const p = report.phases;
console.log(`runs: ${p.runs.runs} on ${p.runs.threads} thread(s): RSS ${p.runs.rssGrowthMiB >= 0 ? '+' : ''}${p.runs.rssGrowthMiB} MiB after warm-up (slope ${p.runs.rssSlopeMiBPer1000} MiB / 1000 runs; external ${p.runs.externalSlopeMiBPer1000}, heap ${p.runs.heapSlopeMiBPer1000}); output stable: ${p.runs.lastOutputBitIdenticalToFirst}`);
for (const k of ['cycles (threads: default)', 'cycles (threads: 1)']) {
  console.log(`${k}: ${p[k].cycles} cycles: RSS ${p[k].rssGrowthMiB >= 0 ? '+' : ''}${p[k].rssGrowthMiB} MiB after warm-up (slope ${p[k].rssSlopeMiBPer100} MiB / 100 cycles; external ${p[k].externalSlopeMiBPer100}), OS threads left behind: ${p[k].threadsLeft}`);
}
for (const k of ['dropped (threads: 1)', 'dropped (threads: default)']) {
  console.log(`${k}: 10 models never disposed: RSS ${p[k].rssGrowthMiB >= 0 ? '+' : ''}${p[k].rssGrowthMiB} MiB, external ${p[k].externalGrowthMiB >= 0 ? '+' : ''}${p[k].externalGrowthMiB} MiB after GC, OS threads left behind: ${p[k].threadsLeft}`);
}
if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2));
process.exit(0);
