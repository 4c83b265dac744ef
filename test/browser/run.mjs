#!/usr/bin/env node
// Real-browser tests (npm run test:browser): Debian's Chromium, driven by playwright-core,
// against the demo page served by scripts/serve.mjs and the Vite example's production build.
//
// - the demo page, cross-origin isolated (COOP/COEP): loads the bundled model with threads,
//   classifies samples/cat-photo.jpg and samples/beach-trip-drawing.png through its file
//   input; labels must equal Node's (dist/index.js, threads: 1) and probabilities agree to 1e-5
// - classify() with ImageData, <canvas>, OffscreenCanvas, ImageBitmap and <img>, and its errors
// - the same page without COOP/COEP: one thread, and the reason says why
// - examples/vite built with Vite, served, opened: it fetches its copied wasm and model assets
//   and classifies the sample
//
// Needs `npm run build` first and Chromium at /usr/bin/chromium (or CHROMIUM_PATH).
// Ends with "N passed, M failed"; exits non-zero on any failure.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SAMPLES = ['cat-photo.jpg', 'beach-trip-drawing.png'];
const TOLERANCE = 1e-5;
const TIMEOUT = 90_000;

let passed = 0;
let failed = 0;
const log = (s) => console.log(s);

async function check(name, fn) {
  const t0 = performance.now();
  try {
    const note = await fn();
    passed++;
    log(`ok   ${name} (${Math.round(performance.now() - t0)} ms)${note ? `: ${note}` : ''}`);
  } catch (e) {
    failed++;
    log(`FAIL ${name}\n     ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Same labels in the same order, probabilities within TOLERANCE. Returns the largest difference. */
function compareTop(got, want, what) {
  assert(Array.isArray(got) && got.length === want.length, `${what}: ${got?.length} results, expected ${want.length}`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    assert(got[i].label === want[i].label,
      `${what}: #${i + 1} is ${got[i].label}, Node says ${want[i].label} (got ${fmt(got)}; Node ${fmt(want)})`);
    const d = Math.abs(got[i].probability - want[i].probability);
    worst = Math.max(worst, d);
    assert(d <= TOLERANCE, `${what}: ${want[i].label} ${got[i].probability} vs Node ${want[i].probability} (|diff| ${d.toExponential(2)} > ${TOLERANCE})`);
  }
  return worst;
}

const fmt = (top) => top.map((p) => `${p.label} ${(p.probability * 100).toFixed(3)}%`).join(', ');

// ---------------------------------------------------------------------------------------
const dog = setTimeout(() => {
  log('test/browser/run.mjs: timed out after 10 minutes');
  log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 600_000);
dog.unref();

let browser = null;
let profile = null;
const servers = [];

try {
  await main();
} catch (e) {
  failed++;
  log(`FAIL setup\n     ${String(e?.stack ?? e).split('\n').slice(0, 8).join('\n     ')}`);
} finally {
  await browser?.close().catch(() => undefined);
  for (const s of servers) await s.close().catch(() => undefined);
  if (profile) rmSync(profile, { recursive: true, force: true });
}
log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);

async function main() {
  const bundle = join(ROOT, 'dist', 'browser.js');
  if (!existsSync(bundle) || !existsSync(join(ROOT, 'dist', 'index.js'))) {
    throw new Error('dist/browser.js or dist/index.js is missing: run `npm run build` first');
  }
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  const { chromium } = await import('playwright-core');
  const { serve } = await import('../../scripts/serve.mjs');
  mkdirSync(ARTIFACTS, { recursive: true });

  await check('dist/browser.js imports nothing bare (only node: modules, dynamically)', () => {
    const code = readFileSync(bundle, 'utf8');
    const specs = [
      ...code.matchAll(/\bimport\s*\(\s*["'`]([^"'`]+)["'`]\s*\)/g),
      ...code.matchAll(/\bfrom\s*["']([^"']+)["']/g),
      ...code.matchAll(/\bimport\s*["']([^"']+)["']/g),
    ].map((m) => m[1]);
    const bad = specs.filter((s) => !/^(node:|\.{0,2}\/)/.test(s));
    assert(bad.length === 0, `bare or unexpected imports: ${bad.join(', ')}`);
    assert(!/\bfrom\s*["']node:/.test(code), 'a static import of a node: module');
    return `${(code.length / 1024).toFixed(0)} KiB, dynamic imports: ${[...new Set(specs)].join(', ')}`;
  });

  // Node's answers, one thread (threads are bit-identical anyway).
  const lib = await import('../../dist/index.js');
  const nodeModel = await lib.load(undefined, { threads: 1 });
  const expected = {};
  for (const name of SAMPLES) expected[name] = await nodeModel.classify(join(ROOT, 'samples', name), { topK: 5 });
  log(`     Node (${nodeModel.build}, ${nodeModel.kernels}): ${SAMPLES.map((n) => `${n}: ${expected[n][0].label}`).join(', ')}`);
  nodeModel.dispose();

  // A fresh profile directory per run (removed at the end): no cache, no state from before.
  profile = mkdtempSync(join(tmpdir(), 'mobilenet-wasm-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1100, height: 800 },
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  browser = context;

  const isolated = await serve({ port: 0, isolation: true });
  servers.push(isolated);
  const plain = await serve({ port: 0, isolation: false });
  servers.push(plain);

  // ---- the demo page, cross-origin isolated --------------------------------------------
  // Threads default to the core count: on a one-core machine ask for two explicitly.
  const probe = await context.newPage();
  const cores = await probe.evaluate(() => navigator.hardwareConcurrency);
  await probe.close();
  const page = await openDemo(context, `${isolated.url}/examples/browser/${cores < 2 ? '?threads=2' : ''}`);
  await check('demo page (COOP/COEP): model loads, cross-origin isolated, threads > 1', async () => {
    const rt = await runtimeInfo(page.page);
    page.assertClean();
    assert(rt.isolated === true, 'crossOriginIsolated is false although COOP/COEP were sent');
    assert(rt.build === 'simd' || rt.build === 'relaxed', `build ${rt.build}`);
    assert(rt.kernels === 'x86' || rt.kernels === 'arm', `kernels ${rt.kernels}`);
    assert(rt.threads > 1, `threads ${rt.threads} (reason: ${rt.reason || 'none'}; cores ${rt.cores})`);
    assert(!rt.reason, `a fallback reason is shown: ${rt.reason}`);
    const wasm = page.responses.filter((r) => r.url.endsWith('.wasm'));
    assert(wasm.length > 0 && wasm.every((r) => r.status === 200 && r.type === 'application/wasm'),
      `wasm responses: ${JSON.stringify(wasm)}`);
    return `build ${rt.build}, kernels ${rt.kernels}, ${rt.threads} threads, loaded in ${rt.load}`;
  });

  for (const name of SAMPLES) {
    await check(`demo page (threads): ${name} through the file input matches Node to ${TOLERANCE}`, async () => {
      const { top, latency } = await classifyThroughUi(page.page, join(ROOT, 'samples', name));
      page.assertClean();
      const worst = compareTop(top, expected[name], name);
      return `${fmt(top.slice(0, 2))}; max |diff| ${worst.toExponential(1)}; ${latency}`;
    });
  }

  await check('demo page screenshot', async () => {
    const path = join(ARTIFACTS, 'browser-demo.png');
    await page.page.screenshot({ path, fullPage: true });
    return 'test/artifacts/browser-demo.png';
  });

  await check('classify() takes ImageData, <canvas>, OffscreenCanvas and ImageBitmap (same pixels, same result)', async () => {
    const r = await page.page.evaluate(async () => {
      const { model, lib } = globalThis.demo;
      const bytes = new Uint8Array(await (await fetch('../../samples/cat-photo.jpg')).arrayBuffer());
      const rgba = await lib.decodeImage(bytes);
      const ref = await model.classify(bytes, { topK: 5 });
      const imageData = new ImageData(new Uint8ClampedArray(rgba.data), rgba.width, rgba.height);
      const canvas = document.createElement('canvas');
      canvas.width = rgba.width;
      canvas.height = rgba.height;
      canvas.getContext('2d').putImageData(imageData, 0, 0);
      const offscreen = new OffscreenCanvas(rgba.width, rgba.height);
      offscreen.getContext('2d').putImageData(imageData, 0, 0);
      const bitmap = await createImageBitmap(imageData);
      const out = { ref };
      for (const [k, v] of Object.entries({ imageData, canvas, offscreen, bitmap })) out[k] = await model.classify(v, { topK: 5 });
      return out;
    });
    for (const k of ['imageData', 'canvas', 'offscreen', 'bitmap']) {
      assert(JSON.stringify(r[k]) === JSON.stringify(r.ref), `${k}: ${fmt(r[k])} differs from the bytes' ${fmt(r.ref)}`);
    }
    return fmt(r.ref.slice(0, 2));
  });

  await check('classify() takes an <img> (decoded by the browser: same top class, close probabilities)', async () => {
    const r = await page.page.evaluate(async () => {
      const { model } = globalThis.demo;
      const img = new Image();
      img.src = '../../samples/cat-photo.jpg'; // not awaited: classify() waits for it
      return model.classify(img, { topK: 5 });
    });
    const want = expected['cat-photo.jpg'];
    assert(r[0].label === want[0].label, `top class ${r[0].label}, Node ${want[0].label}`);
    const d = Math.max(...want.map((w) => Math.abs(w.probability - r.find((x) => x.label === w.label).probability)));
    assert(d < 0.02, `probabilities differ by ${d} (browser JPEG decoder vs jpeg-js)`);
    return `${fmt(r.slice(0, 2))}; max |diff| vs jpeg-js ${d.toExponential(1)}`;
  });

  await check('classify() rejects a broken <img> (ImageDecodeError) and a closed ImageBitmap (InputError)', async () => {
    const r = await page.page.evaluate(async () => {
      const { model } = globalThis.demo;
      const names = [];
      const img = new Image();
      img.src = 'data:image/png;base64,AAAA';
      try { await model.classify(img); names.push('resolved'); } catch (e) { names.push(e.name); }
      const bitmap = await createImageBitmap(new ImageData(4, 4));
      bitmap.close();
      try { await model.classify(bitmap); names.push('resolved'); } catch (e) { names.push(e.name); }
      const after = await model.classify(new ImageData(8, 8)); // still usable
      return { names, after: after.length };
    });
    assert(r.names[0] === 'ImageDecodeError', `broken <img>: ${r.names[0]}`);
    assert(r.names[1] === 'InputError', `closed ImageBitmap: ${r.names[1]}`);
    assert(r.after === 3, 'the model is not usable after the errors');
  });
  await page.page.close();

  // ---- the same page without COOP/COEP ---------------------------------------------------
  const lone = await openDemo(context, `${plain.url}/examples/browser/`);
  await check('demo page without COOP/COEP: one thread, the reason shown', async () => {
    const rt = await runtimeInfo(lone.page);
    lone.assertClean();
    assert(rt.isolated === false, 'crossOriginIsolated is true without COOP/COEP');
    assert(rt.threads === 1, `threads ${rt.threads}`);
    assert(/cross-origin isolat|SharedArrayBuffer/i.test(rt.reason), `reason: ${JSON.stringify(rt.reason)}`);
    assert(await lone.page.isVisible('#rt-reason'), 'the reason is not visible on the page');
    return rt.reason;
  });
  await check(`demo page (one thread): cat-photo.jpg matches Node to ${TOLERANCE}`, async () => {
    const { top, latency } = await classifyThroughUi(lone.page, join(ROOT, 'samples', 'cat-photo.jpg'));
    lone.assertClean();
    return `max |diff| ${compareTop(top, expected['cat-photo.jpg'], 'cat-photo.jpg').toExponential(1)}; ${latency}`;
  });
  await lone.page.screenshot({ path: join(ARTIFACTS, 'browser-demo-one-thread.png'), fullPage: true });
  await lone.page.close();

  // ---- the Vite example: build, serve dist/, open -----------------------------------------
  let viteServer = null;
  await check('examples/vite builds with Vite (wasm, model and worker copied to dist/assets)', async () => {
    const { build } = await import('vite');
    const root = join(ROOT, 'examples', 'vite');
    rmSync(join(root, 'dist'), { recursive: true, force: true });
    await build({ root, configFile: join(root, 'vite.config.js'), logLevel: 'error' });
    const html = readFileSync(join(root, 'dist', 'index.html'), 'utf8');
    assert(html.includes('/assets/'), 'dist/index.html has no script asset');
    const { readdirSync } = await import('node:fs');
    const assets = readdirSync(join(root, 'dist', 'assets'));
    for (const re of [/^mobilenet-.*\.wasm$/, /^mobilenet-threads-.*\.wasm$/, /^nsfwjs-mobilenet-v2-.*\.mnw$/, /^worker-.*\.js$/]) {
      assert(assets.some((a) => re.test(a)), `no asset matching ${re} in ${assets.join(', ')}`);
    }
    viteServer = await serve({ port: 0, root: join(root, 'dist'), isolation: true });
    servers.push(viteServer);
    return `${assets.length} assets`;
  });
  if (viteServer) {
    await check('examples/vite production build runs in Chromium: loads the model, threads, classifies like Node', async () => {
      const p = await openPage(context, `${viteServer.url}/`);
      await p.page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: TIMEOUT });
      p.assertClean();
      const r = await p.page.evaluate(() => ({
        info: document.getElementById('info').textContent,
        threads: Number(document.body.dataset.threads),
        top: [...document.querySelectorAll('#top li')].map((li) => ({ label: li.dataset.label, probability: Number(li.dataset.probability) })),
      }));
      const fetched = p.responses.filter((x) => /\.(wasm|mnw)$/.test(x.url));
      assert(fetched.some((x) => x.url.endsWith('.mnw') && x.status === 200), `model not fetched: ${JSON.stringify(fetched)}`);
      assert(fetched.every((x) => x.status === 200), `failed asset fetches: ${JSON.stringify(fetched)}`);
      assert(r.threads > 1, `threads ${r.threads}: ${r.info}`);
      const worst = compareTop(r.top, expected['cat-photo.jpg'], 'vite: cat-photo.jpg');
      await p.page.screenshot({ path: join(ARTIFACTS, 'vite-example.png'), fullPage: true });
      await p.page.close();
      return `${r.info}; max |diff| ${worst.toExponential(1)}`;
    });
  }
}

// ---------------------------------------------------------------------------------------

/** A page with its console errors, page errors, failed requests and responses recorded. */
async function openPage(context, url) {
  const page = await context.newPage();
  const problems = [];
  const responses = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => responses.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] }));
  await page.goto(url);
  return {
    page,
    responses,
    assertClean() {
      // Fetches of broken images in the error test are expected; nothing else is.
      const real = problems.filter((p) => !p.includes('data:image/png;base64,AAAA'));
      assert(real.length === 0, real.join('\n'));
    },
  };
}

