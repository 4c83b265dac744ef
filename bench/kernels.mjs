// Kernel microbenchmarks on the real MobileNetV1/V2 1.0 224 layer shapes (bench/shapes.json),
// every SIMD variant (x86, arm) in both builds (plain SIMD, relaxed SIMD), with benchmark.js.
//
//   npm run bench                       full run (~3.5 min), writes bench/results/
//   node bench/kernels.mjs --quick      short samples, same rows (a smoke test, ~1 min)
//   node bench/kernels.mjs --filter dw  only rows whose group/shape/users/variant contain "dw"
//   node bench/kernels.mjs --budget 120 target seconds of timing (default 200)
//   node bench/kernels.mjs --clock cpu  time with process CPU time (default auto: cpu when loaded)
//
// GFLOP/s count a multiply-add as 2 flops. "%pk" is the share of the peak probe (peak_madd_f32:
// 12 independent f32x4 multiply-add chains, no memory traffic) measured in the same run, in the
// same build: plain-SIMD rows against the plain probe, relaxed rows against the relaxed probe.
// See bench/README.md for how to read the table.

import v8 from 'node:v8';
// Before anything is compiled: lets Node 20 validate the relaxed-SIMD build.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const { readFileSync, writeFileSync, mkdirSync } = await import('node:fs');
const os = await import('node:os');
const { execFileSync } = await import('node:child_process');
const { fileURLToPath } = await import('node:url');
const { default: BenchmarkWall } = await import('benchmark');
const { instantiateKernels } = await import('../dist/wasm.js');
const { mulberry32 } = await import('../dist/builders.js');

// ---------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const opt = { quick: false, filter: '', budget: 0, out: true, clock: 'auto' };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') opt.quick = true;
  else if (a === '--filter') opt.filter = String(argv[++i] ?? '').toLowerCase();
  else if (a.startsWith('--filter=')) opt.filter = a.slice(9).toLowerCase();
  else if (a === '--budget') opt.budget = Number(argv[++i]);
  else if (a.startsWith('--budget=')) opt.budget = Number(a.slice(9));
  else if (a === '--no-write') opt.out = false;
  else if (a === '--cpu-clock') opt.clock = 'cpu';
  else if (a === '--clock') opt.clock = String(argv[++i]);
  else if (a.startsWith('--clock=')) opt.clock = a.slice(8);
  else if (a === '--help' || a === '-h') {
    console.log('usage: node bench/kernels.mjs [--quick] [--filter <substring>] [--budget <seconds>] [--clock auto|wall|cpu] [--no-write]');
    process.exit(0);
  } else {
    console.error(`unknown argument ${a} (try --help)`);
    process.exit(2);
  }
}
if (!(opt.budget > 0)) opt.budget = opt.quick ? 45 : 200;
if (!['auto', 'wall', 'cpu'].includes(opt.clock)) {
  console.error(`--clock must be auto, wall or cpu, got ${opt.clock}`);
  process.exit(2);
}
// auto: the wall clock on a quiet machine, the CPU clock when other processes keep at least
// half the cores busy (then wall-clock means mostly measure the other processes).
const loadAtStart = os.loadavg();
if (opt.clock === 'auto') opt.clock = loadAtStart[0] >= os.cpus().length / 2 ? 'cpu' : 'wall';

/**
 * CPU clock: benchmark.js times with process CPU time (user + system, all threads, 1 us
 * resolution) instead of wall time, so time the CPU spends on other processes is not counted.
 * For a shared, loaded machine; the default is benchmark.js's usual wall clock.
 */
function cpuHrtime(prev) {
  const u = process.cpuUsage();
  const us = u.user + u.system;
  let sec = Math.floor(us / 1e6), ns = (us % 1e6) * 1e3;
  if (prev) {
    sec -= prev[0];
    ns -= prev[1];
    if (ns < 0) { sec--; ns += 1e9; }
  }
  return [sec, ns];
}
const Benchmark = opt.clock === 'cpu' ? BenchmarkWall.runInContext({ process: { hrtime: cpuHrtime } }) : BenchmarkWall;

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const shapes = JSON.parse(readFileSync(here('./shapes.json'), 'utf8'));

// ---------------------------------------------------------------------------------------
// Builds: one instance each, with a read-only pool of random floats that every benchmark's
// inputs and weights point into (filled once), and a bump allocator above it for outputs.

const BUILDS = [
  { id: 'simd', title: 'plain SIMD' },
  { id: 'relaxed', title: 'relaxed SIMD' },
];

const POOL_FLOATS = 4 << 20; // 16 MB: more than any workload's inputs + weights (checked)
const ALIGN = 64;
const alignUp = (n) => Math.ceil(n / ALIGN) * ALIGN;

