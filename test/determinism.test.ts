// Same input -> bit-identical output: across runs, across loads, across thread counts and
// across processes (two `node -e` children running the dist build).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, mobilenetV2, type Model } from '../src/index.js';

const ROOT = join(__dirname, '..');
const run = promisify(execFile);

/** The input every check uses: mulberry32(42) uniform in [0, 1), the model's input size. */
const INPUT_JS = `
  const r = ((s) => () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; })(42);
  const x = Float32Array.from({ length: 224 * 224 * 3 }, () => r());`;
const input = new Function(`${INPUT_JS}; return x;`)() as Float32Array;

const sha = (a: Float32Array | string): string =>
  createHash('sha256').update(typeof a === 'string' ? a : new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** Runs the dist build in a fresh node process; prints the hashes of run() and classify(). */
async function child(options: string, flags: string[] = []): Promise<{ run: string; classify: string }> {
  const script = `
    import { createHash } from 'node:crypto';
    const { load } = await import(${JSON.stringify(join(ROOT, 'dist/index.js'))});
    ${INPUT_JS}
    const m = await load(undefined, ${options});
    await m.threadsReady;
    const out = await m.run(x);
    const probs = await m.classify(${JSON.stringify(join(ROOT, 'samples/cat-photo.jpg'))}, { topK: 5 });
    const h = (b) => createHash('sha256').update(b).digest('hex');
    console.log(JSON.stringify({ run: h(new Uint8Array(out.buffer)), classify: h(JSON.stringify(probs)) }));
    m.dispose();
    process.exit(0);`;
  const { stdout } = await run(process.execPath, [...flags, '--input-type=module', '-e', script], { cwd: ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop() as string);
}

/** Whether dist/ was built after the last change to src/ (npm test builds first; a lone vitest run may not). */
function distIsFresh(): boolean {
  const newest = (dir: string): number =>
    Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newest(join(dir, e.name)) : e.name.endsWith('.ts') ? statSync(join(dir, e.name)).mtimeMs : 0));
  return statSync(join(ROOT, 'dist/index.js')).mtimeMs >= newest(join(ROOT, 'src'));
}

describe('determinism', () => {
  let model: Model;
  let expected: Float32Array;
  beforeAll(async () => {
    model = await load(undefined, { threads: 1 });
    expected = await model.run(input);
  });
  afterAll(() => model.dispose());

  it('the same input gives bit-identical output on every run, whatever ran in between', async () => {
    const other = input.map((v) => 1 - v);
    for (let i = 0; i < 5; i++) {
      await model.run(i % 2 ? other : new Float32Array(input.length));
      expect(sha(await model.run(input))).toBe(sha(expected));
      expect(sha(model.runSync(input))).toBe(sha(expected));
    }
    // Concurrent runs are queued, and each still sees its own input.
    const outs = await Promise.all([model.run(input), model.run(other), model.run(input)]);
    expect(sha(outs[0])).toBe(sha(expected));
    expect(sha(outs[2])).toBe(sha(expected));
  });

  it('two loads of the same file give bit-identical output', async () => {
    const again = await load(new Uint8Array(readFileSync(join(ROOT, 'weights/nsfwjs-mobilenet-v2.mnw'))), { threads: 1 });
    expect(sha(await again.run(input))).toBe(sha(expected));
    again.dispose();
  });

  it('1, 2 and 3 compute threads give bit-identical output', async () => {
    for (const threads of [2, 3]) {
      const m = await load(undefined, { threads });
      await m.threadsReady;
      expect(m.threads.count, m.threads.reason).toBe(threads);
      expect(sha(await m.run(input))).toBe(sha(expected));
      expect(sha(m.runSync(input))).toBe(sha(expected));
      m.dispose();
    }
  });

  it('a model built in memory and its .mnw round trip give bit-identical output', async () => {
    const { encodeModel } = await import('../src/index.js');
    const src = mobilenetV2({ alpha: 0.35, inputSize: 96, classes: 7, seed: 9 });
    const x = input.subarray(0, 96 * 96 * 3);
    const a = await load(src, { threads: 1 });
    const b = await load(encodeModel(src), { threads: 1 });
    expect(sha(await a.run(x))).toBe(sha(await b.run(x)));
    a.dispose();
    b.dispose();
  });

  it('two processes running the dist build agree with each other and with this one', async () => {
    const [p1, p2] = await Promise.all([child('{ threads: 1 }'), child('{}')]);
    expect(p2).toEqual(p1);
    const probs = await model.classify(join(ROOT, 'samples/cat-photo.jpg'), { topK: 5 });
    const here = { run: sha(expected), classify: sha(JSON.stringify(probs)) };
    if (distIsFresh()) expect(p1).toEqual(here);
    else console.warn('dist/ is older than src/: skipping the in-process vs dist comparison (npm test rebuilds first)');
  });

  it('the relaxed-SIMD build is deterministic across processes too', async () => {
    // Relaxed SIMD may round differently from plain SIMD (fused multiply-add), but a given
    // runtime must give the same answer every time.
    const flags = ['--experimental-wasm-relaxed-simd'];
    let p1;
    try {
      p1 = await child("{ build: 'relaxed', threads: 1 }", flags);
    } catch (e) {
      console.warn(`relaxed build not runnable here: ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    const p2 = await child("{ build: 'relaxed', threads: 2 }", flags);
    expect(p2).toEqual(p1);
  });
});