async function openDemo(context, url) {
  const p = await openPage(context, url);
  await p.page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: TIMEOUT });
  return p;
}

function runtimeInfo(page) {
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    message: document.getElementById('message').textContent,
    isolated: globalThis.crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    build: document.getElementById('rt-build').dataset.value,
    kernels: document.getElementById('rt-kernels').dataset.value,
    threads: Number(document.getElementById('rt-threads').dataset.count),
    reason: document.getElementById('rt-reason').dataset.reason ?? '',
    load: document.getElementById('rt-load').textContent,
  }));
}

/** Sets the file input, waits for the result list, returns it with the latency line. */
async function classifyThroughUi(page, file) {
  const state = await page.evaluate(() => document.body.dataset.state);
  assert(state !== 'error', `the page shows an error: ${await page.textContent('#message')}`);
  // Mark the current result so the wait below sees the new one.
  await page.evaluate(() => { document.body.dataset.state = 'submitted'; });
  await page.setInputFiles('#file', file);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: TIMEOUT });
  const r = await page.evaluate(() => ({
    state: document.body.dataset.state,
    message: document.getElementById('message').textContent,
    latency: document.getElementById('latency').textContent,
    top: [...document.querySelectorAll('#top li')].map((li) => ({ label: li.dataset.label, probability: Number(li.dataset.probability) })),
  }));
  assert(r.state === 'done', `the page says: ${r.message}`);
  return r;
}
