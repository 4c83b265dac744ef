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
   * Then per step of K chunks, K + 1 slots that only grow: the chunks finished over all runs
   * so far (run g of the step is complete when it reaches g K), then one slot per chunk
   * holding the last run that claimed it. A chunk is claimed for run g by moving its slot
   * from g - 1 to g, so nothing is reset between runs and a late claim can never take a
   * chunk of the next run.
   */
  STEPS: 4,
} as const;

/** Bytes of the control block for a plan whose steps have these chunk counts. */
export const controlBytes = (chunks: readonly number[]): number =>
  (CTL.STEPS + chunks.reduce((a, k) => a + k + 1, 0)) * 4;

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
  /** How many compute threads the pool has (chunks are owned by thread, see claimOrder). */
  threads: number;
  index: number;
}

/** How one runner goes through the steps of a run. */
export interface Schedule {
  /** Per step: the slot of its finished counter (its chunks' claim slots follow). */
  base: number[];
  /** Per step: the chunks in the order this runner tries to claim them. */
  order: number[][];
  syncAfter: readonly boolean[];
  chunks: readonly number[];
}

/**
 * The order in which `runner` tries to claim a step's K chunks. Thread t owns the t-th of T
 * equal runs of chunks and takes its own first, top to bottom: the rows it computed in the
 * last step are in its core's cache, and the next step reads mostly those. Then it helps the
 * nearest threads, from the far end of their runs, where they will arrive last. Runner T,
 * the caller of run() helping with the first step, owns nothing and starts at the far end.
 */
export function claimOrder(runner: number, threads: number, K: number): number[] {
  const owner = (c: number): number => Math.floor((c * threads) / K);
  const rank = (c: number): number => Math.abs(owner(c) - runner) * 2 * K + (owner(c) > runner ? 0 : K);
  const own: number[] = [];
  const others: number[] = [];
  for (let c = 0; c < K; c++) (owner(c) === runner ? own : others).push(c);
  others.sort((a, b) => rank(a) - rank(b) || b - a);
  return [...own, ...others];
}

/** Runner `runner`'s schedule of a plan with these chunk counts: its counters and claim orders. */
export function schedule(runner: number, threads: number, chunks: readonly number[], syncAfter: readonly boolean[]): Schedule {
  const base: number[] = [];
  let slot = CTL.STEPS;
  for (const k of chunks) {
    base.push(slot);
    slot += k + 1;
  }
  return { base, order: chunks.map((k) => claimOrder(runner, threads, k)), syncAfter, chunks };
}

/** Spin iterations before sleeping while a step completes: steps are short, a futex wake costs more. */
const SPINS = 100000;

/**
 * Claims chunks of step `step` in run `gen` and runs them (`calls[c]` runs chunk c) until none
 * is left to claim; counts each one finished. Any runner may call it, also one that only
 * helps with a step and never waits for it. A kernel that throws sets CTL.ERROR before its
 * chunk counts as finished, so whoever sees the run complete also sees the error.
 */
export function runChunks(ctl: Int32Array, s: Schedule, step: number, gen: number, calls: readonly (() => void)[]): void {
  const done = s.base[step];
  for (const c of s.order[step]) {
    const claim = done + 1 + c;
    if (Atomics.load(ctl, claim) >= gen || Atomics.compareExchange(ctl, claim, gen - 1, gen) !== gen - 1) continue;
    try {
      calls[c]();
    } catch {
      Atomics.store(ctl, CTL.ERROR, 1);
    }
    if (Atomics.add(ctl, done, 1) + 1 === gen * calls.length) Atomics.notify(ctl, done);
  }
}

/**
 * One runner's part of run `gen`: its chunks of every step (null: no part in that step),
 * waiting where `syncAfter` says for the step to complete before going on.
 */
export function runSteps(ctl: Int32Array, s: Schedule, gen: number, calls: readonly ((() => void)[] | null)[]): void {
  for (let i = 0; i < calls.length; i++) {
    const step = calls[i];
    if (step) runChunks(ctl, s, i, gen, step);
    if (s.syncAfter[i]) awaitStep(ctl, s, i, gen);
  }
}

/** Waits until all chunks of step `step` in run `gen` are finished. */
export function awaitStep(ctl: Int32Array, s: Schedule, step: number, gen: number): void {
  const done = s.base[step];
  const end = gen * s.chunks[step];
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(ctl, done) >= end) return;
  }
  for (;;) {
    const v = Atomics.load(ctl, done);
    if (v >= end) return;
    Atomics.wait(ctl, done, v);
  }
}
