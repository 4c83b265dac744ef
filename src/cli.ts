#!/usr/bin/env node
// mobilenet-wasm command line: classify images, convert models, describe a model.

import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { load, readModel, encodeModel, MobileNetWasmError } from './index.js';
import { EXPORT_ONNX_USAGE } from './onnx/cli.js';

const USAGE = `usage:
  mobilenet-wasm classify <image...> [--top k] [--json] [--model file.mnw]
      JPEG/PNG files; prints the top k classes (default 3) of the bundled model or --model.
  mobilenet-wasm convert <model.json | model.min.js> <out.mnw> [--labels a,b,c]
      converts a TF.js layers model (Keras MobileNet V1/V2 family) to the .mnw format.
  mobilenet-wasm info [file.mnw]
      prints a model's layers, sizes and memory plan.
${EXPORT_ONNX_USAGE}`;

async function classify(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { top: { type: 'string', default: '3' }, json: { type: 'boolean', default: false }, model: { type: 'string' } },
  });
  if (positionals.length === 0) throw new UsageError('classify needs at least one image file');
  const topK = Number(values.top);
  const t0 = performance.now();
  const model = await load(values.model);
  const loadMs = performance.now() - t0;
  const results = [];
  for (const file of positionals) {
    const t = performance.now();
    const predictions = await model.classify(file, { topK });
    results.push({ file, predictions, ms: performance.now() - t });
  }
  model.dispose();
  if (values.json) {
    console.log(JSON.stringify({ model: values.model ?? 'bundled nsfwjs MobileNetV2', build: model.build, results }, null, 2));
    return;
  }
  console.log(`model: ${values.model ?? 'bundled nsfwjs MobileNetV2 (224x224)'}, wasm build: ${model.build}, loaded in ${loadMs.toFixed(0)} ms`);
  for (const r of results) {
    console.log(`\n${r.file}  (${r.ms.toFixed(1)} ms incl. decode)`);
    for (const p of r.predictions) {
      console.log(`  ${p.label.padEnd(12)} ${(p.probability * 100).toFixed(2).padStart(6)} %`);
    }
  }
}

async function convert(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { labels: { type: 'string' } } });
  if (positionals.length !== 2) throw new UsageError('convert needs <input> and <output>');
  const [input, output] = positionals;
  const { convertPath } = await import('./convert/node.js');
  const src = await convertPath(input, values.labels ? { labels: values.labels.split(',') } : {});
  const bytes = encodeModel(src);
  await writeFile(output, bytes);
  console.log(`wrote ${output}: ${bytes.byteLength} bytes, ${src.desc.layers.length} layers, ${src.tensors.length} tensors`);
}

async function info(args: string[]): Promise<void> {
  const src = await readModel(args[0]);
  const model = await load(src);
  const d = src.desc;
  console.log(`family ${d.family}, input [${d.inputShape.join(', ')}], output [${model.outputShape.join(', ')}]`);
  console.log(`layers ${d.layers.length}, tensors ${src.tensors.length}, ${(model.macs / 1e6).toFixed(1)} M multiply-adds`);
  console.log(`labels ${(d.labels ?? []).join(', ') || '(none)'}`);
  console.log(`memory ${JSON.stringify(model.memory)}`);
  for (const [k, v] of Object.entries(d.meta ?? {})) console.log(`${k}: ${v}`);
  model.dispose();
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'classify':
        await classify(rest);
        return 0;
      case 'convert':
        await convert(rest);
        return 0;
      case 'info':
        await info(rest);
        return 0;
      case 'export-onnx':
        await (await import('./onnx/cli.js')).exportOnnxCommand(rest);
        return 0;
      case undefined:
      case '-h':
      case '--help':
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e instanceof TypeError && 'code' in e)) {
      console.error(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof MobileNetWasmError) {
      console.error(`${e.name}: ${e.message}`);
      return 1;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      console.error((e as Error).message); // a file-system error: the message names the path
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
