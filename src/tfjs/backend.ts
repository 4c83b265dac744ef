// The TF.js backend: tfjs-backend-cpu's MathBackendCPU (tensors stay the cpu backend's typed
// arrays) plus one instance of this package's kernel module. Kernels that run here copy their
// inputs into the module's linear memory, call a kernel, and copy the result out into a fresh
// Float32Array that becomes the output tensor's data.
//
// Linear memory, from the module's heap base up:
//   [packed weights: a free-list region]  [arena: bump-allocated per kernel call, then forgotten]
// Packed weights (filters in the GEMM / depthwise layouts, with the bias folded in) are cached
// per filter tensor: TF.js models run the same filter tensors on every predict, so each is
// packed once. An entry is dropped when the backend disposes the filter's or the bias's data.
// The arena starts above the weights; nothing in it outlives the call that allocated it.
// memory.grow detaches every view, so views are made only after the last grow of a call.

import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DataId, TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelExports, KernelInstance, KernelVariant, WasmBuild } from '../wasm.js';
import { variantName } from '../wasm.js';

const ALIGN = 64;
const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/** Counters of kernel calls: `ours` ran on the wasm kernels, `fallback` on tfjs-backend-cpu. */
export interface KernelStats {
  /** Calls that ran on this package's wasm kernels, by TF.js kernel name. */
  ours: Record<string, number>;
  /** Calls of an overridden kernel handed to the cpu kernel, by TF.js kernel name. */
  fallback: Record<string, number>;
  /** Why calls fell back: `"<kernel>: <reason>"` -> count. */
  reasons: Record<string, number>;
}

/** A packed weight tensor resident in linear memory. */
interface Packed {
  key: string;
  filter: DataId;
  bias: DataId | null;
  off: number;
  bytes: number;
}

type GemmFn = KernelExports['gemm_4x8_f32_x86'];
type DwFn = KernelExports['dwconv3x3_nhwc_f32_x86'];
type Conv3Fn = KernelExports['conv3x3_nhwc_f32_x86'];

/**
 * First-fit free list over [base, top): packed weights come and go with their tensors.
 * Freed blocks are merged with their neighbours; a free block at the top lowers `top`.
 */
class Region {
  top: number;
  private free: { off: number; size: number }[] = [];
  constructor(readonly base: number) {
    this.top = base;
  }
  alloc(bytes: number): number {
    const size = align(bytes);
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.size < size) continue;
      const off = f.off;
      if (f.size === size) this.free.splice(i, 1);
      else {
        f.off += size;
        f.size -= size;
      }
      return off;
    }
    const off = this.top;
    this.top += size;
    return off;
  }
  release(off: number, bytes: number): void {
    const size = align(bytes);
    let i = 0;
    while (i < this.free.length && this.free[i].off < off) i++;
    this.free.splice(i, 0, { off, size });
    // Merge with the next block, then with the previous one.
    const next = this.free[i + 1];
    if (next && off + size === next.off) {
      this.free[i].size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.off + prev.size === off) {
      prev.size += this.free[i].size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.off + last.size === this.top) {
      this.top = last.off;
      this.free.pop();
    }
  }
  /** Bytes in use (allocated and not freed). */
  used(): number {
    return this.top - this.base - this.free.reduce((s, f) => s + f.size, 0);
  }
}

/** Bump allocation of one kernel call's buffers above the weights. */
export class Arena {
  private top: number;
  constructor(private readonly b: MobileNetWasmBackend) {
    this.top = align(b.weightsTop());
  }
  /** Reserves n floats; returns the byte offset. Call `ready()` before making views. */
  floats(n: number): number {
    const off = this.top;
    this.top += align(Math.max(n, 1) * 4);
    return off;
  }
  /** Grows memory to cover everything reserved; views made before this may be detached. */
  ready(): void {
    this.b.ensureMemory(this.top);
  }
}

export class MobileNetWasmBackend extends MathBackendCPU {
  /** The wasm build running the kernels ('simd' or 'relaxed'). */
  readonly build: WasmBuild;
  /** The kernel variant set ('x86', 'arm' or 'scalar'). */
  readonly variant: KernelVariant;
  readonly stats: KernelStats = { ours: {}, fallback: {}, reasons: {} };

  readonly k: KernelExports;
  readonly gemm: GemmFn;
  readonly dwconv: DwFn;
  readonly conv3x3: Conv3Fn;
  readonly clamp: KernelExports['clamp_f32'];

