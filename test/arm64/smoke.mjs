// ARM smoke suite: plain ESM over the built package (dist/ + build/), so it also runs under
// Debian's arm64 Node 18 emulated by qemu (scripts/test-arm64.sh). No vitest, no TypeScript.
//
//   node test/arm64/smoke.mjs [--expect arm|x86] [--write-expected]
//
// --expect          the variant this machine must be detected as (default: from process.arch);
//                   scripts/test-arm64.sh passes --expect arm to the emulated run, so a run that is
//                   not really arm64 fails instead of passing as x86.
// --write-expected  (x64 only) recompute test/arm64/expected.json from this machine, then run the
//                   checks against it.
//
// Prints one line per check ("ok - ..." / "FAIL - ..."), "# ..." lines for context, and ends
// with "N passed, M failed"; the exit code is 1 on any failure.
//
// Checks:
//   1. ARM detection: detectVariant() and the raw wasm NaN-sign probe.
//   2. Every SIMD kernel variant (ARM and x86) against its scalar twin on real MobileNet shapes.
//   3. The bundled model on a generated input against the stored x64 output (expected.json),
//      with the detected kernels and the other variant forced.
//   4. The loader's build choice: relaxed SIMD where it validates, plain SIMD otherwise.

import { readFile, writeFile } from 'node:fs/promises';
import { load, EnvironmentError, mobilenetV2 } from '../../dist/index.js';
import { detectVariant, instantiateKernels } from '../../dist/wasm.js';
import { packGemm, packDepthwise } from '../../dist/pack.js';
import { stripShape } from '../../dist/plan.js';

const EXPECTED_URL = new URL('./expected.json', import.meta.url);
const RELAXED_URL = new URL('../../build/mobilenet-relaxed.wasm', import.meta.url);
const SIMD_URL = new URL('../../build/mobilenet.wasm', import.meta.url);

// ---------------------------------------------------------------------------------------------
// Command line and reporting

const argv = process.argv.slice(2);
const writeExpected = argv.includes('--write-expected');
const expectIdx = argv.indexOf('--expect');
const archVariant = process.arch === 'arm64' || process.arch === 'arm' ? 'arm' : 'x86';
const expectVariant = expectIdx >= 0 ? argv[expectIdx + 1] : archVariant;
for (const a of argv) {
  if (!['--write-expected', '--expect', 'arm', 'x86'].includes(a)) {
    console.error(`unknown argument ${a}\nusage: node test/arm64/smoke.mjs [--expect arm|x86] [--write-expected]`);
    process.exit(2);
  }
}
if (expectVariant !== 'arm' && expectVariant !== 'x86') {
  console.error(`--expect takes arm or x86, got ${expectVariant}`);
  process.exit(2);
}
const otherVariant = expectVariant === 'arm' ? 'x86' : 'arm';

let passed = 0;
let failed = 0;
function check(ok, text) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} - ${text}`);
}
const note = (text) => console.log(`# ${text}`);
const t0 = Date.now();
const secs = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
const fmt = (x) => (x === 0 ? '0' : x.toExponential(1));

// A section that hangs (a promise that never settles, e.g. a compute thread that never starts)
// fails after this long instead of leaving Node to exit with code 13 and no summary.
const SECTION_TIMEOUT_S = Number(process.env.SMOKE_SECTION_TIMEOUT ?? 240);

