// Regenerates bench/shapes.json: the real layer shapes of MobileNetV1 1.0 224 and MobileNetV2
// 1.0 224, read from the planner's steps (so they are exactly the calls a model makes, with the
// planner's strip height S and window cap for the fused blocks). Run after `npm run build`:
//   node bench/make-shapes.mjs
// The output is committed, so bench/kernels.mjs (and a reader) needs nothing else.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildPlan } from '../dist/plan.js';
import { mobilenetV1, mobilenetV2 } from '../dist/builders.js';

/** Clamp bounds -> the activation they implement (JSON has no Infinity). */
function act(lo, hi) {
  if (lo === 0 && hi === 6) return 'relu6';
  if (lo === 0 && hi === Infinity) return 'relu';
  if (lo === -Infinity && hi === Infinity) return 'linear';
  throw new Error(`unexpected clamp [${lo}, ${hi}]`);
}

/** One model: its plan steps (one kernel call each) and the per-layer table they cover. */
function describe(id, src) {
  const plan = buildPlan(src, 'x86'); // one thread: each step is one call over the whole tensor
  const steps = [];
  const layers = [];
  for (const s of plan.steps) {
    const a = s.chunks?.[0]?.[0] ?? s.args ?? s.parts?.[0]; // one thread: one chunk over all rows
    if (!a) throw new Error(`${id}: step ${s.layers.join(',')} has no arguments`);
    const base = s.kernel.replace(/_(x86|arm|scalar)$/, '').replace(/^gemm_4x8_f32$/, 'gemm');
    if (base === 'conv3x3_nhwc_f32') {
      const [, H, W, Cin, , N, , outH, outW, stride, padTop, padLeft, lo, hi] = a;
      steps.push({ op: 'conv3x3', layers: s.layers, H, W, Cin, Cout: N, stride, padTop, padLeft, outH, outW, act: act(lo, hi), macs: s.macs });
      layers.push({ name: s.layers[0], op: 'conv3x3', H, W, Cin, Cout: N, stride, outH, outW });
    } else if (base === 'ibottleneck3x3_nhwc_f32') {
      const [, H, W, Cin, ew, Cexp, elo, ehi, , stride, padTop, padLeft, dlo, dhi, , Cout, plo, phi, res, , outH, outW, S, cap] = a;
      // res: a buffer (the block's input) or 0; older plans passed a 0/1 flag.
      const residual = typeof res === 'object' ? res !== null : res === 1;
      const expand = ew !== 0;
      const step = {
        op: 'ibottleneck', layers: s.layers, H, W, Cin, expand, Cexp, Cout, stride, padTop, padLeft, outH, outW,
        residual, S, cap,
        act: { expand: expand ? act(elo, ehi) : null, depthwise: act(dlo, dhi), project: act(plo, phi) },
        macs: s.macs,
      };
      steps.push(step);
      const names = [...s.layers];
      if (expand) layers.push({ name: names.shift(), op: 'conv1x1', H, W, Cin, Cout: Cexp, stride: 1, outH: H, outW: W });
      layers.push({ name: names.shift(), op: 'depthwise3x3', H, W, Cin: Cexp, Cout: Cexp, stride, outH, outW });
      layers.push({ name: names.shift(), op: 'conv1x1', H: outH, W: outW, Cin: Cexp, Cout, stride: 1, outH, outW });
      if (names.length) layers.push({ name: names.shift(), op: 'add', H: outH, W: outW, Cin: Cout, Cout, stride: 1, outH, outW });
    } else if (base === 'stem3x3_block_nhwc_f32') {
      // The stem fused with the first block: recorded as the two kernels it chains, so the
      // kernel benchmarks measure each part on its real shape.
      const [, cH, cW, cC, cStride, cPadTop, cPadLeft, , H, W, Cexp, clo, chi, , stride, padTop, padLeft, dlo, dhi, , Cout, plo, phi, , outH, outW, S, cap] = a;
      const convMacs = H * W * 9 * cC * Cexp;
      const [conv, dw, project] = s.layers;
      steps.push({ op: 'conv3x3', layers: [conv], H: cH, W: cW, Cin: cC, Cout: Cexp, stride: cStride, padTop: cPadTop, padLeft: cPadLeft, outH: H, outW: W, act: act(clo, chi), macs: convMacs, fusedInto: 'stem3x3_block' });
      layers.push({ name: conv, op: 'conv3x3', H: cH, W: cW, Cin: cC, Cout: Cexp, stride: cStride, outH: H, outW: W });
      steps.push({
        op: 'ibottleneck', layers: [dw, project], H, W, Cin: Cexp, expand: false, Cexp, Cout, stride, padTop, padLeft, outH, outW,
        residual: false, S, cap, act: { expand: null, depthwise: act(dlo, dhi), project: act(plo, phi) }, macs: s.macs - convMacs, fusedInto: 'stem3x3_block',
      });
      layers.push({ name: dw, op: 'depthwise3x3', H, W, Cin: Cexp, Cout: Cexp, stride, outH, outW });
      layers.push({ name: project, op: 'conv1x1', H: outH, W: outW, Cin: Cexp, Cout, stride: 1, outH, outW });
    } else if (base === 'gemm') {
      const [M, K, N, , , , lo, hi, res] = a;
      steps.push({ op: 'gemm', layers: s.layers, M, K, N, residual: typeof res === 'object' ? res !== null : res !== 0, act: act(lo, hi), macs: s.macs });
      const side = Math.round(Math.sqrt(M));
      const dense = M === 1;
      layers.push({ name: s.layers[0], op: dense ? 'dense' : 'conv1x1', H: side, W: side, Cin: K, Cout: N, stride: 1, outH: side, outW: side });
    } else if (base === 'global_avgpool_nhwc_f32') {
      const [, HW, C] = a;
      steps.push({ op: 'avgpool', layers: s.layers, HW, C, macs: 0 });
      const side = Math.round(Math.sqrt(HW));
      layers.push({ name: s.layers[0], op: 'avgpool', H: side, W: side, Cin: C, Cout: C, stride: 1, outH: 1, outW: 1 });
    } else if (base === 'softmax_f32') {
      const [, n] = a;
      steps.push({ op: 'softmax', layers: s.layers, n, macs: 0 });
      layers.push({ name: s.layers[0], op: 'softmax', H: 1, W: 1, Cin: n, Cout: n, stride: 1, outH: 1, outW: 1 });
    } else if (base === 'add_f32') {
      const [, , n] = a;
      steps.push({ op: 'add', layers: s.layers, n, macs: 0 });
    } else {
      throw new Error(`${id}: no shape record for kernel ${s.kernel}`);
    }
  }
  return { id, macs: plan.macs, arenaBytes: plan.arenaBytes, steps, layers };
}

