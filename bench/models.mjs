// End-to-end benchmark: our wasm vs the peers on the same weights, in one process, alternating.
//
//   node bench/models.mjs [--rounds N] [--models v2,v1] [--skip cpu,rss,startup,...] [--quick]
//   node bench/models.mjs --docs-only      regenerate docs/ from bench/results/latest.json
//
// Models: (v2) the bundled nsfwjs MobileNetV2 1.0 224 (trained, uint8 weights) and (v1) a
// MobileNetV1 1.0 224 with seeded random weights. Every runtime gets the very same weights:
// ours from the ModelSource, TF.js from the same ModelSource (bench/peers/tfjs.mjs, fused ops,
// batch-norm folded: the peer's best case), onnxruntime from the ONNX export of it.
//
// Runtimes (one process, one thread each):
//   ours          our plain-SIMD build (the headline)
//   ours-relaxed  our relaxed-SIMD build (Node 20 needs the V8 flag set below)
//   tfjs-wasm     @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, 1 thread)
//   ort-web       onnxruntime-web, wasm backend, 1 thread
//   ort-node      onnxruntime-node, native CPU, 1 thread: a reference row, not a peer
//   tfjs-cpu      @tensorflow/tfjs-backend-cpu (plain JS): context only, few rounds
//
// Method: every runtime's output is first checked against ours (max |diff| <= 1e-4, else the
// run aborts); then >= 10 warm-up runs each (V8 runs wasm in Liftoff first); then R rounds,
// each running every runtime once in a rotating order. Ratios ours/peer are taken per round,
// because this machine's speed swings by up to 40 % for seconds at a time; latencies are
// reported as median / min / p90 of the rounds.
// Peak RSS is measured in a separate child process per runtime (`--rss <runtime> <model>`),
// and startup ("import -> first result") in fresh children (`--startup-child classify|run`).
//
// Writes bench/results/models-<timestamp>.json, bench/results/latest.json, docs/performance.svg
// and docs/PERFORMANCE.md (keeping its hand-written part between <!-- manual --> markers).

import v8 from 'node:v8';
import vm from 'node:vm';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync, statSync, readdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { mulberry32 } from '../dist/builders.js';

const ARGV = process.argv.slice(2);
const STARTUP_CHILD = ARGV.includes('--startup-child');

// Must run before any wasm is compiled. Not in startup children: they measure what a plain
// Node 20 user gets from `load()` (the plain SIMD build).
if (!STARTUP_CHILD) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

// Record the size of every wasm binary the peers compile, to report the file they load.
/** @type {{ label: string, bytes: number }[]} */
const wasmLoads = [];
let wasmLabel = '';
for (const fn of /** @type {const} */ (['instantiate', 'compile'])) {
  const orig = WebAssembly[fn];
  // @ts-ignore
  WebAssembly[fn] = function (source, ...rest) {
    if (source && typeof source.byteLength === 'number') wasmLoads.push({ label: wasmLabel, bytes: source.byteLength });
    return orig.call(this, source, ...rest);
  };
}


const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = fileURLToPath(import.meta.url);
const require = createRequire(import.meta.url);
const now = () => performance.now();

// ---------------------------------------------------------------------------------------
// Options

function optValue(name) {
  const i = ARGV.indexOf(name);
  if (i < 0) return undefined;
  const v = ARGV[i + 1];
  if (v === undefined || v.startsWith('--')) die(`${name} needs a value`);
  return v;
}
function die(msg) {
  console.error(`bench/models: ${msg}`);
  process.exit(2);
}

const QUICK = ARGV.includes('--quick');
const OPTS = {
  quick: QUICK,
  rounds: Number(optValue('--rounds') ?? (QUICK ? 3 : 30)),
  warmup: QUICK ? 3 : 10,
  cpuRounds: QUICK ? 1 : 3,
  cpuWarmup: QUICK ? 1 : 2,
  models: (optValue('--models') ?? 'v2,v1').split(',').filter(Boolean),
  skip: new Set((optValue('--skip') ?? '').split(',').filter(Boolean)),
  startupChildren: QUICK ? 1 : 5,
  rssRuns: QUICK ? 3 : 20,
  rssRunsCpu: QUICK ? 1 : 5,
  tolerance: 1e-4,
};

// ---------------------------------------------------------------------------------------
// Runtimes and models

const RUNTIMES = [
  { id: 'ours', label: 'ours (simd)', role: 'ours' },
  { id: 'ours-relaxed', label: 'ours (relaxed simd)', role: 'ours' },
  { id: 'ours-2t', label: 'ours (simd, 2 threads)', role: 'ours' },
  { id: 'tfjs-wasm', label: 'TF.js wasm (XNNPACK)', role: 'peer' },
  { id: 'ort-web', label: 'onnxruntime-web (wasm)', role: 'peer' },
  { id: 'ort-node', label: 'onnxruntime-node (native)', role: 'reference' },
  { id: 'tfjs-cpu', label: 'TF.js cpu (plain JS)', role: 'context' },
];
const RUNTIME_IDS = RUNTIMES.map((r) => r.id);
const skipName = (id) => OPTS.skip.has(id) || (id === 'tfjs-cpu' && OPTS.skip.has('cpu'));

const MODELS = {
  v2: { id: 'v2', name: 'nsfwjs MobileNetV2 1.0 224 (bundled, trained)', inputRange: [0, 1], seed: 42 },
  v1: { id: 'v1', name: 'MobileNetV1 1.0 224, 1000 classes (seeded random weights)', inputRange: [-1, 1], seed: 7 },
};
for (const m of OPTS.models) if (!MODELS[m]) die(`unknown model ${m} (v2, v1)`);
for (const s of OPTS.skip) if (![...RUNTIME_IDS, 'cpu', 'rss', 'startup', 'threads'].includes(s)) die(`unknown --skip entry ${s}`);
if (!(OPTS.rounds >= 1)) die('--rounds must be >= 1');

/** @type {any} */
let lib; // ../dist/index.js
async function ourLib() {
  lib ??= await import('../dist/index.js');
  return lib;
}

async function modelSource(id) {
  const { readModel, mobilenetV1 } = await ourLib();
  if (id === 'v2') return readModel();
  return mobilenetV1({ alpha: 1, inputSize: 224, classes: 1000, seed: 1 });
}

function seededInput(shape, seed, [lo, hi]) {
  const rand = mulberry32(seed);
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = lo + (hi - lo) * rand();
  return x;
}

// Peer modules, imported once per process. onnxruntime-node must come before onnxruntime-web:
// both register a backend named 'cpu'.
const mods = /** @type {Record<string, any>} */ ({});
const modErrors = /** @type {Record<string, string>} */ ({});
async function importPeers(ids) {
  const want = new Set(ids);
  const tryImport = async (key, fn) => {
    try {
      mods[key] = await fn();
    } catch (e) {
      modErrors[key] = errText(e);
    }
  };
  if (want.has('ort-node')) await tryImport('ortNode', () => import('onnxruntime-node'));
  if (want.has('ort-web')) {
    wasmLabel = 'ort-web';
    await tryImport('ortWeb', async () => {
      const ort = await import('onnxruntime-web');
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      return ort;
    });
  }
  if (want.has('tfjs-wasm') || want.has('tfjs-cpu')) {
    await tryImport('tfPeer', () => import('./peers/tfjs.mjs'));
  }
  if (want.has('tfjs-wasm') && mods.tfPeer) {
    wasmLabel = 'tfjs-wasm';
    await tryImport('tfWasm', async () => {
      const tf = await mods.tfPeer.initTf('wasm');
      const info = await mods.tfPeer.wasmInfo(tf);
      if (!info.simd) throw new Error(`TF.js wasm backend runs without SIMD (${JSON.stringify(info)})`);
      return { tf, info };
    });
  }
  if (want.has('tfjs-cpu') && mods.tfPeer) {
    await tryImport('tfCpu', async () => ({ tf: await mods.tfPeer.initTf('cpu') }));
  }
  wasmLabel = '';
}

