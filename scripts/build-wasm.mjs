// Builds the wasm targets of asconfig.json: release (plain SIMD), relaxed (relaxed SIMD), their
// shared-memory twins for threads (same kernels, memory imported and shared), and debug
// (assertions kept). Uses the compiler's API so no shell is needed (Windows too).
import asc from 'assemblyscript/asc';
import { mkdirSync, statSync } from 'node:fs';

mkdirSync('build', { recursive: true });
for (const target of ['release', 'relaxed', 'simd-threads', 'relaxed-threads', 'debug']) {
  const { error, stderr } = await asc.main(['--config', 'asconfig.json', '--target', target]);
  if (error) {
    console.error(stderr.toString());
    console.error(`asc failed for target ${target}: ${error.message}`);
    process.exit(1);
  }
}
for (const f of ['build/mobilenet.wasm', 'build/mobilenet-relaxed.wasm', 'build/mobilenet-threads.wasm',
  'build/mobilenet-relaxed-threads.wasm', 'build/mobilenet-debug.wasm']) {
  console.log(`${f}: ${statSync(f).size} bytes`);
}