const out = {
  about:
    'Real layer shapes of MobileNetV1 1.0 224 and MobileNetV2 1.0 224 as the planner calls the kernels ' +
    '(src/plan.ts buildPlan, x86 variant). Generated by bench/make-shapes.mjs; read by bench/kernels.mjs. ' +
    '`steps`: one kernel call each (ibottleneck = fused (expand 1x1 ->) depthwise 3x3 -> project 1x1 (+ residual), ' +
    'with the planner\'s strip height S and window cap); `layers`: the same network layer by layer. ' +
    'act: the clamp after the op (relu6 = [0, 6], linear = none). MACs = multiply-adds.',
  models: [
    describe('mobilenet_v1_1.0_224', mobilenetV1()),
    describe('mobilenet_v2_1.0_224', mobilenetV2()),
  ],
};

// One step per line: readable and diff-friendly.
const lines = ['{', `  "about": ${JSON.stringify(out.about)},`, '  "models": ['];
out.models.forEach((m, i) => {
  lines.push('    {');
  lines.push(`      "id": ${JSON.stringify(m.id)}, "macs": ${m.macs}, "arenaBytes": ${m.arenaBytes},`);
  lines.push('      "steps": [');
  m.steps.forEach((s, j) => lines.push(`        ${JSON.stringify(s)}${j < m.steps.length - 1 ? ',' : ''}`));
  lines.push('      ],');
  lines.push('      "layers": [');
  m.layers.forEach((l, j) => lines.push(`        ${JSON.stringify(l)}${j < m.layers.length - 1 ? ',' : ''}`));
  lines.push('      ]');
  lines.push(`    }${i < out.models.length - 1 ? ',' : ''}`);
});
lines.push('  ]', '}', '');
const file = fileURLToPath(new URL('./shapes.json', import.meta.url));
writeFileSync(file, lines.join('\n'));
JSON.parse(lines.join('\n')); // sanity
for (const m of out.models) console.log(`${m.id}: ${m.steps.length} steps, ${m.layers.length} layers, ${(m.macs / 1e6).toFixed(1)} M MACs`);
console.log(`wrote ${file}`);
