// `mobilenet-wasm export-onnx <out.onnx> [--model file.mnw] [--opset n]` (Node only).

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { readModel } from '../index.js';
import { DEFAULT_OPSET, exportOnnx } from './export.js';

/** The command's usage lines, for the CLI's help text. */
export const EXPORT_ONNX_USAGE = `  mobilenet-wasm export-onnx <out.onnx> [--model file.mnw] [--opset n]
      writes the bundled model (or --model) as ONNX: batch-norm folded, float32 weights,
      NHWC input "input" [1,H,W,3] like run(), output "output"; opset ${DEFAULT_OPSET} by default.`;

/**
 * Runs `export-onnx`. Bad arguments reject with InputError (or parseArgs's TypeError with a
 * `code`, for unknown options); an unreadable model with ModelFormatError.
 */
export async function exportOnnxCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { model: { type: 'string' }, opset: { type: 'string' } },
  });
  if (positionals.length !== 1) {
    throw new InputError(`export-onnx needs exactly one output path (<out.onnx>), got ${positionals.length}`);
  }
  const [output] = positionals;
  const opset = values.opset === undefined ? DEFAULT_OPSET : Number(values.opset);
  const src = values.model === undefined ? await readModel() : await readModel(values.model);
  const t0 = performance.now();
  const bytes = exportOnnx(src, { opset });
  const ms = performance.now() - t0;
  try {
    await writeFile(output, bytes);
  } catch (e) {
    throw new InputError(`cannot write ${output}: ${(e as Error).message}`);
  }
  const d = src.desc;
  console.log(
    `wrote ${output}: ${bytes.byteLength} bytes, ONNX opset ${opset}, ${d.family} ` +
      `from ${values.model ?? 'the bundled model'}, input "input" NHWC [${d.inputShape.join(', ')}], ` +
      `output "output" (${ms.toFixed(0)} ms)`,
  );
}
