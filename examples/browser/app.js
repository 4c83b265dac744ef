// The demo page: loads the bundled model, classifies a picked, dropped or sample image with
// model.classify(), and shows the top 5, the latency and what runs (build, kernels, threads).
// Plain ES module, no framework: the library is imported by a relative URL.
import { load, MobileNetWasmError } from '../../dist/browser.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const options = {};
if (params.has('threads')) options.threads = Number(params.get('threads'));
if (params.has('build')) options.build = params.get('build');
if (params.has('kernels')) options.kernels = params.get('kernels');

const fmtMs = (ms) => (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString()) + ' ms';
const setState = (s) => (document.body.dataset.state = s);

function showError(e) {
  setState('error');
  const m = $('message');
  m.className = 'message error';
  m.textContent = e instanceof MobileNetWasmError ? `${e.name}: ${e.message}` : `Error: ${e?.message ?? e}`;
  console.error(e);
}

function showThreads(model) {
  const t = model.threads;
  const dd = $('rt-threads');
  dd.textContent = t.count === t.requested ? String(t.count) : `${t.count} (of ${t.requested} requested)`;
  dd.dataset.count = String(t.count);
  const reason = $('rt-reason');
  reason.hidden = !t.reason;
  reason.textContent = t.reason ? `One thread: ${t.reason}.` : '';
  reason.dataset.reason = t.reason ?? '';
}

let model;
let busy = Promise.resolve();

async function start() {
  const t0 = performance.now();
  model = await load(undefined, options);
  const loadMs = performance.now() - t0;
  const [, h, w] = model.inputShape;
  $('rt-model').textContent = `nsfwjs MobileNetV2, ${w}×${h}, ${model.labels.length} classes`;
  $('rt-build').textContent = model.build;
  $('rt-build').dataset.value = model.build;
  $('rt-kernels').textContent = model.kernels;
  $('rt-kernels').dataset.value = model.kernels;
  $('rt-load').textContent = fmtMs(loadMs);
  $('rt-threads').textContent = model.threads.count > 1 ? `starting ${model.threads.count}…` : '1';
  if (model.threads.count === 1) showThreads(model);
  await model.threadsReady;
  showThreads(model);
  document.body.dataset.threads = String(model.threads.count);
  $('message').textContent = 'Ready: pick an image.';
  setState('ready');
  // For tests and the console: the model and the library.
  globalThis.demo = { model, lib: await import('../../dist/browser.js') };
}

const isJpegOrPng = (b) =>
  (b[0] === 0xff && b[1] === 0xd8) || (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47);

/** Classifies a File/Blob; JPEG/PNG bytes go to the library's decoder, others to an <img>. */
async function classifyBlob(blob, name) {
  await ready;
  setState('busy');
  $('message').className = 'message';
  $('message').textContent = `Classifying ${name}…`;
  const url = URL.createObjectURL(blob);
  const img = $('preview-img');
  img.src = url;
  $('preview-name').textContent = name;
  $('preview').hidden = false;
  try {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let input;
    let decoder;
    if (isJpegOrPng(bytes)) {
      input = bytes;
      decoder = 'decoded by mobilenet-wasm';
    } else {
      await img.decode();
      input = img;
      decoder = 'decoded by the browser';
    }
    const t0 = performance.now();
    const top = await model.classify(input, { topK: 5 });
    const ms = performance.now() - t0;
    render(top);
    const lat = $('latency');
    lat.hidden = false;
    lat.textContent = `classify(): ${fmtMs(ms)} (decode, resize and inference, ${decoder}; ${model.threads.count} thread${model.threads.count > 1 ? 's' : ''})`;
    lat.dataset.ms = String(ms);
    $('message').textContent = `${name}: ${top[0].label}`;
    setState('done');
  } catch (e) {
    $('top').replaceChildren();
    showError(e);
  }
}

function render(top) {
  const list = $('top');
  list.replaceChildren(
    ...top.map(({ label, probability }) => {
      const li = document.createElement('li');
      li.dataset.label = label;
      li.dataset.probability = String(probability);
      const pct = (probability * 100).toFixed(2);
      li.innerHTML = '<span class="label"></span><span class="bar"><span></span></span><span class="pct"></span>';
      li.querySelector('.label').textContent = label;
      li.querySelector('.bar > span').style.width = `${Math.max(probability * 100, 0.3)}%`;
      li.querySelector('.pct').textContent = `${pct} %`;
      return li;
    }),
  );
}

function queue(fn) {
  busy = busy.then(fn, fn);
  return busy;
}

const ready = start().catch(showError);

$('file').addEventListener('change', (e) => {
  const file = e.target.files?.[0];
  if (file) queue(() => classifyBlob(file, file.name));
});

const drop = $('drop');
for (const ev of ['dragenter', 'dragover']) {
  drop.addEventListener(ev, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
}
for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) queue(() => classifyBlob(file, file.name));
});

for (const button of document.querySelectorAll('button[data-sample]')) {
  button.addEventListener('click', () =>
    queue(async () => {
      const name = button.dataset.sample;
      try {
        const res = await fetch(`../../samples/${name}`);
        if (!res.ok) throw new Error(`cannot fetch ${name}: HTTP ${res.status}`);
        await classifyBlob(await res.blob(), name);
      } catch (e) {
        showError(e);
      }
    }),
  );
}
