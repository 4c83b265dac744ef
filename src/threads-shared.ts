// What the main thread and the compute threads share: the control block layout, the start
// message and the step counters. Kept apart so the worker script imports nothing else.

/** Int32 slots of the control block (a SharedArrayBuffer of its own, not wasm memory). */
export const CTL = {
  /** Run counter: the main thread increments it to start a run; -1 stops the threads. */
  GEN: 0,
  /** The run counter of the last finished run. */
  DONE: 1,
  /** Set to 1 when a kernel threw in some thread (a bug: inputs are validated before runs). */
  ERROR: 2,
  /** The run counter of a run whose share 0 the calling thread computes (runSync in Node). */
  CALLER_GEN: 3,
  /**
   * Per step i, two counters that only grow: slot STEPS + 2i counts the chunks claimed, slot
   * STEPS + 2i + 1 the chunks finished, over all runs so far. Run g of a step of K chunks owns
   * claims (g - 1) K .. g K - 1 and is complete when the second reaches g K, so nothing is
   * reset between runs and a late claim can never take a chunk of the next run.
   */
  STEPS: 4,
} as const;

/** Bytes of the control block for a plan of `steps` steps. */
export const controlBytes = (steps: number): number => (CTL.STEPS + 2 * steps) * 4;

/**
 * One step as a thread runs it: an exported kernel and its chunks' resolved arguments (with
 * the thread's own scratch). One chunk: the thread runs it alone; more: the threads claim them.
 */
export interface ThreadCall {
  kernel: string;
  chunks: number[][];
}

export interface ThreadInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  /** This thread's call per plan step (null: no share in that step). */
  steps: (ThreadCall | null)[];
  /** Per step: whether every thread waits for it to complete before going on. */
  syncAfter: boolean[];
  /** Per step: its number of chunks. */
  chunks: number[];
  index: number;
}

/** Spin iterations before sleeping while a step completes: steps are short, a futex wake costs more. */
const SPINS = 100000;

/**
 * Claims chunks of step `step` in run `gen` and runs them (`calls[c]` runs chunk c) until all
 * are taken; counts each one finished. Any thread may call it, also one that only helps with
 * a step and never waits for it. A kernel that throws sets CTL.ERROR before its chunk counts
 * as finished, so whoever sees the run complete also sees the error.
 */
export function runChunks(ctl: Int32Array, step: number, gen: number, calls: readonly (() => void)[]): void {
  const claims = CTL.STEPS + 2 * step;
  const end = gen * calls.length;
  const first = end - calls.length;
  for (;;) {
    const c = Atomics.load(ctl, claims);
    if (c >= end) return;
    if (Atomics.compareExchange(ctl, claims, c, c + 1) !== c) continue;
    try {
      calls[c - first]();
    } catch {
      Atomics.store(ctl, CTL.ERROR, 1);
    }
    if (Atomics.add(ctl, claims + 1, 1) + 1 === end) Atomics.notify(ctl, claims + 1);
  }
}

/**
 * One thread's part of run `gen`: its chunks of every step (null: no part in that step),
 * waiting where `syncAfter` says for the step to complete before going on.
 */
export function runSteps(
  ctl: Int32Array, gen: number, calls: readonly ((() => void)[] | null)[], syncAfter: readonly boolean[],
  chunks: readonly number[],
): void {
  for (let i = 0; i < calls.length; i++) {
    const step = calls[i];
    if (step) runChunks(ctl, i, gen, step);
    if (syncAfter[i]) awaitStep(ctl, i, gen, chunks[i]);
  }
}

/** Waits until all `chunks` chunks of step `step` in run `gen` are finished. */
export function awaitStep(ctl: Int32Array, step: number, gen: number, chunks: number): void {
  const done = CTL.STEPS + 2 * step + 1;
  const end = gen * chunks;
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(ctl, done) >= end) return;
  }
  for (;;) {
    const v = Atomics.load(ctl, done);
    if (v >= end) return;
    Atomics.wait(ctl, done, v);
  }
}