function moduleFor(id) {
  const key = { 'tfjs-wasm': 'tfWasm', 'tfjs-cpu': 'tfCpu', 'ort-web': 'ortWeb', 'ort-node': 'ortNode' }[id];
  if (!key) return null;
  if (id.startsWith('tfjs') && !mods.tfPeer) throw new Error(`bench/peers/tfjs.mjs failed to load: ${modErrors.tfPeer}`);
  if (!mods[key]) throw new Error(`${id} failed to load: ${modErrors[key] ?? 'not imported'}`);
  return mods[key];
}

/**
 * Sets up one runtime on one model.
 * @returns {Promise<{ run: (x: Float32Array) => Promise<Float32Array> | Float32Array,
 *   before?: () => Promise<void>, dispose: () => Promise<void> | void, info: object }>}
 */
async function setupRuntime(id, ctx) {
  switch (id) {
    case 'ours-2t': {
      const { load } = await ourLib();
      const model = await load(ctx.src, { build: 'simd', threads: 2 });
      await model.threadsReady;
      if (model.threads.count !== 2) throw new Error(`threads unavailable: ${model.threads.reason}`);
      return {
        run: (x) => model.run(x),
        dispose: () => model.dispose(),
        info: { build: model.build, kernels: model.kernels, threads: model.threads, macs: model.macs, memory: model.memory },
        model,
      };
    }
    case 'ours':
    case 'ours-relaxed': {
      const { load } = await ourLib();
      // One compute thread, like the peers (load() defaults to several where it can).
      const model = await load(ctx.src, { build: id === 'ours' ? 'simd' : 'relaxed', threads: 1 });
      return {
        run: (x) => model.runSync(x),
        dispose: () => model.dispose(),
        info: { build: model.build, kernels: model.kernels, threads: model.threads ?? null, macs: model.macs, memory: model.memory },
        model,
      };
    }
    case 'tfjs-wasm':
    case 'tfjs-cpu': {
      const { tf, info } = moduleFor(id);
      const backend = id === 'tfjs-wasm' ? 'wasm' : 'cpu';
      const select = async () => {
        if (tf.getBackend() !== backend && !(await tf.setBackend(backend))) throw new Error(`setBackend(${backend}) failed`);
      };
      await select();
      const net = mods.tfPeer.buildTfjsNetwork(tf, ctx.src, { fused: true });
      return {
        run: (x) => net.run(x),
        before: select,
        dispose: async () => {
          await select();
          net.dispose();
        },
        info: { backend, fused: true, ...(info ? { wasm: info } : {}) },
      };
    }
    case 'ort-web':
    case 'ort-node': {
      const ort = moduleFor(id);
      const bytes = await ctx.onnx();
      wasmLabel = id;
      const session =
        id === 'ort-web'
          ? await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] })
          : await ort.InferenceSession.create(bytes, {
              executionProviders: ['cpu'],
              intraOpNumThreads: 1,
              interOpNumThreads: 1,
              executionMode: 'sequential',
            });
      wasmLabel = '';
      const shape = [...ctx.src.desc.inputShape];
      let feeds = null;
      let fedWith = null;
      return {
        run: async (x) => {
          if (fedWith !== x) {
            feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, shape) };
            fedWith = x;
          }
          const out = await session.run(feeds);
          return /** @type {Float32Array} */ (out[session.outputNames[0]].data);
        },
        dispose: () => session.release(),
        info:
          id === 'ort-web'
            ? { executionProvider: 'wasm', numThreads: ort.env.wasm.numThreads, proxy: ort.env.wasm.proxy }
            : { executionProvider: 'cpu', intraOpNumThreads: 1 },
      };
    }
    default:
      throw new Error(`unknown runtime ${id}`);
  }
}

function makeCtx(src) {
  let onnx = null;
  return {
    src,
    onnx: async () => {
      if (!onnx) {
        const { exportOnnx } = await import('../dist/onnx/export.js');
        onnx = exportOnnx(src);
      }
      return onnx;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Statistics

function quantile(values, q) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
const summary = (xs) => ({
  n: xs.length,
  median: quantile(xs, 0.5),
  min: xs.length ? Math.min(...xs) : NaN,
  p10: quantile(xs, 0.1),
  p90: quantile(xs, 0.9),
});
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
/** On softmax outputs: the largest difference of log-probabilities (a relative error that stays
 * meaningful for the tiny probabilities of a 1000-class output), over entries above 1e-30. */
function maxLogDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] > 1e-30 && b[i] > 1e-30) m = Math.max(m, Math.abs(Math.log(a[i]) - Math.log(b[i])));
  }
  return m;
}
const argmax = (a) => a.reduce((bi, v, i) => (v > a[bi] ? i : bi), 0);
const errText = (e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

// ---------------------------------------------------------------------------------------
// Formatting

const ms = (v) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '-');
const rx = (s) => (s && Number.isFinite(s.median) ? `${s.median.toFixed(2)}x [${s.p10.toFixed(2)}-${s.p90.toFixed(2)}]` : '-');
const kb = (b) => `${(b / 1024).toFixed(1)} KB`;
const mb = (b) => `${(b / 2 ** 20).toFixed(2)} MB`;
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

function printTable(model) {
  console.log(
    `\n  ${pad('runtime', 28)}${lpad('median', 8)}${lpad('min', 8)}${lpad('p90', 8)}   ${pad('ours(simd)/this', 22)}${pad('ours(relaxed)/this', 22)}max|diff|`,
  );
  for (const rt of RUNTIMES) {
    const r = model.runtimes[rt.id];
    if (!r) continue;
    if (r.error) {
      console.log(`  ${pad(rt.label, 28)}FAILED: ${r.error}`);
      continue;
    }
    const t = r.latency;
    const diff = rt.id === 'ours' ? '(ref)' : r.maxAbsDiff?.toExponential(1) ?? '-';
    console.log(
      `  ${pad(rt.label, 28)}${lpad(ms(t.median), 8)}${lpad(ms(t.min), 8)}${lpad(ms(t.p90), 8)}   ` +
        `${pad(rt.id === 'ours' ? '-' : rx(r.ratio), 22)}${pad(rt.id === 'ours-relaxed' ? '-' : rx(r.ratioRelaxed), 22)}${diff}`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// Child processes

function runChild(args, timeoutMs = 180_000) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)));
      else resolve({ error: `child ${args.join(' ')} exited ${signal ?? code}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}` });
    });
  });
}

