// The main thread's side of multi-threaded runs: start the compute threads (worker_threads in
// Node, Web Workers in browsers) on the model's shared memory, start runs, wait for their end.
// In run() the main thread computes at most chunks of the first step, while the threads wake,
// then waits without blocking (Atomics.waitAsync), so a browser page stays responsive; in
// Node, runSync() computes thread 0's share and may block on Atomics.wait, which Node allows
// on its main thread.

import { CTL, controlBytes, runChunks, runSteps, schedule, type Schedule, type ThreadCall, type ThreadInit } from './threads-shared.js';
import { EnvironmentError, MobileNetWasmError } from './errors.js';

interface AnyWorker {
  postMessage(m: unknown): void;
  terminate(): unknown;
  /** Node only: whether the worker keeps the process alive. */
  ref?(): void;
  unref?(): void;
}

type Listener = (m: { ready?: boolean; done?: number }) => void;
/** Called when a worker dies: a script error, or an exit before it said it was ready. */
type Failure = (why: string) => void;

const isNode = (): boolean =>
  Boolean((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node);

/** Why threads cannot run here, or null when they can. */
export function threadsUnavailable(): string | null {
  if (typeof SharedArrayBuffer === 'undefined') {
    return 'SharedArrayBuffer is not available (a browser page needs cross-origin isolation: COOP/COEP headers)';
  }
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  if (!isNode() && g.crossOriginIsolated === false) {
    return 'the page is not cross-origin isolated, so wasm memory cannot be shared with workers';
  }
  if (!isNode() && typeof g.Worker === 'undefined') return 'Web Workers are not available here';
  return null;
}

/** Cores this runtime reports (Node: os.availableParallelism; browsers: navigator.hardwareConcurrency). */
export async function availableCores(): Promise<number> {
  if (isNode()) {
    const os = await import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return n && n > 0 ? n : 1;
}

/** The worker script: next to this module in dist/ (tests run src/*.ts, whose worker is built). */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/worker.js', here) : new URL('./worker.js', here);
}

async function spawn(onMessage: Listener, onFailure: Failure): Promise<AnyWorker> {
  if (isNode()) {
    const url = workerUrl();
    const { Worker } = await import('node:worker_threads');
    // No node flags for workers: some the process may have (--input-type, --expose-gc) are
    // refused there, and V8 flags apply to the whole process anyway.
    const w = new Worker(url, { execArgv: [] });
    w.on('message', onMessage);
    w.on('error', (e) => onFailure(e.message));
    w.on('exit', (code) => onFailure(`the worker exited (code ${code})`));
    return w;
  }
  // Written out as `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`:
  // bundlers (Vite, webpack 5) recognise this form and bundle the worker script with the app.
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  w.onmessage = (e: MessageEvent<Parameters<Listener>[0]>) => onMessage(e.data);
  w.onerror = (e: ErrorEvent) => onFailure(e.message || 'the worker script failed to load or threw');
  return w;
}

/** Atomics.waitAsync (ES2024): Node 16+, Chromium 87+; not in every browser yet. */
const waitAsync = (Atomics as unknown as {
  waitAsync?: (a: Int32Array, i: number, v: number, ms: number) => { async: boolean; value: Promise<string> | string };
}).waitAsync;

export class ThreadPool {
  private readonly ctl: Int32Array;
  private gen = 0;
  private pending: { gen: number; resolve: () => void } | null = null;

  /** Runner 0's schedule, which runSync() follows, and the caller's in run(). */
  private readonly share0: Schedule;
  private readonly caller: Schedule;

  private constructor(
    private readonly workers: AnyWorker[],
    control: SharedArrayBuffer,
    syncAfter: readonly boolean[],
    chunks: readonly number[],
  ) {
    this.ctl = new Int32Array(control);
    this.share0 = schedule(0, workers.length, chunks, syncAfter);
    this.caller = schedule(workers.length, workers.length, chunks, syncAfter);
  }

  /**
   * Starts `steps.length` threads; steps[t] is thread t's call list, syncAfter and chunks are
   * the plan's per step. Resolves once all are ready.
   */
  static async start(
    module: WebAssembly.Module, memory: WebAssembly.Memory, steps: (ThreadCall | null)[][], syncAfter: boolean[],
    chunks: number[],
  ): Promise<ThreadPool> {
    const control = new SharedArrayBuffer(controlBytes(chunks));
    const workers: AnyWorker[] = [];
    let pool: ThreadPool | null = null;
    const ready: Promise<void>[] = [];
    try {
      for (let t = 0; t < steps.length; t++) {
        let markReady!: () => void;
        let fail!: (e: Error) => void;
        ready.push(new Promise<void>((resolve, reject) => ((markReady = resolve), (fail = reject))));
        const w = await spawn(
          (m) => {
            if (m.ready) markReady();
            else if (m.done !== undefined) pool?.finished(m.done);
          },
          (why) => {
            fail(new Error(why)); // before ready: load() rejects; after: no effect
            pool?.failed(why);
          },
        );
        workers.push(w);
        const init: ThreadInit = { module, memory, control, steps: steps[t], syncAfter, chunks, threads: steps.length, index: t };
        w.postMessage(init);
      }
      await Promise.all(ready);
      // Idle threads sleep in Atomics.wait: they must not keep a Node process alive. Runs
      // hold a reference while they wait for the end message (see run()).
      for (const w of workers) w.unref?.();
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw new EnvironmentError(`could not start compute threads: ${(e as Error).message}`);
    }
    pool = new ThreadPool(workers, control, syncAfter, chunks);
    return pool;
  }

  private broken: string | null = null;

  /** A thread died after start: the pending run and every later one reject. */
  private failed(why: string): void {
    if (this.disposed) return;
    this.broken = why;
    Atomics.store(this.ctl, CTL.ERROR, 1);
    this.finished(Number.MAX_SAFE_INTEGER);
  }

  private disposed = false;

  private finished(gen: number): void {
    if (this.pending && gen >= this.pending.gen) {
      const { resolve } = this.pending;
      this.pending = null;
      resolve();
    }
  }

  private start(): number {
    if (this.broken) throw new MobileNetWasmError(`a compute thread stopped: ${this.broken}`);
    Atomics.store(this.ctl, CTL.ERROR, 0);
    this.gen = this.gen + 1;
    Atomics.store(this.ctl, CTL.GEN, this.gen);
    Atomics.notify(this.ctl, CTL.GEN);
    return this.gen;
  }

  private check(): void {
    if (this.broken) throw new MobileNetWasmError(`a compute thread stopped: ${this.broken}`);
    if (Atomics.load(this.ctl, CTL.ERROR) !== 0) {
      throw new MobileNetWasmError('internal error: a wasm kernel failed in a compute thread');
    }
  }

  /**
   * One run on all threads; resolves when the last step is done. Callers serialise runs.
   * `first`: the caller's own calls for the first step's chunks (or null): it takes chunks
   * of that step right away, while the threads wake up, and returns without waiting for it.
   */
  async run(first: readonly (() => void)[] | null): Promise<void> {
    const reporter = this.workers[0];
    reporter.ref?.();
    try {
      const gen = this.start();
      if (first) runChunks(this.ctl, this.caller, 0, gen, first);
      if (waitAsync) {
        // Woken straight by the thread's Atomics.notify: about 0.3 ms sooner than its message.
        for (;;) {
          const done = Atomics.load(this.ctl, CTL.DONE);
          if (done >= gen || this.broken) break;
          const w = waitAsync(this.ctl, CTL.DONE, done, 1000);
          if (w.async) await w.value;
        }
      } else {
        await new Promise<void>((resolve) => {
          if (Atomics.load(this.ctl, CTL.DONE) >= gen) resolve();
          else this.pending = { gen, resolve };
        });
      }
    } finally {
      reporter.unref?.();
    }
    this.check();
  }

  /**
   * One run, blocking until done (Node's main thread may block; a browser page may not). The
   * calling thread computes share 0 itself with `calls` (its own instance on the shared
   * memory), waiting for each step as the threads do, instead of sleeping while thread 0
   * works: this saves thread 0's wake-up and the completion message.
   */
  runSync(calls: readonly ((() => void)[] | null)[]): void {
    if (!isNode()) throw new EnvironmentError('runSync() with threads is only possible in Node; use run()');
    if (this.broken) throw new MobileNetWasmError(`a compute thread stopped: ${this.broken}`);
    const gen = this.gen + 1;
    // Before the run starts, so thread 0 can never miss it.
    Atomics.store(this.ctl, CTL.CALLER_GEN, gen);
    this.start();
    runSteps(this.ctl, this.share0, gen, calls);
    // Every step with work on another thread is awaited: all threads are done here.
    Atomics.store(this.ctl, CTL.DONE, gen);
    this.check();
  }

  dispose(): void {
    this.disposed = true;
    Atomics.store(this.ctl, CTL.GEN, -1);
    Atomics.notify(this.ctl, CTL.GEN);
    for (const w of this.workers) void w.terminate();
  }
}
