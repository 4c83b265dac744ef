#!/usr/bin/env node
// A tiny static file server for the browser demo and tests: serves a directory (default: the
// repository) on 127.0.0.1 with the right MIME types (application/wasm, so that
// WebAssembly.compileStreaming works) and, unless --no-isolation, the COOP/COEP headers that
// make a page cross-origin isolated, which browsers require for SharedArrayBuffer and so for
// the compute threads.
//
//   node scripts/serve.mjs [--port 8080] [--root DIR] [--no-isolation]     (or PORT=8080)
//   then open http://127.0.0.1:8080/examples/browser/
//
// Also importable: `const server = await serve({ port: 0 })` -> { url, port, close() }.

import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.mnw': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/**
 * Starts the server. `isolation` (default true) sends
 * Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp.
 * `index` is where "/" redirects (default the demo page when serving the repository).
 */
export function serve({ port = 8080, host = '127.0.0.1', root = REPO, isolation = true, index, quiet = true } = {}) {
  const base = resolve(root);
  const home = index ?? (base === REPO ? '/examples/browser/' : '/');
  const server = createServer(async (req, res) => {
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...common, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const common = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
    if (isolation) {
      common['Cross-Origin-Opener-Policy'] = 'same-origin';
      common['Cross-Origin-Embedder-Policy'] = 'require-corp';
      common['Cross-Origin-Resource-Policy'] = 'same-origin';
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    if (path === '/' && home !== '/') return send(302, '', { Location: home });
    if (path.includes('\0')) return send(400, 'bad request\n');
    let file = resolve(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return send(403, 'forbidden\n');
    // Never serve the dependency tree or git internals from the repository.
    const rel = file.slice(base.length);
    if (/(^|[\\/])(\.git|node_modules)([\\/]|$)/.test(rel)) return send(404, 'not found\n');
    try {
      let info = await stat(file);
      if (info.isDirectory()) {
        if (!path.endsWith('/')) return send(301, '', { Location: `${path}/` });
        file = join(file, 'index.html');
        info = await stat(file);
      }
      const type = MIME[extname(file).toLowerCase()] ?? 'application/octet-stream';
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': info.size, ...common });
      if (req.method === 'HEAD') return res.end();
      const handle = await open(file, 'r');
      handle.createReadStream().pipe(res);
    } catch {
      send(404, 'not found\n');
    } finally {
      if (!quiet) console.log(`${req.method} ${req.url} ${res.statusCode}`);
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const actual = typeof addr === 'object' && addr ? addr.port : port;
      resolvePromise({
        url: `http://${host}:${actual}`,
        port: actual,
        server,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string', short: 'p' },
      root: { type: 'string' },
      'no-isolation': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port ?? positionals[0] ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`bad port ${values.port ?? positionals[0] ?? process.env.PORT}`);
    process.exit(2);
  }
  const root = values.root ? resolve(values.root) : REPO;
  try {
    const s = await serve({ port, root, isolation: !values['no-isolation'], quiet: !values.verbose });
    const page = root === REPO ? '/examples/browser/' : '/';
    console.log(`serving ${root} at ${s.url}${values['no-isolation'] ? ' (no COOP/COEP: one thread)' : ' (cross-origin isolated: threads on)'}`);
    console.log(`open ${s.url}${page}`);
    if (root === REPO && !existsSync(join(REPO, 'dist', 'browser.js'))) {
      console.warn('dist/browser.js is missing: run `npm run build` first');
    }
  } catch (e) {
    console.error(`cannot listen on 127.0.0.1:${port}: ${e.message}`);
    process.exit(1);
  }
}