/** `--rss <runtime> <model>`: load one runtime, run it, report peak RSS. */
async function rssChild(id, modelId) {
  const result = { runtime: id, model: modelId };
  if (id !== 'none') {
    const src = await modelSource(modelId);
    if (id !== 'source') {
      await importPeers([id]);
      const ctx = makeCtx(src);
      const rt = await setupRuntime(id, ctx);
      const x = seededInput(src.desc.inputShape, 1, MODELS[modelId].inputRange);
      const runs = id === 'tfjs-cpu' ? OPTS.rssRunsCpu : OPTS.rssRuns;
      for (let i = 0; i < runs; i++) await rt.run(x);
      result.runs = runs;
      if (rt.model) result.arenaBytes = rt.model.memory.arenaBytes;
      result.vmHwmBytesBeforeDispose = vmHwm();
      await rt.dispose();
    }
  }
  // process.resourceUsage().maxRSS (kilobytes) is not this process's own peak on Linux: the
  // child is forked from the benchmark process, and the kernel keeps the pre-exec high-water
  // mark, so it reads at least the parent's RSS at spawn time (seen: "node alone" = 227 MB).
  // VmHWM in /proc/self/status is the high-water mark of this process's own address space.
  result.resourceUsageMaxRssBytes = process.resourceUsage().maxRSS * 1024;
  result.vmHwmBytes = vmHwm();
  result.maxRssBytes = result.vmHwmBytes ?? result.resourceUsageMaxRssBytes;
  result.rssSource = result.vmHwmBytes !== null ? '/proc/self/status VmHWM' : 'process.resourceUsage().maxRSS';
  result.memoryUsage = process.memoryUsage();
  console.log(`RESULT ${JSON.stringify(result)}`);
}

function vmHwm() {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * `--startup-child classify|run [threads]`: fresh process, import -> first result with the
 * bundled model, with `load()`'s defaults (or `{ threads }` when given).
 */
async function startupChild(kind, threads) {
  const image = path.join(ROOT, 'samples', 'cat-photo.jpg');
  const input = new Float32Array(224 * 224 * 3).fill(0.5);
  const options = threads ? { threads: Number(threads) } : undefined;
  const t0 = now();
  const { load } = await import('../dist/index.js');
  const t1 = now();
  const model = await load(undefined, options);
  const t2 = now();
  if (kind === 'classify') await model.classify(image);
  else await model.run(input);
  const t3 = now();
  console.log(
    `RESULT ${JSON.stringify({ kind, totalMs: t3 - t0, importMs: t1 - t0, loadMs: t2 - t1, firstMs: t3 - t2, sinceProcessStartMs: t3, build: model.build, threads: model.threads?.count ?? 1 })}`,
  );
  model.dispose();
}

/**
 * `--threads-child <model>`: ours alone in a fresh process, 1 thread vs 2 threads alternating
 * every round. Measured apart from the peers: their runtimes share the process (and its
 * allocator, GC and background compile threads), which disturbs a 2-thread run more than a
 * 1-thread one.
 */
async function threadsChild(modelId) {
  const { load } = await ourLib();
  const src = await modelSource(modelId);
  const [n, h, w, c] = src.desc.inputShape;
  const x = seededInput([n, h, w, c], MODELS[modelId].seed, MODELS[modelId].inputRange);
  const one = await load(src, { build: 'simd', threads: 1 });
  const two = await load(src, { build: 'simd', threads: 2 });
  await two.threadsReady;
  if (two.threads.count !== 2) throw new Error(`threads unavailable: ${two.threads.reason}`);
  for (let i = 0; i < 15; i++) {
    one.runSync(x);
    await two.run(x);
    two.runSync(x);
  }
  // run() leaves the event loop free while the threads work; runSync() blocks it and the
  // calling thread computes thread 0's share itself. The three runs of a round go in a
  // rotating order, as the runtimes in the main table do: in a fixed order, the run after the
  // one-thread run always starts with the second core idle for ~14 ms and the caches full of
  // the other model's data (~0.3 ms slower for V2), and the one after it never does.
  const t1 = [];
  const t2 = [];
  const t2s = [];
  const ratio = [];
  const ratioSync = [];
  const timed = async (f) => {
    const t0 = now();
    await f();
    return now() - t0;
  };
  const calls = [() => one.runSync(x), () => two.run(x), () => two.runSync(x)];
  for (let r = 0; r < OPTS.rounds; r++) {
    const ms = [0, 0, 0];
    for (let j = 0; j < 3; j++) {
      const k = (r + j) % 3;
      ms[k] = await timed(calls[k]);
    }
    const [a, b, c] = ms;
    t1.push(a);
    t2.push(b);
    t2s.push(c);
    ratio.push(b / a);
    ratioSync.push(c / a);
  }
  console.log(`RESULT ${JSON.stringify({ one: summary(t1), two: summary(t2), ratio: summary(ratio), twoSync: summary(t2s), ratioSync: summary(ratioSync) })}`);
  one.dispose();
  two.dispose();
}

/**
 * `--peer-threads-child <model>`: onnxruntime-web's threaded wasm build with numThreads = 2,
 * alone in a fresh process (its thread count is fixed for the whole process when its wasm
 * starts, and the peer table runs it with 1; and its threads spin ~16 ms after each run, which
 * would slow whatever shares the process), back to back. Ours with 2 threads is measured in
 * its own process too (`--threads-child`). TF.js's wasm backend has no row: its threaded build
 * refuses to start in Node (and it would use one thread on 2 cores: min(requested, cores / 2)).
 */
async function peerThreadsChild(modelId) {
  const { load } = await ourLib();
  const { exportOnnx } = await import('../dist/onnx/export.js');
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 2;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  const src = await modelSource(modelId);
  const shape = [...src.desc.inputShape];
  const x = seededInput(shape, MODELS[modelId].seed, MODELS[modelId].inputRange);
  const session = await ort.InferenceSession.create(exportOnnx(src), { executionProviders: ['wasm'] });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, shape) };
  const runOrt = async () => (await session.run(feeds))[session.outputNames[0]].data;
  // Ours (one thread) only to check that both computed the same outputs.
  const ours = await load(src, { build: 'simd', threads: 1 });
  const maxDiff = maxAbsDiff(await runOrt(), ours.runSync(x));
  ours.dispose();
  for (let i = 0; i < 10; i++) await runOrt();
  const t = [];
  for (let r = 0; r < OPTS.rounds; r++) {
    const t0 = now();
    await runOrt();
    t.push(now() - t0);
  }
  console.log(`RESULT ${JSON.stringify({ ort: summary(t), ortThreads: ort.env.wasm.numThreads, maxDiff })}`);
  await session.release();
}

// ---------------------------------------------------------------------------------------
// The benchmark of one model

