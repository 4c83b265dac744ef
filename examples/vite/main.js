import { load } from 'mobilenet-wasm';

// A sample picture shipped next to this example; Vite copies it into dist/assets.
const SAMPLE = new URL('../../samples/cat-photo.jpg', import.meta.url);

const $ = (id) => document.getElementById(id);

async function show(name, image) {
  document.body.dataset.state = 'busy';
  const t0 = performance.now();
  const top = await model.classify(image, { topK: 5 });
  const ms = performance.now() - t0;
  $('name').textContent = `${name}: ${ms.toFixed(1)} ms`;
  $('top').replaceChildren(...top.map(({ label, probability }) => {
    const li = document.createElement('li');
    li.dataset.label = label;
    li.dataset.probability = String(probability);
    li.textContent = `${label} ${(probability * 100).toFixed(2)} %`;
    return li;
  }));
  document.body.dataset.state = 'done';
}

const model = await load(); // the bundled model, fetched from the app's assets
await model.threadsReady;
const { count, reason } = model.threads;
document.body.dataset.threads = String(count);
$('info').textContent = `wasm build ${model.build}, kernels ${model.kernels}, ${count} thread${count > 1 ? 's' : ''}${reason ? ` (${reason})` : ''}`;

$('file').addEventListener('change', async (e) => {
  const file = e.target.files?.[0];
  if (file) await show(file.name, new Uint8Array(await file.arrayBuffer()));
});

const res = await fetch(SAMPLE);
await show('cat-photo.jpg (sample)', new Uint8Array(await res.arrayBuffer()));