async function openBuild(b) {
  let inst;
  try {
    inst = await instantiateKernels(b.id);
  } catch (e) {
    return { ...b, available: false, why: e.message };
  }
  const k = inst.exports;
  const base = alignUp(k.heap_base());
  inst.ensureMemory(base + POOL_FLOATS * 4 + ALIGN);
  const pool = new Float32Array(k.memory.buffer, base, POOL_FLOATS);
  const rand = mulberry32(12345);
  for (let i = 0; i < pool.length; i++) pool[i] = 2 * rand() - 1;
  const heapStart = alignUp(base + POOL_FLOATS * 4);
  const state = { poolAt: base, poolUsed: 0, top: heapStart };
  const heap = {
    /** Resets both allocators (call before laying out one workload). */
    reset() {
      state.poolUsed = 0;
      state.top = heapStart;
    },
    /** Starts handing out the same inputs again (outputs keep their own memory). */
    rewindInputs() {
      state.poolUsed = 0;
    },
    /** A read-only input of n floats: random values in [-1, 1]. */
    input(n) {
      const at = state.poolAt + state.poolUsed * 4;
      state.poolUsed += alignUp(n * 4) / 4;
      if (state.poolUsed > POOL_FLOATS) throw new Error(`bench pool too small (${state.poolUsed} floats)`);
      return at;
    },
    /** Writable memory of n floats (outputs, scratch); contents undefined. */
    output(n) {
      const at = state.top;
      state.top = alignUp(state.top + n * 4 + ALIGN); // a gap between buffers
      inst.ensureMemory(state.top);
      return at;
    },
    floats(p, n) {
      return new Float32Array(k.memory.buffer, p, n);
    },
  };
  // The calls below are written for these signatures: fail loudly if the kernels changed.
  const ARITY = {
    gemm_4x8_f32_x86: 10, gemm_6x8_f32_arm: 10, gemm_f32_scalar: 10,
    dwconv3x3_nhwc_f32_x86: 14, dwconv3x3_nhwc_f32_arm: 14, dwconv3x3_nhwc_f32_scalar: 14,
    conv3x3_nhwc_f32_x86: 15, conv3x3_nhwc_f32_arm: 15, conv3x3_nhwc_f32_scalar: 15, conv3x3_scratch_floats: 2,
    ibottleneck3x3_nhwc_f32_x86: 25, ibottleneck3x3_nhwc_f32_arm: 25, ibottleneck3x3_nhwc_f32_scalar: 25,
    ibottleneck_scratch_floats: 6, clamp_f32: 5, clamp_f32_scalar: 5, add_f32: 4, add_f32_scalar: 4,
    global_avgpool_nhwc_f32: 4, global_avgpool_nhwc_f32_scalar: 4, softmax_f32: 3, peak_madd_f32: 3,
  };
  for (const [name, n] of Object.entries(ARITY)) {
    if (typeof k[name] !== 'function' || k[name].length !== n) {
      throw new Error(`${b.id} build: export ${name} ${typeof k[name] !== 'function' ? 'is missing' : `takes ${k[name].length} arguments, the bench passes ${n}`}: update bench/kernels.mjs`);
    }
  }
  return { ...b, available: true, k, heap, moduleBytes: inst.moduleBytes, relaxed: k.build_is_relaxed() === 1 };
}

// ---------------------------------------------------------------------------------------
// Workloads from shapes.json: one per distinct shape, with the layers that use it.

const RANGE = { relu6: [0, 6], relu: [0, Infinity], linear: [-Infinity, Infinity] };
const range = (act) => RANGE[act ?? 'linear'];

function shortName(model, layer) {
  if (model.startsWith('mobilenet_v1')) {
    return 'v1 ' + layer
      .replace(/^conv_dw_(\d+)$/, 'dw$1').replace(/^conv_pw_(\d+)$/, 'pw$1')
      .replace('global_average_pooling2d', 'pool').replace('predictions', 'softmax');
  }
  return 'v2 ' + layer
    .replace(/^expanded_conv_/, 'b0_').replace(/^block_(\d+)_/, 'b$1_')
    .replace(/_expand$/, '.exp').replace(/_depthwise$/, '.dw').replace(/_project$/, '.proj').replace(/_add$/, '.add')
    .replace('global_average_pooling2d', 'pool').replace('predictions', 'softmax');
}
const blockName = (model, step) =>
  model.startsWith('mobilenet_v1') ? `v1 blk${step.layers[0].replace(/\D/g, '')}` : shortName(model, step.layers[0]).replace(/\..*$/, '');

const workloads = [];
const byKey = new Map();
function workload(group, key, make, use) {
  let w = byKey.get(`${group}|${key}`);
  if (!w) {
    w = { group, key, uses: [], ...make() };
    byKey.set(`${group}|${key}`, w);
    workloads.push(w);
  }
  w.uses.push(use);
  return w;
}

const gemmPackedFloats = (K, N) => Math.ceil(N / 8) * (K + 1) * 8;
const GEMM = { x86: 'gemm_4x8_f32_x86', arm: 'gemm_6x8_f32_arm', scalar: 'gemm_f32_scalar' };

/** A 1x1 convolution / dense layer: out[M x N] = clamp(a[M x K] W + b) (+ res). */
function gemmWorkload(M, K, N, act, residual, use) {
  return workload('gemm', `M${M} K${K} N${N}${residual ? ' +res' : ''}`, () => ({
    label: `M${M} K${K} N${N}${residual ? ' +res' : ''}`,
    macs: M * K * N,
    variants: ['x86', 'arm'],
    setup(h, k, v) {
      const a = h.input(M * K), w = h.input(gemmPackedFloats(K, N));
      const res = residual ? h.input(M * N) : 0;
      const out = h.output(M * N);
      const [lo, hi] = range(act);
      const f = k[GEMM[v]];
      return { fn: () => f(M, K, N, a, w, out, lo, hi, res, N) };
    },
  }), use);
}

const DW = { x86: 'dwconv3x3_nhwc_f32_x86', arm: 'dwconv3x3_nhwc_f32_arm', scalar: 'dwconv3x3_nhwc_f32_scalar' };
function dwWorkload(H, W, C, stride, padTop, padLeft, outH, outW, act, use) {
  return workload('dw', `${H}x${W}x${C} s${stride}`, () => ({
    label: `${H}x${W}x${C} s${stride}`,
    macs: outH * outW * C * 9,
    bytes: (H * W * C + outH * outW * C + 10 * C) * 4,
    variants: ['x86', 'arm'],
    setup(h, k, v) {
      const inp = h.input(H * W * C), w = h.input(10 * C);
      const out = h.output(outH * outW * C), zero = h.output(W * C);
      const [lo, hi] = range(act);
      const f = k[DW[v]];
      return { fn: () => f(inp, H, W, C, w, out, outH, outW, stride, padTop, padLeft, lo, hi, zero) };
    },
  }), use);
}

