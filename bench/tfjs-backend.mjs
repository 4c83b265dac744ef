// nsfwjs classify() latency on the TF.js backends, in one process, alternating:
//   mobilenet-wasm  this package's TF.js backend (import 'mobilenet-wasm/tfjs')
//   cpu             @tensorflow/tfjs-backend-cpu, the backend mobilenet-wasm replaces kernels of
//   wasm            @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, 1 thread), for context
//   standalone      this package's own API on the same network and image, 1 thread, for context:
//                   load() + model.classify(rgbaPixels) (resize, normalise, run)
//
//   node bench/tfjs-backend.mjs [--rounds N] [--image samples/cat-photo.jpg] [--skip wasm] [--no-write]
//
// Unmodified nsfwjs with its bundled MobileNetV2 (the layers model: conv, batch-norm and ReLU6 as
// separate kernels), one model instance per backend (loaded while that backend is active, so its
// weights live there and are never moved), the sample image decoded once and given to classify()
// as an int32 tensor, as tf.browser.fromPixels would. Every backend's probabilities are checked
// against cpu's first (max |diff| <= 1e-4). Then warm-up runs, then R rounds each running every
// backend once in a rotating order. Per round, the ratio backend / mobilenet-wasm is taken, so
// slow phases of a busy machine hit both sides; reported: median / min of latencies and the
// median of the per-round ratios, in wall time and in process CPU time (this process is the only
// thing the CPU time counts, so it is the steadier figure when the machine is shared).
//
// Needs `npm run build` (imports ../dist/). Appends its table to docs/PERFORMANCE.md between
// <!-- tfjs-backend --> and <!-- /tfjs-backend --> (inside the hand-written <!-- manual --> part,
// which bench/models.mjs keeps when it regenerates the file).

import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ARGV = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = ARGV.indexOf(name);
  return i >= 0 && i + 1 < ARGV.length ? ARGV[i + 1] : dflt;
};
const ROUNDS = Number(arg('--rounds', '9'));
const WARMUP = Number(arg('--warmup', '2'));
const IMAGE = arg('--image', 'samples/cat-photo.jpg');
const SKIP = new Set(arg('--skip', '').split(',').filter(Boolean));
const WRITE = !ARGV.includes('--no-write');

const tf = await import('@tensorflow/tfjs');
const { getMobileNetWasmBackend } = await import('../dist/tfjs/index.js');
const { decodeImage, load: loadStandalone } = await import('../dist/index.js');
const nsfwjs = await import('nsfwjs');
tf.enableProdMode(); // silences the cpu backend's banner; changes no computation

const BACKENDS = ['mobilenet-wasm', 'cpu'];
if (!SKIP.has('wasm')) {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep);
  wasm.setThreadsCount(1);
  BACKENDS.push('wasm');
}

// nsfwjs prints which model it uses on every load(): keep the table readable.
const info = console.info;
console.info = () => {};

const img = await decodeImage(new Uint8Array(readFileSync(path.join(ROOT, IMAGE))));
const rgb = new Int32Array(img.width * img.height * 3);
for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
  rgb[i] = img.data[j];
  rgb[i + 1] = img.data[j + 1];
  rgb[i + 2] = img.data[j + 2];
}

