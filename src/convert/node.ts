// Node-only file reading for the converters: TF.js `model.json` + binary shards, and the
// JS-wrapped form nsfwjs ships (`model.min.js` + `group1-shard1of1.min.js`).
//
// The JS-wrapped files are UMD bundles: running them is the only robust way to get their
// value. We evaluate them with node:vm in a fresh, empty context that provides only
// `module` and `exports` (no require, no process, no timers, string code generation off)
// and a time limit. node:vm is not a security boundary, and it does not need to be here:
// this is a converter run on a file the user chose, exactly as if they had imported it,
// and nothing is fetched from the network.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import vm from 'node:vm';

import type { ModelSource, Preprocess } from '../desc.js';
import { ModelFormatError } from '../errors.js';
import { concatBytes } from '../format.js';
import { convertTfjsLayers, type ConvertOptions } from './tfjs-layers.js';

export interface TfjsModelFiles {
  modelJson: unknown;
  /** All weight shards concatenated in manifest order. */
  weightData: Uint8Array;
}

export interface ConvertPathOptions extends ConvertOptions {
  /**
   * Treat the input as nsfwjs's mobilenet_v2 (labels, preprocessing and provenance
   * defaults). Detected from the topology when not given; `false` disables detection.
   */
  nsfwjs?: boolean;
}

export const NSFWJS_LABELS = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
/** nsfwjs classify(): pixels / 255, then tf.image.resizeBilinear(..., alignCorners = true). */
export const NSFWJS_PREPROCESS: Preprocess = { resize: 'bilinear', alignCorners: true, scale: 1 / 255, offset: 0 };

const VM_TIMEOUT_MS = 30_000;

/**
 * Reads a TF.js layers model from `model.json` (or a directory containing one) or from
 * nsfwjs's `model.min.js`.
 */
export async function readTfjsModelDir(pathToModelJsonOrMinJs: string): Promise<TfjsModelFiles> {
  const modelPath = locateModelFile(pathToModelJsonOrMinJs);
  const dir = dirname(modelPath);
  const wrapped = modelPath.endsWith('.js');
  const text = await readFile(modelPath, 'utf8');
  const modelJson = wrapped ? evaluateUmd(text, modelPath) : parseJson(text, modelPath);
  if (!isJson(modelJson) || !Array.isArray(modelJson.weightsManifest)) {
    throw new ModelFormatError(`${modelPath} is not a TF.js model (no weightsManifest)`);
  }
  const shards: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    const paths = isJson(group) && Array.isArray(group.paths) ? group.paths : [];
    for (const p of paths) {
      if (typeof p !== 'string') throw new ModelFormatError(`${modelPath}: weightsManifest path ${JSON.stringify(p)} is not a string`);
      shards.push(await readShard(dir, p, wrapped));
    }
  }
  return { modelJson, weightData: concatBytes(shards) };
}

/** Converts a model file (see readTfjsModelDir) to a ModelSource. */
export async function convertPath(input: string, options: ConvertPathOptions = {}): Promise<ModelSource> {
  const { modelJson, weightData } = await readTfjsModelDir(input);
  const { nsfwjs, ...rest } = options;
  const isNsfwjs = nsfwjs ?? looksLikeNsfwjsMobilenetV2(modelJson);
  const defaults: ConvertOptions = isNsfwjs
    ? {
        family: 'mobilenet_v2',
        labels: NSFWJS_LABELS,
        preprocess: NSFWJS_PREPROCESS,
        meta: {
          source: `nsfwjs${nsfwjsVersion(input)} dist/models/mobilenet_v2`,
          license: 'MIT',
          // MIT asks for the notice to travel with substantial copies: the weights are one.
          copyright: 'Copyright (c) 2019 Infinite Red, Inc.',
        },
      }
    : {};
  return convertTfjsLayers(modelJson, weightData, {
    ...defaults,
    ...dropUndefined(rest),
    meta: { ...defaults.meta, ...rest.meta },
  });
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function locateModelFile(path: string): string {
  const abs = resolve(path);
  if (existsSync(abs) && statSync(abs).isDirectory()) {
    for (const name of ['model.json', 'model.min.js']) {
      if (existsSync(join(abs, name))) return join(abs, name);
    }
    throw new ModelFormatError(`${abs} contains neither model.json nor model.min.js`);
  }
  return abs;
}

/**
 * A shard named `p` in the manifest. The JS-wrapped form stores it as `<p>.min.js`; a
 * plain binary file of that name is preferred when present.
 */
async function readShard(dir: string, p: string, wrapped: boolean): Promise<Uint8Array> {
  const candidates = wrapped ? [`${p}.min.js`, `${p}.js`, p] : [p, `${p}.min.js`, `${p}.js`];
  const found = candidates.map((c) => join(dir, c)).find((c) => existsSync(c));
  if (!found) throw new ModelFormatError(`weight shard "${p}" named in the manifest was not found in ${dir}`);
  if (!found.endsWith('.js')) return new Uint8Array(await readFile(found));
  const value = evaluateUmd(await readFile(found, 'utf8'), found);
  if (typeof value !== 'string') throw new ModelFormatError(`${found} does not export a base64 string`);
  return decodeBase64(value, found);
}

/** Runs a UMD bundle and returns its `module.exports` as plain JSON data. */
function evaluateUmd(source: string, file: string): unknown {
  const module = { exports: {} as unknown };
  const context = vm.createContext(
    { module, exports: module.exports },
    { codeGeneration: { strings: false, wasm: false } },
  );
  try {
    vm.runInContext(source, context, { filename: basename(file), timeout: VM_TIMEOUT_MS });
  } catch (e) {
    throw new ModelFormatError(`evaluating ${file} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  // A JSON round trip leaves plain data from this realm: no functions, no foreign prototypes.
  const exported: unknown = module.exports;
  if (typeof exported === 'string') return exported;
  try {
    return JSON.parse(JSON.stringify(exported)) as unknown;
  } catch (e) {
    throw new ModelFormatError(`${file} does not export JSON data: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function decodeBase64(text: string, file: string): Uint8Array {
  const b64 = text.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '');
  // Buffer.from silently skips invalid characters; a damaged shard must fail loudly.
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
    throw new ModelFormatError(`${file} does not contain valid base64 data`);
  }
  const buf = Buffer.from(b64, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ModelFormatError(`${file} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * nsfwjs's mobilenet_v2: the Keras 2.2.4 MobileNetV2 with a 256-128-5 dense head, 162
 * layers. Checked by structure rather than file path so copies are recognized too.
 */
export function looksLikeNsfwjsMobilenetV2(modelJson: unknown): boolean {
  if (!isJson(modelJson) || !isJson(modelJson.modelTopology)) return false;
  const mc = modelJson.modelTopology.model_config;
  const layers = isJson(mc) && isJson(mc.config) ? mc.config.layers : undefined;
  if (!Array.isArray(layers) || layers.length !== 162) return false;
  const last = layers[layers.length - 1] as unknown;
  return (
    isJson(last) &&
    last.class_name === 'Dense' &&
    isJson(last.config) &&
    last.config.units === 5 &&
    layers.some((l: unknown) => isJson(l) && l.name === 'block_16_project')
  );
}

/** "@4.4.0" when the file sits inside an installed nsfwjs package, else "". */
function nsfwjsVersion(input: string): string {
  let dir = resolve(input);
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const json = JSON.parse(readFileSync(pkg, 'utf8')) as unknown;
        if (isJson(json) && json.name === 'nsfwjs' && typeof json.version === 'string') return `@${json.version}`;
      } catch {
        // An unreadable package.json only costs the version in the provenance string.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return '';
}

function isJson(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