const CONV = { x86: 'conv3x3_nhwc_f32_x86', arm: 'conv3x3_nhwc_f32_arm', scalar: 'conv3x3_nhwc_f32_scalar' };
function convWorkload(s, use) {
  const { H, W, Cin, Cout, stride, padTop, padLeft, outH, outW, act } = s;
  return workload('conv', `${H}x${W}x${Cin}->${Cout} s${stride}`, () => ({
    label: `${H}x${W}x${Cin} -> ${Cout} s${stride}`,
    macs: outH * outW * 9 * Cin * Cout,
    variants: ['x86', 'arm', 'scalar'],
    setup(h, k, v) {
      const inp = h.input(H * W * Cin), w = h.input(gemmPackedFloats(9 * Cin, Cout));
      const out = h.output(outH * outW * Cout), scratch = h.output(k.conv3x3_scratch_floats(Cin, outW));
      const [lo, hi] = range(act);
      const f = k[CONV[v]];
      return { fn: () => f(inp, H, W, Cin, w, Cout, out, outH, outW, stride, padTop, padLeft, lo, hi, scratch) };
    },
  }), use);
}

const BLOCK = { x86: 'ibottleneck3x3_nhwc_f32_x86', arm: 'ibottleneck3x3_nhwc_f32_arm', scalar: 'ibottleneck3x3_nhwc_f32_scalar' };
/** The fused block (plan's S and cap), and the same work unfused: whole-tensor GEMM, depthwise, GEMM. */
function blockWorkload(s, use) {
  const { H, W, Cin, expand, Cexp, Cout, stride, padTop, padLeft, outH, outW, residual, S, cap } = s;
  const key = `${H}x${W}x${Cin}${expand ? `>${Cexp}` : ''} s${stride} >${Cout}${residual ? ' +res' : ''} S${S} cap${cap}`;
  const [elo, ehi] = range(s.act.expand);
  const [dlo, dhi] = range(s.act.depthwise);
  const [plo, phi] = range(s.act.project);
  const unfusedFloats = (expand ? H * W * Cexp : 0) + W * Cexp + outH * outW * Cexp;
  return workload('block', key, () => ({
    label: `${H}x${W}x${Cin}${expand ? ` e${Cexp}` : ''} s${stride} ->${Cout}${residual ? ' +r' : ''} S${S}/${cap}`,
    macs: s.macs,
    variants: ['x86 fused', 'x86 unfused', 'arm fused'],
    // Working memory beyond the block's input and output.
    memFused: null, // filled from the module (ibottleneck_scratch_floats)
    memUnfused: unfusedFloats * 4,
    setup(h, k, variant) {
      const [v, mode] = variant.split(' ');
      const inp = h.input(H * W * Cin);
      const ew = expand ? h.input(gemmPackedFloats(Cin, Cexp)) : 0;
      const dw = h.input(10 * Cexp), pw = h.input(gemmPackedFloats(Cexp, Cout));
      const out = h.output(outH * outW * Cout);
      const scratchFloats = k.ibottleneck_scratch_floats(W, Cexp, outW, expand ? 1 : 0, S, cap);
      this.memFused = scratchFloats * 4;
      const res = residual ? inp : 0; // the residual is the block's input (a pointer; 0 = none)
      if (mode === 'fused') {
        const scratch = h.output(scratchFloats);
        const f = k[BLOCK[v]];
        return {
          fn: () => f(inp, H, W, Cin, ew, Cexp, elo, ehi, dw, stride, padTop, padLeft, dlo, dhi,
            pw, Cout, plo, phi, res, out, outH, outW, S, cap, scratch),
          out, outFloats: outH * outW * Cout,
        };
      }
      const exp = expand ? h.output(H * W * Cexp) : inp;
      const zero = h.output(W * Cexp), dwOut = h.output(outH * outW * Cexp);
      const g = k[GEMM[v]], d = k[DW[v]];
      const resPtr = residual ? inp : 0;
      return {
        fn: expand
          ? () => {
            g(H * W, Cin, Cexp, inp, ew, exp, elo, ehi, 0, Cexp);
            d(exp, H, W, Cexp, dw, dwOut, outH, outW, stride, padTop, padLeft, dlo, dhi, zero);
            g(outH * outW, Cexp, Cout, dwOut, pw, out, plo, phi, resPtr, Cout);
          }
          : () => {
            d(inp, H, W, Cexp, dw, dwOut, outH, outW, stride, padTop, padLeft, dlo, dhi, zero);
            g(outH * outW, Cexp, Cout, dwOut, pw, out, plo, phi, resPtr, Cout);
          },
        out, outFloats: outH * outW * Cout,
      };
    },
  }), use);
}

function elementwise(group, key, label, bytes, variants, makeFn, use) {
  return workload(group, key, () => ({ label, macs: 0, bytes, variants, setup: makeFn }), use);
}

