// Latency of one run on a tiny 2-thread model (MobileNetV1 0.25 at 32x32, random weights) after
// different gaps: back to back, after a 15 ms sleep, after 2 or 15 ms of busy JavaScript on the
// calling thread. A tiny model shows the cost of waking and coordinating the threads that a
// MobileNet-size run hides. Medians of 60 alternations of run() and runSync() per pattern.
//   npm run build && node bench/threads-latency.mjs
import { load, mobilenetV1 } from '../dist/index.js';

const model = await load(mobilenetV1({ alpha: 0.25, inputSize: 32, classes: 10 }), { threads: 2 });
await model.threadsReady;
if (model.threads.count !== 2) throw new Error(`threads unavailable: ${model.threads.reason}`);
const x = new Float32Array(32 * 32 * 3).fill(0.5);
const busy = (ms) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (let i = 0; i < 100; i++) {
  await model.run(x);
  model.runSync(x);
}
const gaps = [['none', async () => {}], ['sleep 15 ms', () => sleep(15)], ['busy 2 ms', async () => busy(2)], ['busy 15 ms', async () => busy(15)]];
for (const [name, gap] of gaps) {
  const a = [];
  const b = [];
  for (let i = 0; i < 60; i++) {
    await gap();
    let t = performance.now();
    await model.run(x);
    a.push(performance.now() - t);
    await gap();
    t = performance.now();
    model.runSync(x);
    b.push(performance.now() - t);
  }
  console.log(`gap ${name.padEnd(12)} run() ${median(a).toFixed(3)} ms   runSync() ${median(b).toFixed(3)} ms`);
}
model.dispose();
