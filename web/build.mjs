// Builds the console bundle: web/src → DIR (default ../internal/webui/dist)
//   DIR/index.html
//   DIR/assets/app-HASH.js, DIR/assets/app-HASH.css
// esbuild's output depends only on the sources, the lockfile's versions and
// these options, so a rebuild is byte-identical (scripts/webui-check.sh
// checks the committed dist against a fresh build).
//
//   node build.mjs [--outdir DIR]

import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let outdir = path.resolve(here, '../internal/webui/dist');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--outdir' && args[i + 1]) outdir = path.resolve(args[++i]);
  else {
    console.error(`build.mjs: unknown argument ${args[i]}\nusage: node build.mjs [--outdir DIR]`);
    process.exit(2);
  }
}

// xterm.js under the CSP: see src/cspstyle.ts. The rewrite must find every
// place it expects, so that an xterm upgrade that changes them fails here
// instead of silently breaking the terminal.
const xtermCSP = {
  name: 'xterm-csp',
  setup(build) {
    build.onLoad({ filter: /@xterm[\\/]xterm[\\/]lib[\\/]xterm\.mjs$/ }, async (args) => {
      let src = readFileSync(args.path, 'utf8');
      let styles = 0;
      let attrs = 0;
      src = src.replace(/([\w$.]+)\.createElement\("style"\)/g, (_, doc) => {
        styles++;
        return `__kgCspStyle(${doc})`;
      });
      src = src.replace(/(\w)\.setAttribute\("style",`\$\{\1\.getAttribute\("style"\)\|\|""\}\$\{(\w)\};`\)/g, (_, el, decl) => {
        attrs++;
        return `__kgCspAddStyle(${el},${decl})`;
      });
      if (styles !== 3 || attrs !== 1) {
        throw new Error(`xterm-csp: expected 3 <style> elements and 1 style attribute in ${args.path}, found ${styles} and ${attrs}: check src/cspstyle.ts against this xterm version`);
      }
      const shim = JSON.stringify(path.join(here, 'src', 'cspstyle.ts'));
      return { contents: `import { cspStyle as __kgCspStyle, cspAddStyle as __kgCspAddStyle } from ${shim};\n` + src, loader: 'js' };
    });
  },
};

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  platform: 'browser',
  outdir: 'out', // virtual: write is false
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  charset: 'utf8',
  legalComments: 'eof',
  sourcemap: false,
  metafile: true,
  write: false,
  logLevel: 'warning',
  plugins: [xtermCSP],
});

const files = new Map();
for (const f of result.outputFiles) {
  const rel = path.relative(path.join(here, 'out'), f.path).split(path.sep).join('/');
  files.set(rel, f.contents);
}
const js = [...files.keys()].find((k) => /^app-[A-Z0-9]+\.js$/.test(k));
const css = [...files.keys()].find((k) => /^app-[A-Z0-9]+\.css$/.test(k));
if (!js || !css) {
  console.error('build.mjs: esbuild produced no app-HASH.js / app-HASH.css:', [...files.keys()]);
  process.exit(1);
}

// index.html: no inline script or style (the CSP forbids them). Paths are
// absolute because the SPA is served for every /console/... route.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kaginashi console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body>
<noscript>The kaginashi console needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`;

rmSync(outdir, { recursive: true, force: true });
mkdirSync(path.join(outdir, 'assets'), { recursive: true });
for (const [rel, contents] of files) writeFileSync(path.join(outdir, 'assets', rel), contents);
writeFileSync(path.join(outdir, 'index.html'), html);
console.log(`built ${path.relative(process.cwd(), outdir) || '.'}: index.html, assets/${js} (${files.get(js).length} B), assets/${css} (${files.get(css).length} B)`);
