// Builds dist/browser.js: the library as one plain ES module for browsers (the package's
// "browser" export condition, or <script type="module"> with a relative URL). It bundles
// the JS dependencies (jpeg-js, fast-png, fflate, @assemblyscript/loader) so that no bare
// import remains. It sits in dist/ like dist/index.js, so the URLs the code builds from
// import.meta.url keep resolving: ../build/*.wasm, ../weights/*.mnw and ./worker.js (the
// compute-thread script emitted by tsc, which imports only ./threads-shared.js).
// `node:` modules are only ever imported dynamically, on Node-only paths, and stay external:
// a browser never executes those import() calls.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const outfile = 'dist/browser.js';
const result = await build({
  entryPoints: ['src/index.ts'],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Wasm SIMD needs Chrome 91 / Firefox 89 / Safari 16.4 anyway; top-level await and class
  // fields are fine there.
  target: ['es2022'],
  external: ['node:*'],
  minify: true,
  // Error classes set `name` from their constructor: keep class names readable.
  keepNames: true,
  sourcemap: true,
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

// No bare specifier may remain: a browser cannot resolve one without an import map.
const code = readFileSync(outfile, 'utf8');
const specifiers = [
  ...code.matchAll(/\bimport\s*\(\s*["'`]([^"'`]+)["'`]\s*\)/g),
  ...code.matchAll(/\b(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/g),
  ...code.matchAll(/\bimport\s*["']([^"']+)["']/g),
].map((m) => m[1]);
const bare = specifiers.filter((s) => !s.startsWith('node:') && !/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(s));
if (bare.length > 0) {
  console.error(`${outfile}: bare imports remain: ${[...new Set(bare)].join(', ')}`);
  process.exit(1);
}
if (/\brequire\s*\(\s*["'](?!node:)/.test(code)) {
  console.error(`${outfile}: a require() call remains`);
  process.exit(1);
}
const bytes = result.metafile.outputs[outfile].bytes;
const node = [...new Set(specifiers.filter((s) => s.startsWith('node:')))];
console.log(`${outfile}: ${bytes} bytes (node: imports left external, never run in browsers: ${node.join(', ') || 'none'})`);