async function benchModel(modelId, ids) {
  const meta = MODELS[modelId];
  console.log(`\n== ${meta.name}`);
  const src = await modelSource(modelId);
  const ctx = makeCtx(src);
  const input = seededInput(src.desc.inputShape, meta.seed, meta.inputRange);
  const model = { id: modelId, name: meta.name, inputShape: src.desc.inputShape, inputRange: meta.inputRange, runtimes: {} };

  /** @type {Map<string, any>} */
  const live = new Map();
  for (const id of ids) {
    const t0 = now();
    try {
      const rt = await setupRuntime(id, ctx);
      await rt.before?.();
      const t1 = now();
      const out = Float32Array.from(await rt.run(input));
      const setupMs = t1 - t0;
      const firstRunMs = now() - t1;
      live.set(id, { ...rt, out });
      model.runtimes[id] = { info: rt.info, setupMs, firstRunMs };
      console.log(`  ${pad(id, 13)} ready: setup ${ms(setupMs)} ms, first run ${ms(firstRunMs)} ms`);
    } catch (e) {
      model.runtimes[id] = { error: errText(e) };
      console.log(`  ${pad(id, 13)} FAILED to set up: ${errText(e)}`);
      if (id === 'ours') throw new Error(`our own runtime failed on ${modelId}: ${errText(e)}`);
    }
  }
  const ours = live.get('ours');
  model.outputLength = ours.out.length;
  model.macs = ours.info.macs;
  model.ours = { ...ours.info.memory, build: ours.info.build, kernels: ours.info.kernels };

  // Correctness: everyone against ours, on the same input, before any timing.
  const bad = [];
  for (const [id, rt] of live) {
    if (id === 'ours') continue;
    const d = maxAbsDiff(rt.out, ours.out);
    model.runtimes[id].maxAbsDiff = d;
    model.runtimes[id].sameTop1 = argmax(rt.out) === argmax(ours.out);
    model.runtimes[id].maxLogDiff = maxLogDiff(rt.out, ours.out);
    if (!(d <= OPTS.tolerance)) bad.push(`${id}: max |diff| ${d.toExponential(2)} > ${OPTS.tolerance}`);
  }
  const outRange = [Math.min(...ours.out), Math.max(...ours.out)];
  console.log(
    `  outputs vs ours (${ours.out.length} values in [${outRange[0].toExponential(2)}, ${outRange[1].toExponential(2)}], top-1 ${argmax(ours.out)}): ` +
      [...live.keys()].filter((k) => k !== 'ours').map((k) => `${k} ${model.runtimes[k].maxAbsDiff.toExponential(1)}`).join(', '),
  );
  console.log(
    '  max |ln p - ln p_ours| (= logit error up to a shift): ' +
      [...live.keys()].filter((k) => k !== 'ours').map((k) => `${k} ${model.runtimes[k].maxLogDiff.toExponential(1)}`).join(', '),
  );
  if (bad.length) {
    console.error(`\n!!! OUTPUT MISMATCH on ${meta.name}: ${bad.join('; ')}\n!!! Aborting: timings of wrong results mean nothing.`);
    process.exit(1);
  }

  // Warm-up, then a pause for V8's background tier-up compiles to land, then one untimed round.
  for (const [id, rt] of live) {
    await rt.before?.();
    const n = id === 'tfjs-cpu' ? OPTS.cpuWarmup : OPTS.warmup;
    for (let i = 0; i < n; i++) await rt.run(input);
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const [id, rt] of live) {
    if (id === 'tfjs-cpu') continue;
    await rt.before?.();
    await rt.run(input);
  }

  // Rounds.
  const order = [...live.keys()];
  /** @type {Record<string, number[]>} */
  const times = Object.fromEntries(order.map((k) => [k, []]));
  const ratios = Object.fromEntries(order.map((k) => [k, []]));
  const ratiosRelaxed = Object.fromEntries(order.map((k) => [k, []]));
  const tRounds = now();
  for (let r = 0; r < OPTS.rounds; r++) {
    gc?.();
    const round = {};
    for (let i = 0; i < order.length; i++) {
      const id = order[(i + r) % order.length];
      if (id === 'tfjs-cpu' && r >= OPTS.cpuRounds) continue;
      const rt = live.get(id);
      await rt.before?.();
      const t0 = now();
      await rt.run(input);
      round[id] = now() - t0;
      times[id].push(round[id]);
    }
    for (const id of Object.keys(round)) {
      if (round.ours !== undefined) ratios[id].push(round.ours / round[id]);
      if (round['ours-relaxed'] !== undefined) ratiosRelaxed[id].push(round['ours-relaxed'] / round[id]);
    }
    if (!QUICK && (r + 1) % 10 === 0) process.stdout.write(`  round ${r + 1}/${OPTS.rounds} (${((now() - tRounds) / 1000).toFixed(1)} s)\n`);
  }
  for (const id of order) {
    Object.assign(model.runtimes[id], {
      latency: summary(times[id]),
      times: times[id].map((t) => Math.round(t * 1000) / 1000),
      ratio: id === 'ours' ? null : summary(ratios[id]),
      ratioRelaxed: id === 'ours-relaxed' || !live.has('ours-relaxed') ? null : summary(ratiosRelaxed[id]),
    });
  }
  printTable(model);

  for (const [id, rt] of live) {
    try {
      await rt.dispose();
    } catch (e) {
      console.log(`  (dispose of ${id} failed: ${errText(e)})`);
    }
  }
  return model;
}

// ---------------------------------------------------------------------------------------
// Versions, sizes, targets

function pkgVersion(name) {
  try {
    let dir = path.dirname(require.resolve(name));
    for (;;) {
      const f = path.join(dir, 'package.json');
      if (existsSync(f)) {
        const p = JSON.parse(readFileSync(f, 'utf8'));
        if (p.name === name) return p.version;
      }
      const up = path.dirname(dir);
      if (up === dir) return null;
      dir = up;
    }
  } catch {
    return null;
  }
}

function packageDir(name) {
  let dir = path.dirname(require.resolve(name));
  while (!existsSync(path.join(dir, 'package.json')) || JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
  return dir;
}

/** The peer's .wasm file whose size equals the largest binary it compiled in this process. */
function loadedWasm(label, pkg) {
  const seen = wasmLoads.filter((w) => w.label === label).map((w) => w.bytes);
  if (seen.length === 0) return null;
  const bytes = Math.max(...seen);
  let file = null;
  try {
    const dir = packageDir(pkg);
    const walk = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory() && e.name !== 'node_modules') walk(p);
        else if (e.name.endsWith('.wasm') && statSync(p).size === bytes) file ??= path.relative(ROOT, p);
      }
    };
    if (dir) walk(dir);
  } catch {
    /* the size alone is still worth reporting */
  }
  const gzip = file ? gzipSync(readFileSync(path.join(ROOT, file))).length : null;
  return { file, bytes, gzipBytes: gzip };
}

function ourWasm(name) {
  const f = path.join(ROOT, 'build', name);
  if (!existsSync(f)) return null;
  const buf = readFileSync(f);
  return { file: `build/${name}`, bytes: buf.length, gzipBytes: gzipSync(buf).length };
}

const KB100 = 100_000;
const ARENA_LIMIT = 2_500_000;

