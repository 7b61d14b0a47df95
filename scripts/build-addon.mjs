#!/usr/bin/env node
// Builds native/addon with node-gyp against the headers of the Node running this script,
// then copies the addon to native/build/bigmaac.node ($BIGMAAC_ADDON_OUT overrides it,
// so a test can build a copy without replacing the one other processes have loaded).
//
// Why --nodedir: node-gyp otherwise downloads headers, which this project never does.
// yarn does not read ~/.npmrc and Node lives elsewhere on other machines, so the prefix
// is derived from process.execPath rather than from configuration.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'addon');
const built = join(addonDir, 'build', 'Release', 'bigmaac.node');
const target = process.env.BIGMAAC_ADDON_OUT
  ? resolve(process.env.BIGMAAC_ADDON_OUT)
  : join(root, 'native', 'build', 'bigmaac.node');
const NAPI_VERSION = '8';

function fail(message) {
  console.error(`build-addon: ${message}`);
  process.exit(1);
}

/** The installation prefix of this Node, checked to hold the N-API headers. */
function nodePrefix() {
  const prefix = resolve(dirname(process.execPath), '..');
  const header = join(prefix, 'include', 'node', 'node_api.h');
  if (!existsSync(header)) {
    fail(
      `Node headers not found: ${header} is missing for ${process.execPath}. ` +
        'Install the headers of this Node (Debian: apt-get install libnode-dev, or a Node ' +
        'distribution that ships include/node); they are never downloaded.'
    );
  }
  return prefix;
}

function nodeGypScript() {
  const require = createRequire(join(root, 'package.json'));
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    fail('node-gyp is not installed in node_modules; run `jlpm install` first.');
  }
}

function buildEnvironment() {
  const env = { ...process.env, NAPI_VERSION };
  // npm passes its own configuration as npm_config_*; drop what could redirect node-gyp
  // to another Node or to a header download.
  for (const key of Object.keys(env)) {
    if (/^npm_config_(nodedir|target|dist_url|disturl|devdir|runtime)$/i.test(key)) {
      delete env[key];
    }
  }
  // binding.gyp runs `node` to locate node-addon-api: make it this Node.
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
  return env;
}

const prefix = nodePrefix();
const args = [nodeGypScript(), 'rebuild', `--nodedir=${prefix}`, '--release', '--jobs=2'];
console.error(`build-addon: node-gyp rebuild --nodedir=${prefix} (N-API ${NAPI_VERSION})`);
const result = spawnSync(process.execPath, args, {
  cwd: addonDir,
  env: buildEnvironment(),
  stdio: 'inherit'
});
if (result.error) {
  fail(`could not run node-gyp: ${result.error.message}`);
}
if (result.status !== 0) {
  fail(`node-gyp failed (exit ${result.status ?? result.signal}); see the compiler output above.`);
}
if (!existsSync(built)) {
  fail(`node-gyp succeeded but ${built} is missing.`);
}
mkdirSync(dirname(target), { recursive: true });
copyFileSync(built, target);
console.error(`build-addon: wrote ${target}`);
