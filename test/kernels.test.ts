// Every kernel variant vs its scalar twin and a JS reference, on the plain SIMD build.
import { kernelSuite } from './helpers/kernel-suite.js';

kernelSuite('simd');
