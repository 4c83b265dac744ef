// What the main thread and the compute threads share: the control block layout, the start
// message and the barrier. Kept apart so the worker script imports nothing else.

/** Int32 slots of the control block (a SharedArrayBuffer of its own, not wasm memory). */
export const CTL = {
  /** Run counter: the main thread increments it to start a run; -1 stops the threads. */
  GEN: 0,
  /** Threads that reached the current barrier. */
  COUNT: 1,
  /** Barrier generation: bumped by the last thread to arrive, which releases the others. */
  PHASE: 2,
  /** The run counter of the last finished run. */
  DONE: 3,
  /** Set to 1 when a kernel threw in some thread (a bug: inputs are validated before runs). */
  ERROR: 4,
  /** The run counter of a run whose share 0 the calling thread computes (runSync in Node). */
  CALLER_GEN: 5,
  /** Step i's chunk counter (the next chunk to claim) is slot CLAIM + i. */
  CLAIM: 8,
} as const;

/** Bytes of the control block for a plan of `steps` steps. */
export const controlBytes = (steps: number): number => (CTL.CLAIM + steps) * 4;

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
  /** Per step: whether all threads meet at a barrier after it (the same for every thread). */
  syncAfter: boolean[];
  threads: number;
  index: number;
}

/** Spin iterations before sleeping at a barrier: steps are short, a futex wake costs more. */
const SPINS = 100000;

/**
 * Runs thread `t`'s part of one step: its single chunk, or chunks claimed from the step's
 * counter until none are left. `calls[c]` runs chunk c. Returns false if a kernel threw.
 */
export function runStep(ctl: Int32Array, step: number, calls: readonly (() => void)[]): boolean {
  let ok = true;
  if (calls.length === 1) {
    try {
      calls[0]();
    } catch {
      ok = false;
    }
    return ok;
  }
  for (;;) {
    const c = Atomics.add(ctl, CTL.CLAIM + step, 1);
    if (c >= calls.length) return ok;
    try {
      calls[c]();
    } catch {
      ok = false;
    }
  }
}

/**
 * Waits until all `n` threads reach this point. Sense by generation: each arrival reads the
 * phase first, the last one resets the count (and the finished step's chunk counter, which
 * nobody reads any more) and bumps the phase.
 */
export function barrier(ctl: Int32Array, n: number, step: number): void {
  const phase = Atomics.load(ctl, CTL.PHASE);
  if (Atomics.add(ctl, CTL.COUNT, 1) === n - 1) {
    Atomics.store(ctl, CTL.CLAIM + step, 0);
    Atomics.store(ctl, CTL.COUNT, 0);
    Atomics.add(ctl, CTL.PHASE, 1);
    Atomics.notify(ctl, CTL.PHASE);
    return;
  }
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(ctl, CTL.PHASE) !== phase) return;
  }
  while (Atomics.load(ctl, CTL.PHASE) === phase) Atomics.wait(ctl, CTL.PHASE, phase);
}