// The per-layer steps, in model order.
const stepWork = new Map(); // model id -> [{ step, workload, variant map }]
for (const m of shapes.models) {
  const list = [];
  for (const s of m.steps) {
    const use = s.op === 'ibottleneck' ? blockName(m.id, s) : shortName(m.id, s.layers[0]);
    if (s.op === 'conv3x3') list.push({ s, w: convWorkload(s, use) });
    else if (s.op === 'gemm') {
      list.push({ s, w: gemmWorkload(s.M, s.K, s.N, s.act, s.residual, use) });
    } else if (s.op === 'ibottleneck') {
      const names = s.layers.map((l) => shortName(m.id, l));
      if (s.expand) gemmWorkload(s.H * s.W, s.Cin, s.Cexp, s.act.expand, false, names.shift());
      dwWorkload(s.H, s.W, s.Cexp, s.stride, s.padTop, s.padLeft, s.outH, s.outW, s.act.depthwise, names.shift());
      gemmWorkload(s.outH * s.outW, s.Cexp, s.Cout, s.act.project, s.residual, names.shift());
      list.push({ s, w: blockWorkload(s, use) });
    } else if (s.op === 'avgpool') {
      const { HW, C } = s;
      list.push({
        s, w: elementwise('avgpool', `${HW}x${C}`, `HW${HW} C${C}`, (HW * C + C) * 4, ['simd', 'scalar'], (h, k, v) => {
          const inp = h.input(HW * C), out = h.output(C);
          const f = v === 'scalar' ? k.global_avgpool_nhwc_f32_scalar : k.global_avgpool_nhwc_f32;
          return { fn: () => f(inp, HW, C, out) };
        }, use),
      });
    } else if (s.op === 'softmax') {
      const { n } = s;
      list.push({
        s, w: elementwise('softmax', `${n}`, `n${n}`, 8 * n, ['simd'], (h, k) => {
          const x = h.input(n), out = h.output(n);
          return { fn: () => k.softmax_f32(x, n, out) };
        }, use),
      });
    } else throw new Error(`no workload for ${s.op}`);
  }
  stepWork.set(m.id, list);
}

// Elementwise ops on a few real activation sizes (the model runs fuse them into the GEMMs,
// but the kernels exist for graphs the planner cannot fuse).
for (const [n, use] of [[112 * 112 * 32, 'v2 b0 in'], [56 * 56 * 24, 'v2 b2 res'], [14 * 14 * 64, 'v2 b7 res']]) {
  const variants = n === 56 * 56 * 24 ? ['simd', 'scalar'] : ['simd'];
  elementwise('clamp', `${n}`, `n${n} relu6`, 8 * n, variants, (h, k, v) => {
    const x = h.input(n), out = h.output(n);
    const f = v === 'scalar' ? k.clamp_f32_scalar : k.clamp_f32;
    return { fn: () => f(x, n, 0, 6, out) };
  }, use);
  elementwise('add', `${n}`, `n${n}`, 12 * n, variants, (h, k, v) => {
    const a = h.input(n), b = h.input(n), out = h.output(n);
    const f = v === 'scalar' ? k.add_f32_scalar : k.add_f32;
    return { fn: () => f(a, b, n, out) };
  }, use);
}

// Scalar twins only where they finish in reasonable time (they run ~10-20x slower).
for (const key of ['M3136 K24 N144', 'M196 K384 N64 +res', 'M49 K960 N160 +res']) byKey.get(`gemm|${key}`)?.variants.push('scalar');
for (const key of ['56x56x144 s1']) byKey.get(`dw|${key}`)?.variants.push('scalar');
for (const w of workloads) if (w.group === 'block' && w.key.startsWith('7x7x160>960 s1 >160')) w.variants.push('scalar fused');

const GROUP_ORDER = ['conv', 'gemm', 'dw', 'block', 'clamp', 'add', 'avgpool', 'softmax'];
const GROUP_TITLE = {
  conv: 'stem: full 3x3 convolution (im2col rows + GEMM)',
  gemm: 'pointwise 1x1 convolution / dense = packed GEMM (M pixels x K in -> N out)',
  dw: 'depthwise 3x3, whole tensor (NHWC, C channels, stride s)',
  block: 'inverted-residual block: fused (strips of S rows, window of cap rows) vs unfused (expand GEMM -> depthwise -> project GEMM on whole tensors)',
  clamp: 'clamp (ReLU6), elementwise',
  add: 'add, elementwise',
  avgpool: 'global average pool',
  softmax: 'softmax',
};
workloads.sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group));

// ---------------------------------------------------------------------------------------
// Benchmarks

const builds = [];
for (const b of BUILDS) builds.push(await openBuild(b));
const live = builds.filter((b) => b.available);
for (const b of builds) if (!b.available) console.error(`note: ${b.title} build unavailable: ${b.why}`);
if (!live.length) throw new Error('no wasm build could be instantiated (run `npm run build`)');

const rowMatches = (w, v) =>
  !opt.filter || `${w.group} ${w.label} ${w.key} ${w.uses.join(' ')} ${v}`.toLowerCase().includes(opt.filter);

// Rows: (workload, variant). Scalar rows run in the plain build only (no SIMD in them).
const rows = [];
for (const w of workloads) {
  for (const v of w.variants) {
    if (!rowMatches(w, v)) continue;
    const row = { w, variant: v, results: {} };
    row.builds = v.startsWith('scalar') ? live.filter((b) => b.id === 'simd') : live;
    if (!row.builds.length) continue;
    rows.push(row);
  }
}

