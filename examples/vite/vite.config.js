// Vite config for an app using mobilenet-wasm. Three things matter:
// - worker.format 'es': the library starts its compute threads as module workers
//   (`new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`), which Vite
//   bundles; the worker uses top-level await, which the default 'iife' format cannot hold.
// - optimizeDeps.exclude: the dev server's dependency pre-bundling would move the library's
//   code away from its build/ and weights/ files, which it finds with new URL(..., import.meta.url).
// - COOP/COEP headers: without cross-origin isolation the model runs on one thread
//   (model.threads.reason says why). Your production server must send them too.
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Only because this example lives inside the library's repository: link the repository as
// node_modules/mobilenet-wasm, which is what `npm install` here does for the "file:../.."
// dependency, so that Vite resolves the package as it would one from the registry (its
// package.json "exports", "browser" condition -> dist/browser.js). Run `npm run build` at the
// repository root first. In your own app: `npm i mobilenet-wasm`, and none of this.
const link = fileURLToPath(new URL('./node_modules/mobilenet-wasm', import.meta.url));
if (!existsSync(link)) {
  rmSync(link, { force: true }); // a dangling link left by a moved checkout
  mkdirSync(fileURLToPath(new URL('./node_modules', import.meta.url)), { recursive: true });
  const repo = process.platform === 'win32' ? fileURLToPath(new URL('../..', import.meta.url)) : '../../..';
  symlinkSync(repo, link, 'junction');
}

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default {
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['mobilenet-wasm'] },
  // fs.allow: only because the package is linked from this repository (outside this app's
  // root) the dev server must be allowed to serve its files; an installed package needs nothing.
  server: { headers: isolation, fs: { allow: ['../..'] } },
  preview: { headers: isolation },
  build: { target: 'es2022' },
};
