// The same kernel suite on the relaxed-SIMD build (fused multiply-add). Node 20 validates relaxed
// SIMD only behind a V8 flag; setting it here, before any module is compiled in this worker,
// is what `node --experimental-wasm-relaxed-simd` does. Node 22+ needs nothing.
import { setFlagsFromString } from 'node:v8';
import { kernelSuite } from './helpers/kernel-suite.js';

setFlagsFromString('--experimental-wasm-relaxed-simd');
kernelSuite('relaxed');