const PEAK_ITERS = 200_000; // 19.2 MFLOP per call: ~0.4 ms at the V8 ceilings
let nBench = 0; // set once the suite is built
// maxTime is set per benchmark from the time left: benchmark.js stops once it has minSamples
// and maxTime has passed, but a benchmark's wall time is some multiple of maxTime (sample
// overshoot, cloning, warm-up), so that multiple is learned as the run goes.
const minSamples = opt.quick ? 5 : 10;
const warmMs = opt.quick ? 10 : 40;
const MAXTIME_RANGE = opt.quick ? [0.02, 0.2] : [0.05, 1.5];
const pacing = { ratio: 3, used: [] };
function nextMaxTime() {
  const left = opt.budget - (performance.now() - startAll) / 1e3;
  const remaining = nBench - done;
  const target = Math.max(0, left / Math.max(1, remaining));
  return Math.min(MAXTIME_RANGE[1], Math.max(MAXTIME_RANGE[0], target / pacing.ratio));
}
/** Shorter samples give a better best sample on a busy machine; >= 4 ms keeps timer overhead negligible. */
const minTimeFor = (maxTime) => Math.min(0.05, Math.max(0.004, maxTime / 25));

/**
 * Calls fn until it has run `ms` milliseconds and at least 10 times: V8 runs Liftoff code first
 * and swaps in TurboFan code (compiled in the background) only after a function has used its
 * tier-up budget; a small GEMM runs ~4x slower until then.
 */
function warm(fn, ms) {
  const t0 = performance.now();
  let n = 0;
  while (n < 10 || performance.now() - t0 < ms) {
    fn();
    n++;
  }
  return n;
}

const suite = new Benchmark.Suite('kernels');
let done = 0;
let startAll = performance.now();
function addBench(name, setup, onDone) {
  const slot = { fn: () => {}, t0: 0 };
  suite.add(name, function () { slot.fn(); }, {
    minSamples,
    onStart() {
      slot.t0 = performance.now();
      this.maxTime = nextMaxTime();
      this.minTime = minTimeFor(this.maxTime);
      Object.assign(slot, setup());
      warm(slot.fn, warmMs);
    },
    onComplete() {
      const st = this.stats;
      const wall = (performance.now() - slot.t0) / 1e3;
      pacing.ratio = Math.min(10, Math.max(1, 0.7 * pacing.ratio + 0.3 * (wall / this.maxTime)));
      pacing.used.push(this.maxTime);
      onDone({
        maxTimeMs: this.maxTime * 1e3,
        minTimeMs: this.minTime * 1e3,
        meanMs: st.mean * 1e3,
        rme: st.rme,
        bestMs: Math.min(...st.sample) * 1e3,
        samples: st.sample.length,
        calls: this.count * st.sample.length,
        error: this.error ? String(this.error.message ?? this.error) : undefined,
      });
      done++;
      const secs = ((performance.now() - startAll) / 1e3).toFixed(0);
      process.stderr.write(`[${String(done).padStart(3)}/${nBench} ${secs.padStart(3)}s] ${name}: ${(st.mean * 1e3).toPrecision(4)} ms ±${st.rme.toFixed(1)}%\n`);
    },
  });
}

// The peak probe, per build: first, then again after every quarter of the rows and at the end,
// because the load of a shared machine drifts. The reference is the least disturbed run: the
// highest mean and the highest best sample over these runs.
const peak = {};
const PEAK_FLOPS = PEAK_ITERS * 12 * 4 * 2;
const PEAK_RUNS = 5;
function addPeak() {
  for (const b of live) {
    addBench(`peak_madd_f32 ${PEAK_ITERS} iters [${b.id}]`, () => {
      b.heap.reset();
      const out = b.heap.output(4);
      return { fn: () => b.k.peak_madd_f32(PEAK_ITERS, 1.5, out) };
    }, (r) => {
      const run = { ...r, gflops: PEAK_FLOPS / (r.meanMs * 1e6), bestGflops: PEAK_FLOPS / (r.bestMs * 1e6) };
      const p = (peak[b.id] ??= { iters: PEAK_ITERS, flops: PEAK_FLOPS, runs: [] });
      p.runs.push(run);
      const top = p.runs.reduce((a, x) => (x.gflops > a.gflops ? x : a));
      Object.assign(p, { meanMs: top.meanMs, rme: top.rme, gflops: top.gflops, bestGflops: Math.max(...p.runs.map((x) => x.bestGflops)) });
    });
  }
}

// Then every row, builds interleaved so load drift hits both columns alike.
addPeak();
rows.forEach((row, i) => {
  for (const b of row.builds) {
    const { w, variant } = row;
    addBench(`${w.group} ${w.label} ${variant} [${b.id}]`, () => {
      b.heap.reset();
      const v = variant.startsWith('scalar fused') ? 'scalar fused' : variant;
      return w.setup.call(w, b.heap, b.k, v);
    }, (r) => { row.results[b.id] = r; });
  }
  const q = Math.ceil(rows.length / (PEAK_RUNS - 1));
  if ((i + 1) % q === 0 || i === rows.length - 1) addPeak();
});

nBench = suite.length;

// A correctness check of the pairs compared (fused vs unfused must agree), before timing.
const checks = [];
{
  const b = live[0];
  for (const w of workloads) {
    if (w.group !== 'block' || !rows.some((r) => r.w === w)) continue;
    b.heap.reset();
    const f = w.setup.call(w, b.heap, b.k, 'x86 fused');
    f.fn();
    const a = b.heap.floats(f.out, f.outFloats).slice();
    b.heap.rewindInputs(); // the same inputs and weights
    const u = w.setup.call(w, b.heap, b.k, 'x86 unfused');
    u.fn();
    const c = b.heap.floats(u.out, u.outFloats);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - c[i]) / Math.max(1, Math.abs(c[i]));
      if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    }
    if (!(maxDiff <= 1e-5)) console.error(`WARNING: fused and unfused ${w.label} differ by ${maxDiff} (a kernel or its signature changed?)`);
    checks.push({ block: w.key, maxRelDiff: maxDiff });
  }
}