/** @type {Record<string, { model: any, input: any, loadMs: number }>} */
const setups = {};
for (const name of BACKENDS) {
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend ${name} failed to initialise`);
  await tf.ready();
  const t0 = performance.now();
  const model = await nsfwjs.load();
  setups[name] = { model, input: tf.tensor3d(rgb, [img.height, img.width, 3], 'int32'), loadMs: performance.now() - t0 };
}
console.info = info;
const ours = getMobileNetWasmBackend();

let standalone = null;
if (!SKIP.has('standalone')) {
  const t0 = performance.now();
  standalone = await loadStandalone(undefined, { threads: 1 });
  setups.standalone = { loadMs: performance.now() - t0 };
  BACKENDS.push('standalone');
}
const RUNNERS = BACKENDS;

async function classify(name) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let r;
  if (name === 'standalone') {
    r = (await standalone.classify(img, { topK: 5 })).map((p) => ({ className: p.label, probability: p.probability }));
  } else {
    await tf.setBackend(name);
    const s = setups[name];
    r = await s.model.classify(s.input, 5);
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { r, wall, cpu: (c.user + c.system) / 1000 };
}

// Same answers first.
const answers = {};
for (const name of RUNNERS) answers[name] = (await classify(name)).r;
const prob = (r) => Object.fromEntries(r.map((x) => [x.className, x.probability]));
for (const name of RUNNERS) {
  const a = prob(answers[name]);
  const b = prob(answers.cpu);
  const d = Math.max(...Object.keys(b).map((k) => Math.abs(a[k] - b[k])));
  if (!(d <= 1e-4)) throw new Error(`${name} disagrees with cpu: max |diff| ${d}`);
  answers[name].maxDiff = d;
}
ours.resetStats();
await classify('mobilenet-wasm');
const stats = JSON.parse(JSON.stringify(ours.stats));

for (let w = 0; w < WARMUP; w++) for (const name of RUNNERS) await classify(name);

/** @type {Record<string, { wall: number[], cpu: number[] }>} */
const times = Object.fromEntries(BACKENDS.map((n) => [n, { wall: [], cpu: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  const order = BACKENDS.map((_, i) => BACKENDS[(i + round) % BACKENDS.length]);
  for (const name of order) {
    const { wall, cpu } = await classify(name);
    times[name].wall.push(wall);
    times[name].cpu.push(cpu);
  }
  process.stderr.write(`round ${round + 1}/${ROUNDS}: ${BACKENDS.map((n) => `${n} ${times[n].wall.at(-1).toFixed(0)} ms`).join(', ')}\n`);
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const min = (a) => Math.min(...a);
const ratio = (name, kind) => median(times[name][kind].map((t, i) => t / times['mobilenet-wasm'][kind][i]));
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

const label = {
  'mobilenet-wasm': '`mobilenet-wasm` (this package)',
  cpu: '`cpu` (@tensorflow/tfjs-backend-cpu)',
  wasm: '`wasm` (@tensorflow/tfjs-backend-wasm, XNNPACK, 1 thread)',
  standalone: 'context: this package\'s own API, `load()` + `model.classify(pixels)`, 1 thread',
};
const rows = BACKENDS.map((n) => ({
  name: n,
  wallMedian: median(times[n].wall),
  wallMin: min(times[n].wall),
  cpuMedian: median(times[n].cpu),
  ratioWall: ratio(n, 'wall'),
  ratioCpu: ratio(n, 'cpu'),
  loadMs: setups[n].loadMs,
  maxDiff: answers[n].maxDiff,
}));

const tfVersion = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@tensorflow/tfjs-core/package.json'), 'utf8')).version;
const nsfwVersion = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/nsfwjs/package.json'), 'utf8')).version;
const load = os.loadavg()[0];
const table = [
  '| backend | median | min | median CPU time | time / mobilenet-wasm (wall) | (CPU time) | max \\|p - p_cpu\\| |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${label[r.name]} | ${fmt(r.wallMedian)} ms | ${fmt(r.wallMin)} ms | ${fmt(r.cpuMedian)} ms | ${r.ratioWall.toFixed(2)}x | ${r.ratioCpu.toFixed(2)}x | ${r.maxDiff.toExponential(1)} |`),
];
const ourKernels = Object.entries(stats.ours).map(([k, v]) => `${k} ${v}`).join(', ');
const fallbacks = Object.entries(stats.reasons).map(([k, v]) => `${k} (${v})`).join(', ') || 'none';

console.log(`\nnsfwjs ${nsfwVersion} MobileNetV2 classify(${IMAGE}, ${img.width}x${img.height}), TF.js ${tfVersion}, Node ${process.versions.node}`);
console.log(`mobilenet-wasm: ${ours.build} build, ${ours.variant} kernels; ${ROUNDS} rounds; load average ${load.toFixed(1)} on ${os.cpus().length} cores\n`);
console.log(table.join('\n'));
console.log(`\nkernels on wasm per classify: ${ourKernels}\nfell back to cpu: ${fallbacks}`);

if (WRITE) {
  const date = new Date().toISOString().slice(0, 10);
  const section = [
    '<!-- tfjs-backend -->',
    '## As a TF.js backend (`mobilenet-wasm/tfjs`)',
    '',
    `Written by \`node bench/tfjs-backend.mjs\` (${date}). Unmodified nsfwjs ${nsfwVersion} with its bundled MobileNetV2 ` +
      `(the layers model: convolution, batch-norm and ReLU6 as separate kernels), \`model.classify()\` of ` +
      `\`${IMAGE}\` (${img.width}x${img.height}, resized by nsfwjs to 224x224) on each TF.js ${tfVersion} backend, in one ` +
      `Node ${process.versions.node} process, one model instance per backend, ${ROUNDS} alternating rounds after warm-up; ` +
      `ratios are medians of per-round ratios. mobilenet-wasm ran its ${ours.build} build with the ${ours.variant} kernels. ` +
      `Load average during the run: ${load.toFixed(1)} on ${os.cpus().length} cores (CPU time is this process only).`,
    '',
    ...table,
    '',
    `Per classify on mobilenet-wasm, kernels run on this package's code: ${ourKernels}. Fell back to cpu: ${fallbacks}. ` +
      'Every other kernel (resize, division, reshapes, softmax) is the cpu backend\'s.',
    '',
    'The backend runs the model as TF.js gives it, kernel by kernel, copying each input into wasm memory and each ' +
      'output out. The context row is the same network on this package\'s own API, which folds batch-norm into the ' +
      'convolutions, runs each inverted-residual block as one kernel call and keeps every activation in wasm memory.',
    '<!-- /tfjs-backend -->',
  ].join('\n');
  const file = path.join(ROOT, 'docs/PERFORMANCE.md');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Performance\n';
  const a = doc.indexOf('<!-- tfjs-backend -->');
  const b = doc.indexOf('<!-- /tfjs-backend -->');
  if (a >= 0 && b > a) {
    doc = doc.slice(0, a) + section + doc.slice(b + '<!-- /tfjs-backend -->'.length);
  } else {
    const end = doc.indexOf('<!-- /manual -->');
    if (end >= 0) doc = doc.slice(0, end) + section + '\n' + doc.slice(end);
    else doc = doc.replace(/\n*$/, '\n\n') + section + '\n';
  }
  writeFileSync(file, doc);
  console.log(`\nwrote the tfjs-backend section of ${path.relative(process.cwd(), file)}`);
}
