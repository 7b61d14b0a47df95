/**
 * The addon builds from source under npm as under jlpm: with the machine's own Node
 * headers, never a download, even when npm's configuration points elsewhere.
 */
import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';

import { REPO } from './helpers';

let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'bigmaac-addon-build-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

it('builds with `npm run build:addon` against local headers, ignoring npm settings that would download', () => {
  const out = join(scratch, 'bigmaac.node');
  const npm = join(dirname(process.execPath), 'npm');
  const build = spawnSync(npm, ['run', 'build:addon'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 300_000,
    env: {
      ...process.env,
      BIGMAAC_ADDON_OUT: out,
      // An unreachable header server and a wrong header directory: following either fails.
      npm_config_disturl: 'http://127.0.0.1:9/',
      npm_config_dist_url: 'http://127.0.0.1:9/',
      npm_config_nodedir: join(scratch, 'no-such-node')
    }
  });
  expect(build.stderr).toContain(`build-addon: wrote ${out}`);
  expect(build.status).toBe(0);
  const load = spawnSync(
    process.execPath,
    ['-e', `process.stdout.write(require(${JSON.stringify(out)}).segmentDir())`],
    { encoding: 'utf8' }
  );
  expect(load.status).toBe(0);
  expect(load.stdout.startsWith('/')).toBe(true); // the segment directory, an absolute path
});