  private readonly inst: KernelInstance;
  private readonly region: Region;
  /** filter dataId -> packing key -> packed weights. */
  private readonly packs = new WeakMap<DataId, Map<string, Packed>>();
  /** filter or bias dataId -> the packed entries made from it. */
  private readonly owners = new WeakMap<DataId, Set<Packed>>();
  private readonly uids = new WeakMap<DataId, number>();
  private nextUid = 1;

  constructor(inst: KernelInstance, variant: KernelVariant) {
    super();
    this.inst = inst;
    this.k = inst.exports;
    this.build = inst.build;
    this.variant = variant;
    this.gemm = this.k[variantName('gemm', variant)] as GemmFn;
    this.dwconv = this.k[variantName('dwconv3x3_nhwc_f32', variant)] as DwFn;
    this.conv3x3 = this.k[variantName('conv3x3_nhwc_f32', variant)] as Conv3Fn;
    this.clamp = variant === 'scalar' ? this.k.clamp_f32_scalar : this.k.clamp_f32;
    this.region = new Region(align(this.k.heap_base()));
  }

  /** Clears the call counters. */
  resetStats(): void {
    this.stats.ours = {};
    this.stats.fallback = {};
    this.stats.reasons = {};
  }

  /** Bytes of packed weights currently cached in linear memory. */
  cachedWeightBytes(): number {
    return this.region.used();
  }

  /** Bytes of the instance's linear memory. */
  wasmBytes(): number {
    return this.k.memory.buffer.byteLength;
  }

  weightsTop(): number {
    return this.region.top;
  }

  ensureMemory(bytes: number): void {
    this.inst.ensureMemory(bytes);
  }

  /** A view of n floats at byte offset off (valid until the next memory growth). */
  f32(off: number, n: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, off, n);
  }

  /**
   * The float32 values of a tensor, or null when they are not a Float32Array. Data held by
   * another backend is moved here first (DataStorage.get does that), as for the cpu kernels.
   */
  values(t: TensorInfo): Float32Array | null {
    if (t.dtype !== 'float32') return null;
    const v = this.data.get(t.dataId).values;
    return v instanceof Float32Array ? v : null;
  }

  /**
   * The packed weights for `filter` (and `bias`, folded into the packing) under `key`, which
   * must name everything the packing depends on besides the two tensors' data (layout, shape).
   * `pack` makes them on a miss. Returns their byte offset.
   */
  packed(key: string, filter: TensorInfo, bias: TensorInfo | null, pack: () => Float32Array): number {
    const fullKey = bias ? `${key}|bias#${this.uid(bias.dataId)}` : key;
    let byKey = this.packs.get(filter.dataId);
    const hit = byKey?.get(fullKey);
    if (hit) return hit.off;
    const data = pack();
    const off = this.region.alloc(data.byteLength);
    try {
      this.ensureMemory(this.region.top);
    } catch (e) {
      this.region.release(off, data.byteLength);
      throw e;
    }
    this.f32(off, data.length).set(data);
    const entry: Packed = { key: fullKey, filter: filter.dataId, bias: bias?.dataId ?? null, off, bytes: data.byteLength };
    if (!byKey) {
      byKey = new Map();
      this.packs.set(filter.dataId, byKey);
    }
    byKey.set(fullKey, entry);
    this.own(filter.dataId, entry);
    if (bias) this.own(bias.dataId, entry);
    return off;
  }

  private own(id: DataId, e: Packed): void {
    let s = this.owners.get(id);
    if (!s) {
      s = new Set();
      this.owners.set(id, s);
    }
    s.add(e);
  }

  private uid(id: DataId): number {
    let u = this.uids.get(id);
    if (u === undefined) {
      u = this.nextUid++;
      this.uids.set(id, u);
    }
    return u;
  }

  /** Drops every packed entry made from this data. */
  private evict(id: DataId): void {
    const set = this.owners.get(id);
    if (!set) return;
    this.owners.delete(id);
    for (const e of set) {
      this.packs.get(e.filter)?.delete(e.key);
      if (e.bias && e.bias !== id) this.owners.get(e.bias)?.delete(e);
      if (e.filter !== id) this.owners.get(e.filter)?.delete(e);
      this.region.release(e.off, e.bytes);
    }
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const released = super.disposeData(dataId, force);
    if (!this.data.has(dataId)) this.evict(dataId);
    return released;
  }

  count(kernel: string): void {
    this.stats.ours[kernel] = (this.stats.ours[kernel] ?? 0) + 1;
  }

  countFallback(kernel: string, reason: string): void {
    this.stats.fallback[kernel] = (this.stats.fallback[kernel] ?? 0) + 1;
    const r = `${kernel}: ${reason}`;
    this.stats.reasons[r] = (this.stats.reasons[r] ?? 0) + 1;
  }
}
