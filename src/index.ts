// Public API: `await load()` a model, `model.run(input)` or `model.classify(image)`, `dispose()`.

import type { ModelSource } from './desc.js';
import { ModelFormatError } from './errors.js';
import { decodeModel, useNativeCrc32, validateModel } from './format.js';
import { choose, createModel, warmKernels, type LoadOptions, type Model } from './model.js';
import { importOnnx, looksLikeOnnx } from './onnx/import.js';

export type { LoadOptions, MemoryReport, Prediction, ClassifyOptions, ImageInput } from './model.js';
export { Model, topClasses, DEFAULT_MAX_MEMORY_BYTES, MAX_DEFAULT_THREADS } from './model.js';
export * from './errors.js';
export type * from './desc.js';
export { encodeModel, decodeModel, validateModel, dequantize } from './format.js';
export { decodeImage, imageToInput, MAX_IMAGE_PIXELS, type RgbaImage } from './image.js';
export { mobilenetV1, mobilenetV2, type BuildOptions } from './builders.js';
export { exportOnnx, type ExportOnnxOptions } from './onnx/export.js';
export { importOnnx } from './onnx/import.js';
export type { WasmBuild } from './wasm.js';

/** Where a model comes from: a file path or URL, the bytes of a `.mnw` or `.onnx` file, or a ModelSource. */
export type ModelInput = string | URL | ArrayBuffer | Uint8Array | ModelSource;

/** The bundled default model: nsfwjs's MobileNetV2 (uint8 weights), see weights/README.md. */
export const DEFAULT_MODEL_URL = new URL('../weights/nsfwjs-mobilenet-v2.mnw', import.meta.url);

async function readBytes(source: string | URL): Promise<Uint8Array> {
  const url = source instanceof URL ? source : /^[a-z][a-z0-9+.-]*:\/\//i.test(source) ? new URL(source) : null;
  if (url && url.protocol !== 'file:') {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new ModelFormatError(`cannot fetch ${url.href}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new ModelFormatError(`cannot fetch ${url.href}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const { open } = await import('node:fs/promises');
  try {
    // One read of the known size: fs.readFile's chunked reads took ~20 ms for 2.7 MB.
    const file = await open(url ?? source, 'r');
    try {
      const { size } = await file.stat();
      const bytes = new Uint8Array(size);
      let at = 0;
      while (at < size) {
        const { bytesRead } = await file.read(bytes, at, size - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return at === size ? bytes : bytes.subarray(0, at);
    } finally {
      await file.close();
    }
  } catch (e) {
    throw new ModelFormatError(`cannot read model file ${String(source)}: ${(e as Error).message}`);
  }
}

/** Reads and validates a model without planning it. */
export async function readModel(source: ModelInput = DEFAULT_MODEL_URL): Promise<ModelSource> {
  if (typeof source === 'string' || source instanceof URL) return readModel(await readBytes(source));
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) {
    await useNativeCrc32();
    // Both decoders validate what they return (a second pass cost ~5 ms of cold JavaScript).
    return looksLikeOnnx(source) ? importOnnx(source) : decodeModel(source);
  }
  validateModel(source);
  return source;
}

/**
 * Loads a model: with no source, the bundled default (nsfwjs MobileNetV2, 224x224,
 * labels Drawing/Hentai/Neutral/Porn/Sexy). Rejects with ModelFormatError, ChecksumError,
 * UnsupportedModelError, EnvironmentError or OutOfMemoryError.
 */
export async function load(source?: ModelInput, options: LoadOptions | null = {}): Promise<Model> {
  const src = readModel(source);
  // Failures surface below, when src is awaited; until then it must not count as unhandled.
  src.catch(() => undefined);
  const choice = await choose(options ?? {});
  // While the file is read, and before planning: the kernels' warm-up (see warmup.ts).
  await warmKernels(choice);
  return createModel(await src, choice, options ?? {});
}