function evaluateTargets(res) {
  const targets = [];
  for (const m of res.models) {
    for (const peer of ['tfjs-wasm', 'ort-web']) {
      const r = m.runtimes[peer]?.ratio;
      targets.push({
        what: `${m.id}: ours (simd) / ${peer} <= 0.6`,
        value: r ? r.median : null,
        shown: r ? `${r.median.toFixed(2)}x` : 'not measured',
        met: r ? r.median <= 0.6 : null,
      });
    }
  }
  for (const m of res.models) {
    // ours 2 threads / ours 1 thread, per round, own process; run() and runSync()
    for (const [key, how] of [['ratio', 'run()'], ['ratioSync', 'runSync()']]) {
      const r = res.threads?.[m.id]?.[key];
      targets.push({
        what: `${m.id}: ours 2 threads / ours 1 thread <= 0.6, ${how} (own process, per-round median)`,
        value: r ? r.median : null,
        shown: r ? `${r.median.toFixed(3)}x (speedup ${(1 / r.median).toFixed(2)}x)` : 'not measured',
        met: r ? r.median <= 0.6 : null,
      });
    }
  }
  const v2 = res.models.find((m) => m.id === 'v2');
  if (v2) {
    targets.push({ what: 'v2 (bundled model): arena <= 2.5 MB (2,500,000 bytes)', value: v2.ours.arenaBytes, shown: `${v2.ours.arenaBytes.toLocaleString('en')} bytes`, met: v2.ours.arenaBytes <= ARENA_LIMIT });
  }
  for (const [k, w] of Object.entries(res.wasmSizes.ours)) {
    if (!w || k === 'debug') continue;
    targets.push({ what: `${w.file} <= 100 KB (100,000 bytes)`, value: w.bytes, shown: `${w.bytes.toLocaleString('en')} bytes`, met: w.bytes <= KB100 });
  }
  // "First result": the main job's (classify() of a JPEG, its decode included) and the model's
  // own output (run() on a prepared input), both with load()'s defaults.
  for (const [kind, what] of [['classify', 'first classify() result'], ['run', 'first run() result']]) {
    const st = res.startup?.[kind];
    targets.push({
      what: `import -> ${what}, bundled model <= 150 ms`,
      value: st?.median ?? null,
      shown: st?.median !== undefined ? `${ms(st.median)} ms` : 'not measured',
      met: st?.median !== undefined ? st.median <= 150 : null,
    });
  }
  return targets;
}

// ---------------------------------------------------------------------------------------
// Docs: SVG chart and PERFORMANCE.md

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = { ours: '#1f77b4', 'ours-relaxed': '#6baed6', 'ours-2t': '#17becf', 'tfjs-wasm': '#ff7f0e', 'ort-web': '#2ca02c', 'ort-node': '#9467bd', 'tfjs-cpu': '#8c8c8c' };

