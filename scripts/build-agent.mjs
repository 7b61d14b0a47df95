#!/usr/bin/env node
// Bundles the agent and the CLI (src/cli/main.ts and everything it imports, vscode-jsonrpc
// included) into one file the Python package ships. The addon is not bundled: the agent
// loads bigmaac.node by path at runtime.
import { build } from 'esbuild';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'python', 'jupyterlab_bigmaac', '_bundled', 'bigmaac.js');

mkdirSync(dirname(outfile), { recursive: true });
try {
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node' },
    external: ['*.node'],
    sourcemap: false,
    logLevel: 'warning',
    absWorkingDir: root
  });
} catch (error) {
  // esbuild has already printed the diagnostics.
  console.error(`build-agent: bundling failed: ${error.message.split('\n')[0]}`);
  process.exit(1);
}
chmodSync(outfile, 0o755);
console.error(`build-agent: wrote ${outfile}`);
