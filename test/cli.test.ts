// The command line as a user runs it: classify the bundled samples, convert the nsfwjs files,
// describe a model, and fail with a clear message and exit code on bad usage.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = (args: string[]) => spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });

describe('mobilenet-wasm CLI (dist/cli.js)', () => {
  it('classify prints the top classes of each image', () => {
    const r = cli(['classify', 'samples/cat-photo.jpg', 'samples/beach-trip-drawing.png', '--top', '2']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/cat-photo\.jpg[\s\S]*Neutral\s+9\d\.\d\d %/);
    expect(r.stdout).toMatch(/beach-trip-drawing\.png[\s\S]*Drawing\s+9\d\.\d\d %/);
  });
  it('classify --json gives machine-readable results', () => {
    const out = execFileSync(process.execPath, ['dist/cli.js', 'classify', 'samples/cat-photo.jpg', '--json', '--top', '5'], { encoding: 'utf8' });
    const j = JSON.parse(out) as { results: { file: string; predictions: { label: string; probability: number }[] }[] };
    expect(j.results[0].predictions).toHaveLength(5);
    expect(j.results[0].predictions[0].label).toBe('Neutral');
    const sum = j.results[0].predictions.reduce((a, p) => a + p.probability, 0);
    expect(sum).toBeCloseTo(1, 5);
  });
  it('convert turns the nsfwjs files into the same model as the bundled one', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'mnw-cli-')), 'nsfw.mnw');
    const r = cli(['convert', 'node_modules/nsfwjs/dist/models/mobilenet_v2/model.min.js', out]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/wrote .*nsfw\.mnw/);
    expect(Buffer.compare(readFileSync(out), readFileSync('weights/nsfwjs-mobilenet-v2.mnw'))).toBe(0);
    const info = cli(['info', out]);
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/299\.9 M multiply-adds/);
  });
  it('bad usage and bad files fail with a message, not a stack trace', () => {
    const none = cli(['classify']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/usage/);
    const missing = cli(['classify', 'samples/nope.jpg']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/ImageDecodeError: cannot read image samples\/nope\.jpg/);
    const badModel = cli(['classify', 'samples/cat-photo.jpg', '--model', 'samples/cat-photo.jpg']);
    expect(badModel.status).toBe(1);
    expect(badModel.stderr).toMatch(/ModelFormatError/);
    const unknown = cli(['frobnicate']);
    expect(unknown.status).toBe(2);
    const conv = cli(['convert', '/nonexistent/model.json', '/tmp/x.mnw']);
    expect(conv.status).toBe(1);
    expect(conv.stderr).not.toMatch(/at .*\.js:\d+/);
  });
});
