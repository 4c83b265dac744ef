#!/usr/bin/env node
// Builds weights/nsfwjs-mobilenet-v2.mnw, the model bundled with the package, from the
// nsfwjs mobilenet_v2 files in node_modules. The weights keep their uint8 storage, so the
// file is about as large as nsfwjs's own (2.6 MB) and values are bit-identical to what
// TF.js dequantizes.
//
// Usage: npx tsc -p tsconfig.json && node scripts/make-default-model.mjs [out.mnw]

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { convertPath } from '../dist/convert/node.js';
import { decodeModel, encodeModel, inferShapes } from '../dist/format.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// nsfwjs's exports map hides its files from require.resolve, hence the direct path.
const input = join(root, 'node_modules/nsfwjs/dist/models/mobilenet_v2/model.min.js');
const output = process.argv[2] ?? join(root, 'weights/nsfwjs-mobilenet-v2.mnw');

const src = await convertPath(input, { nsfwjs: true });
const bytes = encodeModel(src);
// Read it back: a file that does not decode must never be shipped.
const check = decodeModel(bytes);
await mkdir(dirname(output), { recursive: true });
await writeFile(output, bytes);

const ops = {};
for (const l of check.desc.layers) {
  const key = l.op === 'conv2d' ? `conv2d ${l.kernel.join('x')}` : l.op;
  ops[key] = (ops[key] ?? 0) + 1;
}
const values = check.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
const dtypes = [...new Set(check.tensors.map((t) => t.dtype))].join(', ');
const shapes = inferShapes(check.desc);
console.log(`wrote ${relative(process.cwd(), output)}: ${bytes.byteLength} bytes`);
console.log(`source   ${check.desc.meta?.source} (${check.desc.meta?.license})`);
console.log(`layers   ${check.desc.layers.length}: ${Object.entries(ops).map(([k, v]) => `${v} ${k}`).join(', ')}`);
console.log(`tensors  ${check.tensors.length} (${dtypes}), ${values} values`);
console.log(`input    [${check.desc.inputShape}] -> output "${check.desc.output}" [${shapes.get(check.desc.output)}]`);
console.log(`labels   ${check.desc.labels?.join(', ')}`);