process.stderr.write(`${nBench} benchmarks, budget ${opt.budget} s, minSamples ${minSamples}, warm-up ${warmMs} ms, ${opt.clock} clock\n`);
startAll = performance.now();
suite.run({ async: false });
const usedMax = pacing.used.slice().sort((a, b) => a - b);
const maxTimeMedian = usedMax[Math.floor(usedMax.length / 2)] ?? 0;
const totalSecs = (performance.now() - startAll) / 1e3;

// ---------------------------------------------------------------------------------------
// Derived figures

for (const row of rows) {
  const { w } = row;
  for (const [bid, r] of Object.entries(row.results)) {
    if (w.macs) {
      r.gflops = (2 * w.macs) / (r.meanMs * 1e6);
      r.pctPeak = peak[bid] ? (100 * r.gflops) / peak[bid].gflops : null;
      r.bestGflops = (2 * w.macs) / (r.bestMs * 1e6);
      r.bestPctPeak = peak[bid] ? (100 * r.bestGflops) / peak[bid].bestGflops : null;
    }
    if (w.bytes) r.gbps = w.bytes / (r.meanMs * 1e6);
    if (w.group === 'block') r.memBytes = row.variant.endsWith('unfused') ? w.memUnfused : w.memFused;
  }
}
const findRow = (w, v) => rows.find((r) => r.w === w && r.variant === v);