function renderSvg(res) {
  const width = 760;
  const labelW = 210;
  const barMax = width - labelW - 150;
  const barH = 20;
  const gap = 6;
  const rows = res.models.map((m) => RUNTIMES.filter((rt) => m.runtimes[rt.id]?.latency));
  // One scale for all models; the plain-JS TF.js backend (10-100x slower) is drawn off-scale.
  const onScale = res.models.flatMap((m) => RUNTIMES.filter((rt) => rt.id !== 'tfjs-cpu' && m.runtimes[rt.id]?.latency).map((rt) => m.runtimes[rt.id].latency.median));
  const scaleMax = Math.max(1, ...onScale) * 1.1;
  const step = scaleMax > 150 ? 50 : scaleMax > 60 ? 20 : 10;
  let y = 48;
  const parts = [];
  rows.forEach((rts, mi) => {
    const m = res.models[mi];
    parts.push(`<text x="10" y="${y}" class="h">${esc(m.name)}</text>`);
    y += 10;
    for (const rt of rts) {
      const r = m.runtimes[rt.id];
      const v = r.latency.median;
      const off = v > scaleMax;
      const w = Math.max(1, (Math.min(v, scaleMax) / scaleMax) * barMax);
      const ratio = r.ratio && rt.role === 'peer' ? `  (ours ${r.ratio.median.toFixed(2)}x)` : '';
      parts.push(
        `<text x="${labelW - 8}" y="${y + barH * 0.72}" text-anchor="end">${esc(rt.label)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[rt.id]}"${off ? ' opacity="0.55"' : ''}/>`,
        off ? `<text x="${(labelW + w - 4).toFixed(1)}" y="${y + barH * 0.72}" text-anchor="end" class="w">//</text>` : '',
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH * 0.72}">${ms(v)} ms${off ? ' (off scale)' : ''}${esc(ratio)}</text>`,
      );
      y += barH + gap;
    }
    y += 22;
  });
  const axisY = y - 10;
  const ticks = [];
  for (let t = 0; t <= scaleMax; t += step) {
    const x = labelW + (t / scaleMax) * barMax;
    ticks.push(`<line x1="${x.toFixed(1)}" y1="30" x2="${x.toFixed(1)}" y2="${axisY}" class="g"/>`, `<text x="${x.toFixed(1)}" y="${axisY + 14}" text-anchor="middle" class="s">${t}</text>`);
  }
  const height = axisY + 48;
  const cpu = res.machine.cpu;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<style>.h{font-weight:bold;font-size:13px}.s{font-size:11px;fill:#555}.w{fill:#fff;font-weight:bold}.g{stroke:#ddd;stroke-width:1}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" class="h">Median latency per inference, one thread, lower is better (ms)</text>
${ticks.join('\n')}
${parts.filter(Boolean).join('\n')}
<text x="${labelW + barMax / 2}" y="${axisY + 30}" text-anchor="middle" class="s">ms  |  ${esc(cpu)}, Node ${esc(res.machine.node)}, ${esc(res.date.slice(0, 10))}; ratios: median of per-round ours(simd)/peer</text>
</svg>
`;
}

const MANUAL_START = '<!-- manual -->';
const MANUAL_END = '<!-- /manual -->';
const MANUAL_PLACEHOLDER = `${MANUAL_START}
## Notes (hand-written, kept when this file is regenerated)

_Nothing yet: write analysis here; \`npm run bench:models\` keeps everything between these markers._
${MANUAL_END}`;

function renderMarkdown(res, manual) {
  const L = [];
  const v = res.versions;
  L.push('# Performance', '');
  L.push(
    '<!-- Generated by bench/models.mjs from bench/results/latest.json: edit only between the manual markers below. -->',
    '',
  );
  L.push(
    `End-to-end inference latency of mobilenet-wasm against TF.js's wasm backend (XNNPACK) and ONNX Runtime Web, ` +
      'same weights, same input, same Node process, one thread each, runtimes alternating in a rotating order every round.',
    '',
  );
  L.push('![median latency per runtime](performance.svg)', '');
  L.push('## Setup', '');
  L.push(`- Machine: ${res.machine.cpu}, ${res.machine.cores} cores (${res.machine.platform} ${res.machine.arch}), ${mb(res.machine.totalmem)} RAM; load average at start ${res.machine.loadavgStart.map((x) => x.toFixed(2)).join(' / ')}`);
  L.push(`- Node ${res.machine.node} (V8 ${res.machine.v8}), relaxed SIMD enabled with \`v8.setFlagsFromString('--experimental-wasm-relaxed-simd')\` at the top of the script`);
  L.push(
    `- Versions: mobilenet-wasm ${v['mobilenet-wasm']}, @tensorflow/tfjs-core ${v['@tensorflow/tfjs-core']}, ` +
      `@tensorflow/tfjs-backend-wasm ${v['@tensorflow/tfjs-backend-wasm']}, @tensorflow/tfjs-backend-cpu ${v['@tensorflow/tfjs-backend-cpu']}, ` +
      `onnxruntime-web ${v['onnxruntime-web']}, onnxruntime-node ${v['onnxruntime-node']}`,
  );
  L.push(`- Command: \`${res.command}\` (${res.date})`);
  L.push(
    `- Method: outputs checked against ours first (max |diff| <= ${res.settings.tolerance}); ${res.settings.warmup} warm-up runs per runtime, a 200 ms pause for V8's background tier-up, one untimed round; ` +
      `${res.settings.rounds} rounds, each running every runtime once in a rotating order (TF.js cpu: only the first ${res.settings.cpuRounds} rounds, ${res.settings.cpuWarmup} warm-up runs). ` +
      'Latency = wall time of one `run` call including input upload and output read-back, as a user sees it. The ratio column is the median (and p10-p90) of the per-round ratios ' +
      'ours (simd) / runtime: below 1 means ours is faster. This machine\'s speed swings by up to 40 % for seconds at a time, so the per-round ratios are the figures to trust, not the absolute milliseconds.',
  );
  L.push(
    '- Peers in their best configuration: TF.js with batch-norm folded and `tf.fused.conv2d` / `tf.fused.depthwiseConv2d` / `tf.fused.matMul` ' +
      `(bench/peers/tfjs.mjs, SIMD ${res.tfjsWasm?.simd ?? '?'}, threads ${res.tfjsWasm?.threads ?? '?'}); ONNX Runtime on the ONNX export of the same model ` +
      '(`exportOnnx`, batch-norm folded, default graph optimisations), wasm backend, `numThreads = 1`. onnxruntime-node is native code (AVX-512 here): a reference, not a peer. ' +
      'Ours runs with `load(src, { build, threads: 1 })`.',
  );
  L.push('');

  for (const m of res.models) {
    L.push(`## ${m.name}`, '');
    L.push(`${(m.macs / 1e6).toFixed(1)} M multiply-adds; input [${m.inputShape.join(', ')}] uniform in [${m.inputRange.join(', ')}] (seeded); ${m.outputLength} outputs (softmax).`, '');
    L.push('| runtime | median ms | min ms | p90 ms | ours (simd) / runtime | ours (relaxed) / runtime | setup ms | max \\|diff\\| vs ours |');
    L.push('|---|---:|---:|---:|---|---|---:|---:|');
    for (const rt of RUNTIMES) {
      const r = m.runtimes[rt.id];
      if (!r) continue;
      if (r.error) {
        L.push(`| ${rt.label} | failed: ${esc(r.error)} | | | | | | |`);
        continue;
      }
      const t = r.latency;
      const bold = rt.role === 'peer' ? '**' : '';
      L.push(
        `| ${rt.label} | ${ms(t.median)} | ${ms(t.min)} | ${ms(t.p90)} | ${rt.id === 'ours' ? '-' : `${bold}${rx(r.ratio)}${bold}`} | ` +
          `${rt.id === 'ours-relaxed' || !r.ratioRelaxed ? '-' : rx(r.ratioRelaxed)} | ${ms(r.setupMs)} | ${rt.id === 'ours' ? '(reference)' : r.maxAbsDiff.toExponential(1)} |`,
      );
    }
    L.push('');
    const cpu = m.runtimes['tfjs-cpu'];
    if (cpu?.latency) L.push(`TF.js cpu is context only: ${cpu.latency.n} timed runs.`, '');
  }

  L.push('## Targets', '');
  L.push('| target | measured | status |', '|---|---|---|');
  for (const t of res.targets) L.push(`| ${t.what} | ${t.shown} | ${t.met === null ? 'not measured' : t.met ? 'met' : '**not met**'} |`);
  L.push('');

  L.push('## Memory', '');
  L.push(
    'Peak resident set size of a separate child process per runtime that loads only that runtime and the model and runs it ' +
      `${res.settings.rssRuns} times (TF.js cpu: ${res.settings.rssRunsCpu}). "over node" subtracts a child that imports nothing ` +
      `(${res.memory?.baseline?.maxRssBytes ? mb(res.memory.baseline.maxRssBytes) : '?'}); "over source" subtracts a child that only imports mobilenet-wasm and builds or reads the model source, which every runtime's child also does. ` +
      'The peak is `VmHWM` from /proc/self/status: on Linux `process.resourceUsage().maxRSS` of a spawned child reads at least the RSS its parent had when it forked ' +
      '(the kernel carries the high-water mark across exec), which made every child look like the benchmark process itself.',
    '',
  );
  if (res.memory?.models) {
    L.push('| model | runtime | peak RSS | over node | over source |', '|---|---|---:|---:|---:|');
    for (const [mid, rows] of Object.entries(res.memory.models)) {
      const srcRss = rows.source?.maxRssBytes;
      for (const rt of ['source', ...RUNTIME_IDS]) {
        const r = rows[rt];
        if (!r) continue;
        const label = rt === 'source' ? 'model source only' : RUNTIMES.find((x) => x.id === rt).label;
        if (r.error) {
          L.push(`| ${mid} | ${label} | failed: ${esc(r.error)} | | |`);
          continue;
        }
        const base = res.memory.baseline?.maxRssBytes;
        L.push(`| ${mid} | ${label} | ${mb(r.maxRssBytes)} | ${base ? mb(r.maxRssBytes - base) : '-'} | ${rt !== 'source' && srcRss ? mb(r.maxRssBytes - srcRss) : '-'} |`);
      }
    }
    L.push('');
  } else {
    L.push('Not measured in this run.', '');
  }
  L.push('Our own accounting (`model.memory`):', '');
  L.push('| model | activation arena | packed weights (f32) | wasm linear memory |', '|---|---:|---:|---:|');
  for (const m of res.models) L.push(`| ${m.id} | ${m.ours.arenaBytes.toLocaleString('en')} B (${mb(m.ours.arenaBytes)}) | ${mb(m.ours.weightBytes)} | ${mb(m.ours.wasmBytes)} |`);
  L.push('');

  L.push('## Wasm binaries', '');
  L.push('| binary | bytes | gzip |', '|---|---:|---:|');
  for (const w of Object.values(res.wasmSizes.ours)) if (w) L.push(`| ours: ${w.file} | ${w.bytes.toLocaleString('en')} | ${w.gzipBytes.toLocaleString('en')} |`);
  for (const [k, w] of Object.entries(res.wasmSizes.peers)) {
    if (w) L.push(`| ${k}: ${w.file ?? '(file not identified)'} (the one it loaded) | ${w.bytes.toLocaleString('en')} | ${w.gzipBytes?.toLocaleString('en') ?? '-'} |`);
  }
  L.push('');

  if (res.threads) {
    L.push('## Threads', '');
    L.push(
      'Ours alone in a fresh process (`--threads-child`): the same model loaded with `threads: 1` and `threads: 2`, ' +
        `${res.settings.rounds} rounds of three runs in a rotating order (1 thread; 2 threads with \`await run()\`, which leaves the event loop free; 2 threads with \`runSync()\`, ` +
        'which blocks it and computes thread 0\'s share on the calling thread), ratio taken per round (2 threads / 1 thread; below 0.6 is the target). ' +
        'How much slower a 2-thread run is when the second core has been idle: `node bench/threads-latency.mjs` and the notes below. ' +
        'Results are bit-identical for every thread count (test/threads.test.ts). The "ours (simd, 2 threads)" rows in the tables above ' +
        'share the process with every peer and are context only.',
      '',
    );
    L.push('| model | 1 thread median ms | 2 threads run() median ms | ratio [p10-p90] | 2 threads runSync() median ms | ratio [p10-p90] |', '|---|---:|---:|---|---:|---|');
    for (const [m, r] of Object.entries(res.threads)) {
      if (r.error) L.push(`| ${m} | - | - | failed: ${r.error} | - | - |`);
      else L.push(`| ${m} | ${ms(r.one.median)} | ${ms(r.two.median)} | ${rx(r.ratio)} | ${r.twoSync ? ms(r.twoSync.median) : '-'} | ${r.ratioSync ? rx(r.ratioSync) : '-'} |`);
    }
    L.push('');
    if (res.peerThreads) {
      L.push(
        'Against the peers\' threaded builds where they run in Node: onnxruntime-web\'s threaded wasm with `numThreads = 2`, alone in a fresh process ' +
          '(its thread count is fixed per process, and its threads spin ~16 ms after each run), back to back. The ratio divides ours with 2 threads and `run()` ' +
          '(the table above, its own process) by it. TF.js\'s wasm backend has no threaded row: its threaded build refuses to start in Node, and it would use ' +
          'one thread on 2 cores (min(requested, cores / 2)).',
        '',
      );
      L.push('| model | onnxruntime-web 2 threads median ms [p10-p90] | ours 2 threads run() median ms | ours / ort-web (medians) | max \\|diff\\| vs ours |', '|---|---:|---:|---:|---:|');
      for (const [m, r] of Object.entries(res.peerThreads)) {
        const o = res.threads?.[m];
        if (r.error) L.push(`| ${m} | failed: ${r.error} | - | - | - |`);
        else L.push(`| ${m} | ${ms(r.ort.median)} [${ms(r.ort.p10)}-${ms(r.ort.p90)}] | ${o?.two ? ms(o.two.median) : '-'} | ${o?.two ? `${(o.two.median / r.ort.median).toFixed(2)}x` : '-'} | ${r.maxDiff.toExponential(1)} |`);
      }
      L.push('');
    }
  }

  L.push('## Startup', '');
  if (res.startup?.classify || res.startup?.run) {
    L.push(
      `Fresh \`node\` child processes without any flags (so \`load()\` picks the plain SIMD build on Node 20; build used: ${res.startup.build ?? '?'}, and its default thread count), ` +
        'timed from just before `await import(\'mobilenet-wasm\')` (dist/index.js) to the resolved first result with the bundled model; median of ' +
        `${res.settings.startupChildren} children.`,
      '',
    );
    L.push('| first result | threads | median total | import | load() | first call | since process start |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const k of ['classify', 'run', 'run-1thread']) {
      const s = res.startup[k];
      if (!s) continue;
      const what =
        k === 'classify' ? "`load()`, `classify('samples/cat-photo.jpg')` (incl. JPEG decode)"
        : k === 'run' ? '`load()`, `run(Float32Array)`'
        : '`load(undefined, { threads: 1 })`, `run(Float32Array)`';
      L.push(`| ${what} | ${s.threads ?? '?'} | ${ms(s.median)} ms | ${ms(s.importMs)} ms | ${ms(s.loadMs)} ms | ${ms(s.firstMs)} ms | ${ms(s.sinceProcessStartMs)} ms |`);
    }
    L.push('');
    if (res.peerStartup) L.push(`For comparison, in the benchmark process (modules already imported): ${res.peerStartup}.`, '');
  } else {
    L.push('Not measured in this run.', '');
  }

  L.push('## ARM', '');
  L.push(
    'ARM speed is not measured on this machine (x86-64). The ARM kernel variants exist and are tested for correctness everywhere ' +
      '(`load(src, { kernels: \'arm\' })`): 6x8 GEMM tiles, because AArch64 has 32 vector registers, and `f32x4.min` / `f32x4.max` clamps, ' +
      'which are single instructions on ARM. The x86 variants use 4x8 tiles (V8 has 15 usable xmm registers; 12-accumulator tiles spill) ' +
      'and `f32x4.pmin` / `f32x4.pmax` clamps (one instruction each on x86, where `min` / `max` expand to 7-8 instructions for NaN semantics).',
    '',
  );
  L.push(manual ?? MANUAL_PLACEHOLDER, '');
  return L.join('\n');
}

function writeDocs(res) {
  const docsDir = path.join(ROOT, 'docs');
  mkdirSync(docsDir, { recursive: true });
  const mdPath = path.join(docsDir, 'PERFORMANCE.md');
  let manual = null;
  if (existsSync(mdPath)) {
    const old = readFileSync(mdPath, 'utf8');
    const a = old.indexOf(MANUAL_START);
    const b = old.indexOf(MANUAL_END, a);
    if (a >= 0 && b > a) manual = old.slice(a, b + MANUAL_END.length);
  }
  writeFileSync(path.join(docsDir, 'performance.svg'), renderSvg(res));
  writeFileSync(mdPath, renderMarkdown(res, manual));
  console.log(`wrote docs/PERFORMANCE.md and docs/performance.svg`);
}

// ---------------------------------------------------------------------------------------
// Main

let gc = null;

async function main() {
  if (ARGV.includes('--docs-only')) {
    writeDocs(JSON.parse(readFileSync(path.join(ROOT, 'bench', 'results', 'latest.json'), 'utf8')));
    return;
  }
  try {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc');
  } catch {
    gc = null;
  }
  const started = now();
  const ids = RUNTIME_IDS.filter((id) => !skipName(id));
  const res = {
    date: new Date().toISOString(),
    command: ['node', path.relative(ROOT, SCRIPT), ...ARGV].join(' '),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      arch: process.arch,
      platform: process.platform,
      totalmem: os.totalmem(),
      node: process.versions.node,
      v8: process.versions.v8,
      loadavgStart: os.loadavg(),
      loadavgEnd: null,
    },
    versions: Object.fromEntries(
      ['mobilenet-wasm', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu', 'onnxruntime-web', 'onnxruntime-node'].map((p) => [
        p,
        p === 'mobilenet-wasm' ? JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version : pkgVersion(p),
      ]),
    ),
    settings: { ...OPTS, skip: [...OPTS.skip] },
    runtimes: RUNTIMES,
    loadErrors: {},
    models: [],
  };
  console.log(`bench/models: ${res.machine.cpu}, ${res.machine.cores} cores, Node ${res.machine.node}; ` + `rounds ${OPTS.rounds}, models ${OPTS.models.join(',')}, runtimes ${ids.join(', ')}`);

  await importPeers(ids);
  res.loadErrors = { ...modErrors };
  for (const [k, e] of Object.entries(modErrors)) console.log(`  peer module ${k} failed to load: ${e}`);
  res.tfjsWasm = mods.tfWasm?.info ?? null;
  if (res.tfjsWasm) console.log(`  TF.js wasm: simd ${res.tfjsWasm.simd}, threads ${res.tfjsWasm.threads}`);

  for (const m of OPTS.models) res.models.push(await benchModel(m, ids));

  res.wasmSizes = {
    ours: { simd: ourWasm('mobilenet.wasm'), relaxed: ourWasm('mobilenet-relaxed.wasm') },
    peers: {
      'tfjs-wasm': loadedWasm('tfjs-wasm', '@tensorflow/tfjs-backend-wasm'),
      'ort-web': loadedWasm('ort-web', 'onnxruntime-web'),
    },
  };
  console.log('\nwasm binaries:');
  for (const w of Object.values(res.wasmSizes.ours)) if (w) console.log(`  ours ${pad(w.file, 50)} ${lpad(kb(w.bytes), 12)} (gzip ${kb(w.gzipBytes)})`);
  for (const [k, w] of Object.entries(res.wasmSizes.peers)) if (w) console.log(`  ${pad(k, 9)} ${pad(w.file ?? '?', 45)} ${lpad(kb(w.bytes), 12)}${w.gzipBytes ? ` (gzip ${kb(w.gzipBytes)})` : ''}`);

  // Memory, one child per runtime and model, run one after another (never beside the timing).
  if (!OPTS.skip.has('rss')) {
    console.log('\npeak RSS (separate child per runtime):');
    const baseline = await runChild(['--rss', 'none', 'v2']);
    res.memory = { baseline, models: {} };
    console.log(`  node alone${' '.repeat(24)}${lpad(baseline.maxRssBytes ? mb(baseline.maxRssBytes) : baseline.error, 10)}`);
    for (const m of OPTS.models) {
      res.memory.models[m] = {};
      for (const id of ['source', ...ids]) {
        const r = await runChild(['--rss', id, m]);
        res.memory.models[m][id] = r;
        const over = r.maxRssBytes && baseline.maxRssBytes ? `  (+${mb(r.maxRssBytes - baseline.maxRssBytes)} over node)` : '';
        console.log(`  ${m} ${pad(id, 30)} ${lpad(r.maxRssBytes ? mb(r.maxRssBytes) : 'FAILED', 10)}${over}${r.error ? `  ${r.error}` : ''}`);
      }
    }
  }

  if (!OPTS.skip.has('threads')) {
    console.log('\nthreads: ours alone in a fresh process, 1 vs 2 threads alternating (per-round ratio):');
    res.threads = {};
    for (const m of OPTS.models) {
      const r = await runChild(['--threads-child', m], 300_000);
      res.threads[m] = r;
      if (r.error) console.log(`  ${m}: ${r.error}`);
      else console.log(`  ${m}: 1 thread ${ms(r.one.median)} ms, 2 threads run() ${ms(r.two.median)} ms, ratio ${r.ratio.median.toFixed(3)}x [${r.ratio.p10.toFixed(2)}-${r.ratio.p90.toFixed(2)}]; runSync() ${ms(r.twoSync.median)} ms, ratio ${r.ratioSync.median.toFixed(3)}x [${r.ratioSync.p10.toFixed(2)}-${r.ratioSync.p90.toFixed(2)}]`);
    }
  }

  if (!OPTS.skip.has('threads') && !OPTS.skip.has('ort-web')) {
    console.log('\nthreads: onnxruntime-web with numThreads = 2, alone in a fresh process:');
    res.peerThreads = {};
    for (const m of OPTS.models) {
      const r = await runChild(['--peer-threads-child', m], 300_000);
      res.peerThreads[m] = r;
      const o = res.threads?.[m];
      if (r.error) console.log(`  ${m}: ${r.error}`);
      else console.log(`  ${m}: ort-web 2 threads ${ms(r.ort.median)} ms (max |diff| vs ours ${r.maxDiff.toExponential(1)})${o?.two ? `; ours 2 threads run() / ort-web 2 threads ${(o.two.median / r.ort.median).toFixed(2)}x` : ''}`);
    }
  }

  if (!OPTS.skip.has('startup')) {
    console.log('\nstartup, fresh child, bundled model (median of', OPTS.startupChildren, 'children):');
    res.startup = {};
    // 'classify' and 'run' with load()'s defaults (what a user gets), 'run-1thread' with threads: 1.
    for (const kind of ['classify', 'run', 'run-1thread']) {
      const runs = [];
      for (let i = 0; i < OPTS.startupChildren; i++) {
        const args = kind === 'run-1thread' ? ['--startup-child', 'run', '1'] : ['--startup-child', kind];
        const r = await runChild(args, 60_000);
        if (r.error) {
          console.log(`  ${kind}: ${r.error}`);
          break;
        }
        runs.push(r);
      }
      if (runs.length === 0) continue;
      const med = (k) => quantile(runs.map((r) => r[k]), 0.5);
      res.startup[kind] = {
        median: med('totalMs'),
        importMs: med('importMs'),
        loadMs: med('loadMs'),
        firstMs: med('firstMs'),
        sinceProcessStartMs: med('sinceProcessStartMs'),
        runs,
      };
      res.startup[kind].threads = runs[0].threads;
      if (kind !== 'run-1thread') res.startup.build = runs[0].build;
      const s = res.startup[kind];
      console.log(`  import -> first ${pad(kind + '()', 14)} ${lpad(ms(s.median), 5)} ms  (${s.threads} thread${s.threads > 1 ? 's' : ''}; import ${ms(s.importMs)}, load ${ms(s.loadMs)}, first call ${ms(s.firstMs)}; ${ms(s.sinceProcessStartMs)} ms since process start)`);
    }
  }
  const setups = res.models
    .filter((m) => m.id === 'v2')
    .flatMap((m) => ['tfjs-wasm', 'ort-web'].filter((k) => m.runtimes[k]?.setupMs !== undefined).map((k) => `${k} setup + first run ${ms(m.runtimes[k].setupMs + m.runtimes[k].firstRunMs)} ms`));
  if (setups.length) res.peerStartup = setups.join(', ');

  res.machine.loadavgEnd = os.loadavg();
  res.targets = evaluateTargets(res);
  res.elapsedSeconds = (now() - started) / 1000;

  console.log('\ntargets:');
  for (const t of res.targets) console.log(`  ${t.met === null ? '  ?  ' : t.met ? ' met ' : ' NOT '} ${pad(t.what, 62)} ${t.shown}`);

  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = res.date.replace(/[:.]/g, '-');
  const file = path.join(dir, `models-${stamp}${QUICK ? '-quick' : ''}.json`);
  writeFileSync(file, JSON.stringify(res, null, 1) + '\n');
  console.log(`\nwrote ${path.relative(ROOT, file)}`);
  if (QUICK && !ARGV.includes('--write-docs')) {
    console.log('(--quick: bench/results/latest.json and docs/ left alone; add --write-docs to update them)');
  } else {
    writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(res, null, 1) + '\n');
    writeDocs(res);
  }
  console.log(`done in ${res.elapsedSeconds.toFixed(0)} s`);
}

// Exit explicitly: worker threads (ours, onnxruntime-node's pools) must not keep a finished
// benchmark or child alive.
if (STARTUP_CHILD) {
  const i = ARGV.indexOf('--startup-child');
  await startupChild(ARGV[i + 1], ARGV[i + 2]);
} else if (ARGV.includes('--threads-child')) {
  await threadsChild(ARGV[ARGV.indexOf('--threads-child') + 1]);
} else if (ARGV.includes('--peer-threads-child')) {
  await peerThreadsChild(ARGV[ARGV.indexOf('--peer-threads-child') + 1]);
} else if (ARGV.includes('--rss')) {
  const i = ARGV.indexOf('--rss');
  await rssChild(ARGV[i + 1], ARGV[i + 2] ?? 'v2');
} else {
  await main();
}
process.exit(0);
