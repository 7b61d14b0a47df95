/**
 * Playwright configuration for the BigMaac browser tests.
 *
 * Galata's base configuration, run in Debian's Chromium (never a downloaded
 * browser) against a JupyterLab started for the tests with BigMaac on.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const PORT = Number(process.env.BIGMAAC_UI_TEST_PORT || 8899);

module.exports = {
  ...baseConfig,
  reporter: [[process.env.CI ? 'github' : 'list'], ['html', { open: 'never' }]],
  // One JupyterLab server for all tests; the kernels are real and memory-heavy.
  workers: 1,
  retries: process.env.CI ? 1 : 0,
  use: {
    ...baseConfig.use,
    baseURL: `http://localhost:${PORT}`,
    video: 'off',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic'
      ]
    }
  },
  webServer: {
    command: `../.venv/bin/jupyter lab --config jupyter_server_test_config.py --ServerApp.port=${PORT}`,
    url: `http://localhost:${PORT}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    // Let Jupyter shut its kernels down and remove the test directories.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 15000 },
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
