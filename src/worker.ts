// A compute thread: instantiates the shared-memory kernel module on the model's memory, then
// runs its share of every step each time the main thread bumps the generation counter,
// waiting for each step to complete before the next. All coordination is through Atomics on a
// small control block; messages are used only to start and to report each run's end.

import { CTL, runSteps, schedule, type ThreadInit } from './threads-shared.js';

interface Port {
  postMessage(m: unknown): void;
}

async function parent(): Promise<{ port: Port; onInit(cb: (m: ThreadInit) => void): void }> {
  const g = globalThis as unknown as { process?: { versions?: { node?: string } } };
  if (g.process?.versions?.node) {
    const { parentPort } = await import('node:worker_threads');
    if (!parentPort) throw new Error('worker.js must run as a worker thread');
    return { port: parentPort, onInit: (cb) => parentPort.once('message', cb) };
  }
  const self = globalThis as unknown as Port & { onmessage: ((e: { data: ThreadInit }) => void) | null };
  return {
    port: self,
    onInit: (cb) => {
      self.onmessage = (e) => {
        self.onmessage = null;
        cb(e.data);
      };
    },
  };
}

const hasWaitAsync = typeof (Atomics as unknown as { waitAsync?: unknown }).waitAsync === 'function';

function work(init: ThreadInit, port: Port): void {
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const exports = instance.exports as Record<string, (...a: number[]) => void>;
  const calls = init.steps.map((s) => {
    if (!s) return null;
    const fn = exports[s.kernel];
    return s.chunks.map((args) => () => fn(...args));
  });
  const ctl = new Int32Array(init.control);
  const plan = schedule(init.index, init.threads, init.chunks, init.syncAfter);
  port.postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, CTL.GEN, seen);
    const gen = Atomics.load(ctl, CTL.GEN);
    if (gen < 0) return; // disposed
    if (gen === seen) continue;
    seen = gen;
    // The calling thread computes share 0 of this run itself (and reports its end).
    if (init.index === 0 && Atomics.load(ctl, CTL.CALLER_GEN) === gen) continue;
    runSteps(ctl, plan, gen, calls);
    if (init.index === 0) {
      Atomics.store(ctl, CTL.DONE, gen);
      Atomics.notify(ctl, CTL.DONE);
      // The end message is for runtimes without Atomics.waitAsync (see ThreadPool.run); where
      // the main thread waits on DONE, it would only be one more event for it to process.
      if (!hasWaitAsync) port.postMessage({ done: gen });
    }
  }
}

const { port, onInit } = await parent();
onInit((init) => work(init, port));