/** Runs a section; an exception or a timeout inside it counts as one failed check instead of ending the run. */
async function section(title, fn) {
  const t = Date.now();
  note(title);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish in ${SECTION_TIMEOUT_S} s (hung?)`)), SECTION_TIMEOUT_S * 1000);
  });
  try {
    await Promise.race([fn(), timeout]);
  } catch (e) {
    check(false, `${title}: ${e instanceof Error && e.message.startsWith('did not finish') ? e.message : `threw ${e?.stack ?? e}`}`);
  } finally {
    clearTimeout(timer);
  }
  note(`(${secs(t)})`);
}

// ---------------------------------------------------------------------------------------------
// Helpers (the same as test/helpers/wasm.ts, in plain JS)

/** mulberry32: a small seeded PRNG giving floats in [0, 1). Kept here so expected.json never depends on src/. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(rand, n, lo = -1, hi = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

/** max |a-b| / max(1, |b|): relative for large values, absolute near zero; NaN counts as Infinity. */
function maxRelDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** A bump allocator over one kernel instance; every buffer is followed by 16 NaN guard floats. */
class Heap {
  constructor(inst) {
    this.inst = inst;
    this.k = inst.exports;
    this.reset();
  }
  reset() {
    this.top = Math.ceil(this.k.heap_base() / 64) * 64;
  }
  put(data) {
    const n = typeof data === 'number' ? data : data.length;
    const p = this.top;
    this.top += Math.ceil((n * 4 + 64) / 64) * 64;
    this.inst.ensureMemory(this.top + 64);
    const view = new Float32Array(this.k.memory.buffer, p, n + 16);
    view.fill(NaN);
    if (typeof data === 'number') view.fill(0, 0, n);
    else view.set(data);
    return p;
  }
  get(p, n) {
    return new Float32Array(this.k.memory.buffer, p, n).slice();
  }
  guardIntact(p, n) {
    return new Float32Array(this.k.memory.buffer, p + n * 4, 16).every((v) => Number.isNaN(v));
  }
}

/** TF SAME / VALID / explicit ((0,1),(0,1)) zero-padding -> top/left pads and output size of a 3x3 window. */
function pads3(H, W, stride, mode) {
  if (mode === 'valid') return { top: 0, left: 0, outH: Math.floor((H - 3) / stride) + 1, outW: Math.floor((W - 3) / stride) + 1 };
  if (mode === 'explicit') return { top: 0, left: 0, outH: Math.floor((H - 2) / stride) + 1, outW: Math.floor((W - 2) / stride) + 1 };
  const outH = Math.ceil(H / stride), outW = Math.ceil(W / stride);
  const ph = Math.max((outH - 1) * stride + 3 - H, 0), pw = Math.max((outW - 1) * stride + 3 - W, 0);
  return { top: Math.floor(ph / 2), left: Math.floor(pw / 2), outH, outW };
}

// ---------------------------------------------------------------------------------------------
// 1. ARM detection

async function checkDetection() {
  check(archVariant === expectVariant,
    `process.arch is ${process.arch} (node ${process.version}): an ${expectVariant} machine as expected`);
  const inst = await instantiateKernels('simd');
  const k = inst.exports;
  const picked = detectVariant(k);
  check(picked === expectVariant, `detectVariant() picks '${picked}' (expected '${expectVariant}')`);
  const sign = k.probe_nan_sign(Infinity);
  const want = expectVariant === 'arm' ? 0 : 1;
  check(sign === want,
    `wasm probe_nan_sign(Infinity) = ${sign}: inf - inf is a ${sign ? 'negative' : 'positive'} NaN (expected ${want}, ${want ? 'negative on x86' : 'positive on ARM'})`);
  // The browser path: no process.arch, so detectVariant() must decide by the probe alone.
  const desc = Object.getOwnPropertyDescriptor(process, 'arch');
  let byProbe;
  try {
    Object.defineProperty(process, 'arch', { value: undefined, configurable: true });
    byProbe = detectVariant(k);
  } finally {
    Object.defineProperty(process, 'arch', desc);
  }
  check(byProbe === expectVariant, `detectVariant() without process.arch (probe only, as in a browser) picks '${byProbe}'`);
}

// ---------------------------------------------------------------------------------------------
// 2. Kernel variants vs scalar twins on MobileNet shapes

const NO_CLAMP = [-Infinity, Infinity];
const RELU6 = [0, 6];
// Real layer shapes of MobileNet V1/V2 at small widths and input sizes (to stay quick under
// emulation), plus odd channel counts and sizes that exercise every tile and vector tail.
const SHAPES = [
  // 1x1 convolution / dense: M pixels, K input channels, N output channels
  { op: 'gemm', name: 'V2 expand 28x28 32->192 relu6', M: 784, K: 32, N: 192, clamp: RELU6 },
  { op: 'gemm', name: 'V2 project 14x14 384->64 +residual', M: 196, K: 384, N: 64, clamp: NO_CLAMP, residual: true },
  { op: 'gemm', name: 'V1 0.25 pointwise 7x7 256->256 relu6', M: 49, K: 256, N: 256, clamp: RELU6 },
  { op: 'gemm', name: 'nsfwjs dense 1280->5', M: 1, K: 1280, N: 5, clamp: NO_CLAMP },
  { op: 'gemm', name: 'ImageNet dense 1024->1001', M: 1, K: 1024, N: 1001, clamp: NO_CLAMP },
  { op: 'gemm', name: 'odd 13 px 27->17 relu6 +residual', M: 13, K: 27, N: 17, clamp: RELU6, residual: true },
  // depthwise 3x3
  { op: 'dw', name: 'V2 0.35 48x48 C=16 s1 same', H: 48, W: 48, C: 16, stride: 1, pad: 'same', clamp: RELU6 },
  { op: 'dw', name: 'V2 56x56 C=144 s2 zero-pad', H: 56, W: 56, C: 144, stride: 2, pad: 'explicit', clamp: RELU6 },
  { op: 'dw', name: 'V2 7x7 C=960 s1 same', H: 7, W: 7, C: 960, stride: 1, pad: 'same', clamp: RELU6 },
  { op: 'dw', name: 'odd 15x15 C=13 s2 valid', H: 15, W: 15, C: 13, stride: 2, pad: 'valid', clamp: NO_CLAMP },
  { op: 'dw', name: 'odd 9x11 C=33 s1 same', H: 9, W: 11, C: 33, stride: 1, pad: 'same', clamp: RELU6 },
  // full 3x3 convolution (the stem)
  { op: 'conv', name: 'V2 0.35 stem 96x96x3->16 s2 zero-pad', H: 96, W: 96, Cin: 3, N: 16, stride: 2, pad: 'explicit', clamp: RELU6 },
  { op: 'conv', name: 'V1 0.25 stem 128x128x3->8 s2 same', H: 128, W: 128, Cin: 3, N: 8, stride: 2, pad: 'same', clamp: RELU6 },
  { op: 'conv', name: 'odd 15x13x3->13 s1 same', H: 15, W: 13, Cin: 3, N: 13, stride: 1, pad: 'same', clamp: NO_CLAMP },
  // fused inverted residual: [expand 1x1 ->] depthwise 3x3 -> project 1x1 [+ residual]
  { op: 'ib', name: 'V2 block 14x14 64->384->64 +residual', H: 14, W: 14, Cin: 64, Cexp: 384, Cout: 64, stride: 1, pad: 'same', residual: true },
  { op: 'ib', name: 'V2 0.35 first block 48x48 16->8 no expand', H: 48, W: 48, Cin: 16, Cexp: 16, Cout: 8, stride: 1, pad: 'same', expand: false },
  { op: 'ib', name: 'V2 block 28x28 32->192->64 s2 zero-pad', H: 28, W: 28, Cin: 32, Cexp: 192, Cout: 64, stride: 2, pad: 'explicit' },
  { op: 'ib', name: 'odd 7x9 5->31->17 s2 same', H: 7, W: 9, Cin: 5, Cexp: 31, Cout: 17, stride: 2, pad: 'same' },
];
// The plain SIMD build does the twins' f32 operations in the same order: rounding noise only.
const TWIN_TOL = 1e-6;
const GEMM = { x86: 'gemm_4x8_f32_x86', arm: 'gemm_6x8_f32_arm', scalar: 'gemm_f32_scalar' };

/** Sets up one shape's inputs in the heap; returns run(variant) -> { out, n, guards } */
function prepare(h, s, seed) {
  const r = mulberry32(seed);
  const k = h.k;
  if (s.op === 'gemm') {
    const { M, K, N } = s;
    const a = h.put(randomArray(r, M * K)), w = randomArray(r, K * N), b = randomArray(r, N);
    const pw = h.put(packGemm(w, b, K, N)), res = s.residual ? h.put(randomArray(r, M * N)) : 0;
    return {
      label: `M=${M} K=${K} N=${N}`,
      run(v) {
        const o = h.put(M * N);
        k[GEMM[v]](M, K, N, a, pw, o, s.clamp[0], s.clamp[1], res, N);
        return { out: h.get(o, M * N), intact: h.guardIntact(o, M * N) };
      },
    };
  }
  const p = pads3(s.H, s.W, s.stride, s.pad);
  if (s.op === 'dw') {
    const { H, W, C } = s;
    const x = h.put(randomArray(r, H * W * C)), w = randomArray(r, 9 * C), b = randomArray(r, C);
    const pw = h.put(packDepthwise(w, b, C)), zero = h.put(W * C);
    const n = p.outH * p.outW * C;
    return {
      label: `${H}x${W}x${C} -> ${p.outH}x${p.outW}`,
      run(v) {
        const o = h.put(n);
        k[`dwconv3x3_nhwc_f32_${v}`](x, H, W, C, pw, o, p.outH, p.outW, s.stride, p.top, p.left, s.clamp[0], s.clamp[1], zero);
        return { out: h.get(o, n), intact: h.guardIntact(o, n) && h.guardIntact(zero, W * C) };
      },
    };
  }
  if (s.op === 'conv') {
    const { H, W, Cin, N } = s;
    const x = h.put(randomArray(r, H * W * Cin)), w = randomArray(r, 9 * Cin * N), b = randomArray(r, N);
    const pw = h.put(packGemm(w, b, 9 * Cin, N));
    const sf = k.conv3x3_scratch_floats(Cin, p.outW), scratch = h.put(sf);
    const n = p.outH * p.outW * N;
    return {
      label: `${H}x${W}x${Cin} -> ${p.outH}x${p.outW}x${N}`,
      run(v) {
        const o = h.put(n);
        k[`conv3x3_nhwc_f32_${v}`](x, H, W, Cin, pw, N, o, p.outH, p.outW, s.stride, p.top, p.left, s.clamp[0], s.clamp[1], scratch);
        return { out: h.get(o, n), intact: h.guardIntact(o, n) && h.guardIntact(scratch, sf) };
      },
    };
  }
  // ib
  const { H, W, Cin, Cexp, Cout, stride } = s;
  const expand = s.expand !== false;
  const x = h.put(randomArray(r, H * W * Cin, -2, 2));
  const pew = expand ? h.put(packGemm(randomArray(r, Cin * Cexp), randomArray(r, Cexp), Cin, Cexp)) : 0;
  const pdw = h.put(packDepthwise(randomArray(r, 9 * Cexp), randomArray(r, Cexp), Cexp));
  const ppw = h.put(packGemm(randomArray(r, Cexp * Cout), randomArray(r, Cout), Cexp, Cout));
  const { S, cap } = stripShape(p.outH, p.outW, stride, Cexp * Cout * 4);
  const sf = k.ibottleneck_scratch_floats(W, Cexp, p.outW, expand ? 1 : 0, S, cap), scratch = h.put(sf);
  const n = p.outH * p.outW * Cout;
  return {
    label: `${H}x${W}x${Cin} -> ${p.outH}x${p.outW}x${Cout} S=${S} cap=${cap}`,
    run(v) {
      const o = h.put(n);
      k[`ibottleneck3x3_nhwc_f32_${v}`](x, H, W, Cin, pew, Cexp, 0, 6, pdw, stride, p.top, p.left, 0, 6,
        ppw, Cout, -Infinity, Infinity, s.residual ? x : 0, o, p.outH, p.outW, S, cap, scratch);
      return { out: h.get(o, n), intact: h.guardIntact(o, n) && h.guardIntact(scratch, sf) };
    },
  };
}

const KERNEL_NAME = {
  gemm: (v) => GEMM[v],
  dw: (v) => `dwconv3x3_nhwc_f32_${v}`,
  conv: (v) => `conv3x3_nhwc_f32_${v}`,
  ib: (v) => `ibottleneck3x3_nhwc_f32_${v}`,
};

async function checkKernels() {
  const h = new Heap(await instantiateKernels('simd'));
  note(`plain SIMD build; tolerance ${TWIN_TOL} relative to the scalar twin; ${SHAPES.length} shapes x (arm, x86)`);
  SHAPES.forEach((s, i) => {
    h.reset();
    const job = prepare(h, s, 1000 + i);
    const twin = job.run('scalar');
    for (const v of [expectVariant, otherVariant]) {
      const got = job.run(v);
      const d = maxRelDiff(got.out, twin.out);
      const ok = d <= TWIN_TOL && got.intact && twin.intact;
      check(ok, `${KERNEL_NAME[s.op](v).padEnd(30)} ${s.name} (${job.label}): max rel diff ${fmt(d)}` +
        `${got.intact && twin.intact ? '' : ', WROTE PAST ITS BUFFER'}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 3. The bundled model against the stored x64 output

const INPUT_SPEC = {
  generator: 'mulberry32',
  seed: 20250520,
  shape: [1, 224, 224, 3],
  formula: 'per channel c: fx, fy, phase from the PRNG; x = round(255 * clamp01(0.5 + 0.3 sin(fx*col + fy*row + phase) + 0.2 (rand - 0.5))) / 255',
};

/** The model input: a smooth pattern with noise, quantized to 8-bit levels like a real image. */
function makeInput(spec) {
  if (spec.generator !== 'mulberry32') throw new Error(`unknown input generator ${spec.generator}`);
  const [, H, W, C] = spec.shape;
  const r = mulberry32(spec.seed);
  const waves = Array.from({ length: C }, () => ({ fx: 0.02 + 0.1 * r(), fy: 0.02 + 0.1 * r(), phase: 6.283185307179586 * r() }));
  const x = new Float32Array(H * W * C);
  for (let y = 0; y < H; y++) {
    for (let xx = 0; xx < W; xx++) {
      for (let c = 0; c < C; c++) {
        const { fx, fy, phase } = waves[c];
        const v = 0.5 + 0.3 * Math.sin(fx * xx + fy * y + phase) + 0.2 * (r() - 0.5);
        x[(y * W + xx) * C + c] = Math.round(255 * Math.min(1, Math.max(0, v))) / 255;
      }
    }
  }
  return x;
}

const round = (p) => Array.from(p, (v) => Number(v.toPrecision(7)));
const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
let autoModel = null; // reused by section 4

async function checkModel() {
  if (writeExpected) {
    if (process.arch !== 'x64') throw new Error('--write-expected must run on x64: expected.json holds the x64 output');
    const input = makeInput(INPUT_SPEC);
    const m = await load(undefined, { build: 'simd', kernels: 'x86' });
    const probs = await m.run(input);
    const expected = {
      about: 'x64 output of the bundled model on a generated input, for test/arm64/smoke.mjs (node test/arm64/smoke.mjs --write-expected on x64 rewrites it)',
      input: INPUT_SPEC,
      tolerance: 1e-5,
      x64: { node: process.version, arch: process.arch, build: m.build, kernels: m.kernels, labels: m.labels, probabilities: Array.from(probs) },
    };
    m.dispose();
    await writeFile(EXPECTED_URL, `${JSON.stringify(expected, null, 2)}\n`);
    note(`wrote ${EXPECTED_URL.pathname}: ${m.labels.map((l, i) => `${l} ${probs[i].toPrecision(6)}`).join(', ')}`);
  }
  let expected;
  try {
    expected = JSON.parse(await readFile(EXPECTED_URL, 'utf8'));
  } catch (e) {
    check(false, `cannot read ${EXPECTED_URL.pathname} (run \`node test/arm64/smoke.mjs --write-expected\` on x64): ${e.message}`);
    return;
  }
  const want = Float32Array.from(expected.x64.probabilities);
  const tol = expected.tolerance;
  const input = makeInput(expected.input);
  note(`input: ${expected.input.generator} seed ${expected.input.seed}, [${expected.input.shape}]; expected from ${expected.x64.arch} node ${expected.x64.node}, ${expected.x64.build} build, ${expected.x64.kernels} kernels`);

  let t = Date.now();
  const m = await load();
  autoModel = m;
  note(`load(): ${secs(t)}`);
  const threads = (mm) => (mm.threads && typeof mm.threads === 'object' ? mm.threads.count : mm.threads ?? 1);
  check(m.kernels === expectVariant, `load() picks model.kernels === '${m.kernels}' (expected '${expectVariant}'), build '${m.build}', ${threads(m)} thread(s)`);
  t = Date.now();
  const got = await m.run(input);
  const d = maxAbsDiff(got, want);
  check(d <= tol, `bundled model, ${m.kernels} kernels: probabilities [${round(got)}] vs x64 [${round(want)}]: max abs diff ${fmt(d)}${same(got, want) ? ', bit-identical' : ''} (tolerance ${tol}; run ${secs(t)})`);

  const m2 = await load(undefined, { kernels: otherVariant });
  t = Date.now();
  const got2 = await m2.run(input);
  m2.dispose();
  const d2 = maxAbsDiff(got2, want), d12 = maxAbsDiff(got2, got);
  check(m2.kernels === otherVariant && d2 <= tol && d12 <= tol,
    `bundled model, ${otherVariant} kernels forced (kernels: '${otherVariant}' -> '${m2.kernels}'): max abs diff ${fmt(d2)} vs x64, ${fmt(d12)} vs ${m.kernels} kernels (run ${secs(t)})`);
  const top = (p) => expected.x64.labels[p.indexOf(Math.max(...p))];
  check(top(got) === top(want) && top(got2) === top(want), `top class '${top(got)}' / '${top(got2)}' (x64: '${top(want)}')`);
}

// ---------------------------------------------------------------------------------------------
// 4. Build choice: relaxed SIMD where it validates, plain SIMD otherwise

async function checkBuildFallback() {
  const relaxedOk = WebAssembly.validate(await readFile(RELAXED_URL));
  const simdOk = WebAssembly.validate(await readFile(SIMD_URL));
  const major = Number(process.versions.node.split('.')[0]);
  check(simdOk, `WebAssembly.validate(build/mobilenet.wasm) is ${simdOk} (plain SIMD)`);
  // Node 18's V8 has only the old relaxed-SIMD prototype: AssemblyScript's relaxed build must not validate there.
  check(major >= 20 || !relaxedOk,
    `WebAssembly.validate(build/mobilenet-relaxed.wasm) is ${relaxedOk} on node ${process.version}${major < 20 ? ' (must be false before Node 20)' : ''}`);
  const m = autoModel ?? (await load());
  const wantBuild = relaxedOk ? 'relaxed' : 'simd';
  check(m.build === wantBuild, `load() reports model.build === '${m.build}' (expected '${wantBuild}': relaxed ${relaxedOk ? 'validates' : 'does not validate'})`);
  m.dispose();
  const tiny = mobilenetV2({ alpha: 0.35, inputSize: 32, classes: 3, seed: 1 });
  let outcome;
  try {
    const r = await load(tiny, { build: 'relaxed' });
    outcome = { resolved: r.build };
    r.dispose();
  } catch (e) {
    outcome = { error: e };
  }
  if (relaxedOk) {
    check(outcome.resolved === 'relaxed', `load(..., { build: 'relaxed' }) ${outcome.error ? `rejected: ${outcome.error}` : `resolves with build '${outcome.resolved}'`}`);
  } else {
    const e = outcome.error;
    check(e instanceof EnvironmentError,
      `load(..., { build: 'relaxed' }) ${e ? `rejects with ${e.constructor?.name}: ${e.message}` : `resolved with build '${outcome.resolved}' (expected EnvironmentError)`}`);
  }
}

// ---------------------------------------------------------------------------------------------

note(`mobilenet-wasm ARM smoke suite: node ${process.version} ${process.platform}-${process.arch}, expecting ${expectVariant}`);
await section('1. variant detection', checkDetection);
await section('2. SIMD kernel variants vs scalar twins', checkKernels);
await section('3. bundled model vs stored x64 output', checkModel);
await section('4. build choice and relaxed-SIMD fallback', checkBuildFallback);
note(`total ${secs(t0)}`);
console.log(`${passed} passed, ${failed} failed`);
// Exit now: a model left over by a failed check may still hold compute threads.
process.exit(failed ? 1 : 0);