// ---------------------------------------------------------------------------------------
// The table

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const fmt = (x, d) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(d));
const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(3) : ms.toFixed(4));
const kb = (b) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)}MB` : `${Math.round(b / 1024)}KB`);
const usedBy = (w) => (w.uses.length > 1 ? `${w.uses[0]} +${w.uses.length - 1}` : w.uses[0]);

const W_SHAPE = Math.max(26, ...rows.map((r) => r.w.label.length)) + 1;
const W_USE = Math.max(12, ...rows.map((r) => usedBy(r.w).length)) + 1;
const W_VAR = 12;
const COLS = [['ms', 9], ['±%', 5], ['GF/s', 6], ['%pk', 4], ['best', 6], ['%pk', 4], ['GB/s', 6]];
const cell = (r, w) => {
  const v = !r ? ['-'] : [
    fmtMs(r.meanMs), fmt(r.rme, 1),
    w.macs ? fmt(r.gflops, 2) : '', r.pctPeak != null ? fmt(r.pctPeak, 0) : '',
    w.macs ? fmt(r.bestGflops, 2) : '', r.bestPctPeak != null ? fmt(r.bestPctPeak, 0) : '',
    r.gbps != null ? fmt(r.gbps, 1) : '',
  ];
  return COLS.map(([, n], i) => lpad(v[i] ?? '', n)).join(' ');
};
const buildHead = COLS.map(([t, n]) => lpad(t, n)).join(' ');

const out = [];
out.push('');
out.push(`MobileNet kernel microbenchmarks: ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, Node ${process.version} (V8 ${process.versions.v8}), ${new Date().toISOString()}`);
out.push(`benchmark.js (${opt.clock === 'cpu' ? 'process CPU-time clock' : 'wall clock'}): ms = mean time per call over >= ${minSamples} samples (maxTime ${(usedMax[0] * 1e3).toFixed(0)}-${(usedMax[usedMax.length - 1] * 1e3).toFixed(0)} ms, median ${(maxTimeMedian * 1e3).toFixed(0)}; samples >= maxTime/25), ±% = its relative margin of error (95%);`);
out.push('GF/s = 2 flops per multiply-add / mean time, %pk = % of the same build\'s peak probe (highest mean of its runs); best, %pk = the same from the fastest sample');
out.push('(best vs best peak: robust to other processes taking the CPU); GB/s = input + output + weight bytes / mean time.');
out.push('');
out.push('peak probe (peak_madd_f32: 12 independent f32x4 multiply-add chains, no memory traffic)');
for (const b of live) {
  const p = peak[b.id];
  if (p) {
    out.push(`  ${pad(b.title, 13)} ${fmt(p.gflops, 2)} GFLOP/s mean (±${fmt(p.rme, 1)}%), ${fmt(p.bestGflops, 2)} best sample${b.relaxed ? ' (relaxed_madd = FMA)' : ' (f32x4.mul + f32x4.add)'}; ` +
      `${p.runs.length} runs through the bench, means ${p.runs.map((x) => fmt(x.gflops, 1)).join(' ')}`);
  }
}
for (const b of builds) if (!b.available) out.push(`  ${pad(b.title, 13)} unavailable: ${b.why}`);

const cores = os.cpus().length;
if (Math.max(loadAtStart[0], os.loadavg()[0]) > cores * 0.75) {
  out.push(`note: load average ${loadAtStart[0].toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end on ${cores} cores: other processes shared the CPU; read the best columns${opt.clock === 'cpu' ? ' (timed with the CPU clock)' : ' (or rerun with --clock cpu)'}`);
}
const colTitles = live.map((b) => pad(`  ${b.title}`, buildHead.length + 3)).join('');
let lastGroup = '';
for (const row of rows) {
  const { w } = row;
  if (w.group !== lastGroup) {
    lastGroup = w.group;
    out.push('');
    out.push(`${w.group}: ${GROUP_TITLE[w.group]}`);
    out.push(`${pad('shape', W_SHAPE)}${pad('used by', W_USE)}${pad('variant', W_VAR)}${colTitles}note`);
    out.push(`${pad('', W_SHAPE)}${pad('', W_USE)}${pad('', W_VAR)}${live.map(() => `| ${buildHead} `).join('')}|`);
  }
  let note = '';
  if (w.group === 'block') {
    const r0 = row.results.simd ?? Object.values(row.results)[0];
    note = `mem ${kb(r0?.memBytes ?? 0)}`;
    if (row.variant.endsWith('unfused')) {
      const fused = findRow(w, row.variant.replace('unfused', 'fused'));
      const ratios = live.map((b) => (fused?.results[b.id] && row.results[b.id] ? row.results[b.id].meanMs / fused.results[b.id].meanMs : null));
      note += `; unfused/fused time ${ratios.map((x) => fmt(x, 2)).join(' / ')}`;
    }
  }
  out.push(`${pad(w.label, W_SHAPE)}${pad(usedBy(w), W_USE)}${pad(row.variant, W_VAR)}${live.map((b) => `| ${cell(row.results[b.id], w)} `).join('')}| ${note}`);
}

// ---------------------------------------------------------------------------------------
// Summaries: what the brief asks to read off the table.

const summary = {};
const weighted = (list, key) => {
  const ok = list.filter((x) => x.r?.[key] != null);
  const macs = ok.reduce((a, x) => a + x.macs, 0);
  return macs ? ok.reduce((a, x) => a + x.r[key] * x.macs, 0) / macs : null;
};
out.push('');
out.push('summary');
for (const b of live) {
  const s = (summary[b.id] = {});
  // Pointwise GEMMs on the real V2 1x1 shapes (expand, project, Conv_1; not the M=1 classifier).
  const v2 = rows.filter((r) => r.w.group === 'gemm' && r.variant === 'x86' && r.w.uses.some((u) => u.startsWith('v2')) && !r.w.key.startsWith('M1 '));
  const pct = v2.map((r) => r.results[b.id]?.pctPeak).filter((x) => x != null);
  const bpct = v2.map((r) => r.results[b.id]?.bestPctPeak).filter((x) => x != null);
  if (pct.length) {
    const list = v2.map((r) => ({ r: r.results[b.id], macs: r.w.macs * r.w.uses.filter((u) => u.startsWith('v2')).length }));
    s.gemmV2 = {
      shapes: pct.length,
      mean: { minPct: Math.min(...pct), maxPct: Math.max(...pct), macWeightedPct: weighted(list, 'pctPeak'), macWeightedGflops: weighted(list, 'gflops') },
      best: { minPct: Math.min(...bpct), maxPct: Math.max(...bpct), macWeightedPct: weighted(list, 'bestPctPeak'), macWeightedGflops: weighted(list, 'bestGflops') },
      atLeast80: { mean: pct.filter((x) => x >= 80).length, best: bpct.filter((x) => x >= 80).length },
    };
    for (const k of ['mean', 'best']) {
      const g = s.gemmV2[k];
      out.push(`  ${pad(b.title, 13)} pointwise x86 on the ${pct.length} V2 1x1 shapes (${k}): ${fmt(g.minPct, 0)}-${fmt(g.maxPct, 0)}% of peak, MAC-weighted ${fmt(g.macWeightedPct, 0)}% (${fmt(g.macWeightedGflops, 1)} GFLOP/s); ${s.gemmV2.atLeast80[k]}/${pct.length} shapes >= 80%`);
    }
  }
  // x86 vs arm variant, per group: geometric mean of arm time / x86 time.
  for (const g of ['gemm', 'dw', 'conv', 'block']) {
    const pairs = rows.filter((r) => r.w.group === g && r.variant.startsWith('x86')).map((r) => {
      const arm = findRow(r.w, r.variant.replace('x86', 'arm'));
      const a = arm?.results[b.id]?.meanMs, x = r.results[b.id]?.meanMs;
      return a && x ? a / x : null;
    }).filter((x) => x != null);
    if (pairs.length) {
      const gm = Math.exp(pairs.reduce((a, x) => a + Math.log(x), 0) / pairs.length);
      (s.armOverX86 ??= {})[g] = { geomean: gm, min: Math.min(...pairs), max: Math.max(...pairs), n: pairs.length };
      out.push(`  ${pad(b.title, 13)} arm/x86 time, ${pad(g, 5)}: geomean ${fmt(gm, 2)} (${fmt(Math.min(...pairs), 2)}-${fmt(Math.max(...pairs), 2)}, ${pairs.length} shapes)`);
    }
  }
  // Depthwise.
  const dws = rows.filter((r) => r.w.group === 'dw' && r.variant === 'x86' && r.results[b.id]);
  if (dws.length) {
    const gf = dws.map((r) => r.results[b.id].gflops), gb = dws.map((r) => r.results[b.id].gbps);
    s.dw = { minGflops: Math.min(...gf), maxGflops: Math.max(...gf), minGBps: Math.min(...gb), maxGBps: Math.max(...gb) };
    out.push(`  ${pad(b.title, 13)} depthwise x86: ${fmt(s.dw.minGflops, 1)}-${fmt(s.dw.maxGflops, 1)} GFLOP/s, ${fmt(s.dw.minGBps, 1)}-${fmt(s.dw.maxGBps, 1)} GB/s`);
  }
  // Fused vs unfused.
  const blocks = rows.filter((r) => r.w.group === 'block' && r.variant === 'x86 fused' && r.results[b.id]);
  const pairs = blocks.map((r) => ({ f: r.results[b.id], u: findRow(r.w, 'x86 unfused')?.results[b.id], w: r.w })).filter((p) => p.u);
  if (pairs.length) {
    const tf = pairs.reduce((a, p) => a + p.f.meanMs * p.w.uses.length, 0), tu = pairs.reduce((a, p) => a + p.u.meanMs * p.w.uses.length, 0);
    const mf = Math.max(...pairs.map((p) => p.f.memBytes)), mu = Math.max(...pairs.map((p) => p.u.memBytes));
    s.fusedVsUnfused = { blocks: pairs.length, fusedMsAllUses: tf, unfusedMsAllUses: tu, maxFusedScratch: mf, maxUnfusedIntermediates: mu };
    out.push(`  ${pad(b.title, 13)} blocks x86, all uses in V1+V2: fused ${fmt(tf, 2)} ms vs unfused ${fmt(tu, 2)} ms (${fmt(tu / tf, 2)}x); largest working memory fused ${kb(mf)} vs unfused ${kb(mu)}`);
  }
  // Whole-model projection from the per-step rows (x86 variant).
  for (const [mid, list] of stepWork) {
    let ms = 0, msUnfused = 0, ok = true;
    for (const { s: st, w } of list) {
      const v = w.group === 'block' ? 'x86 fused' : w.group === 'avgpool' || w.group === 'softmax' ? 'simd' : 'x86';
      const r = findRow(w, v)?.results[b.id];
      if (!r) { ok = false; break; }
      ms += r.meanMs;
      const ru = w.group === 'block' ? findRow(w, 'x86 unfused')?.results[b.id] : r;
      msUnfused += ru ? ru.meanMs : NaN;
    }
    if (!ok) continue;
    const macs = shapes.models.find((m) => m.id === mid).macs;
    (s.models ??= {})[mid] = { ms, gflops: (2 * macs) / (ms * 1e6), msUnfused };
    out.push(`  ${pad(b.title, 13)} ${mid}: sum of its steps ${fmt(ms, 2)} ms (${fmt((2 * macs) / (ms * 1e6), 1)} GFLOP/s over ${(macs / 1e6).toFixed(0)} M MACs); unfused blocks ${fmt(msUnfused, 2)} ms`);
  }
}
// Worst SIMD compute rows relative to peak (x86 variant, plain build first; by best sample), overall and per group.
{
  const bid = live[0].id;
  const cand = rows.filter((r) => r.w.macs && (r.variant === 'x86' || r.variant === 'x86 fused') && r.results[bid]?.bestPctPeak != null);
  cand.sort((a, b) => a.results[bid].bestPctPeak - b.results[bid].bestPctPeak);
  const brief = (r) => ({ group: r.w.group, shape: r.w.label, usedBy: r.w.uses, pctPeak: r.results[bid].pctPeak, bestPctPeak: r.results[bid].bestPctPeak, bestGflops: r.results[bid].bestGflops });
  const show = (x) => `${x.shape} (${x.usedBy[0]}) ${fmt(x.bestPctPeak, 0)}%`;
  summary.worst = cand.slice(0, 6).map(brief);
  out.push(`  worst x86 rows vs peak (${live[0].title}, best sample): ${summary.worst.map((x) => `${x.group} ${show(x)}`).join('; ')}`);
  summary.worstPerGroup = {};
  for (const g of ['gemm', 'dw', 'block', 'conv']) {
    const list = cand.filter((r) => r.w.group === g).slice(0, 4).map(brief);
    if (!list.length) continue;
    summary.worstPerGroup[g] = list;
    out.push(`  worst ${pad(g, 5)}: ${list.map(show).join('; ')}`);
  }
}
out.push(`  ${nBench} benchmarks in ${totalSecs.toFixed(0)} s${opt.quick ? ' (--quick)' : ''}${opt.filter ? ` (--filter ${opt.filter})` : ''}`);
console.log(out.join('\n'));

// ---------------------------------------------------------------------------------------
// Results file

if (opt.out) {
  let git = null;
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: here('..'), encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'assembly', 'src'], { cwd: here('..'), encoding: 'utf8' }).trim() !== '';
    git = { head, dirtyKernelsOrSrc: dirty };
  } catch { /* not a git checkout */ }
  const result = {
    date: new Date().toISOString(),
    machine: {
      cpu: os.cpus()[0]?.model, cores: os.cpus().length, arch: process.arch, platform: process.platform,
      release: os.release(), totalMemBytes: os.totalmem(), loadavgAtEnd: os.loadavg(),
    },
    node: process.version, v8: process.versions.v8, git,
    loadavgAtStart: loadAtStart,
    options: { ...opt, minSamples, maxTimeMsMedian: maxTimeMedian * 1e3, warmMs, seconds: totalSecs },
    builds: builds.map((b) => ({ id: b.id, available: b.available, moduleBytes: b.moduleBytes, why: b.why })),
    peak,
    checks,
    rows: rows.map((r) => ({
      group: r.w.group, key: r.w.key, shape: r.w.label, usedBy: r.w.uses, variant: r.variant, macs: r.w.macs || undefined,
      bytes: r.w.bytes, results: r.results,
    })),
    summary,
  };
  const dir = here('./results/');
  mkdirSync(dir, { recursive: true });
  const stamp = result.date.replace(/[:.]/g, '-');
  const partial = opt.quick || opt.filter;
  const text = JSON.stringify(result, null, 1);
  writeFileSync(`${dir}kernels-${stamp}${partial ? '-partial' : ''}.json`, text);
  if (!partial) writeFileSync(`${dir}kernels-latest.json`, text);
  console.log(`\nwrote bench/results/kernels-${stamp}${partial ? '-partial' : ''}.json${partial ? ' (partial run: kernels-latest.json untouched)' : ' and bench/results/kernels-latest.json'}`);
}
