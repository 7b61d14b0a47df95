/**
 * The rules behind `bigmaac doctor`'s kernel and LD_PRELOAD checks, and the ages `show` prints.
 */
import {
  checkKernel,
  checkMemoryLimit,
  checkPreload,
  MemoryLimit,
  swapDirectory,
  systemSwapBytes
} from '../cli/doctor';
import { formatAge } from '../cli/units';

describe('checkKernel', () => {
  it('accepts a kernel with every feature', () => {
    expect(checkKernel('6.1.0-18-amd64')).toMatchObject({ status: 'ok' });
    expect(checkKernel('5.14.0')).toMatchObject({ status: 'ok' });
  });

  it('warns about a kernel without MADV_POPULATE_WRITE or MADV_PAGEOUT', () => {
    const older = checkKernel('5.10.0-28-amd64');
    expect(older.status).toBe('warning');
    expect(older.message).toMatch(/lacks MADV_POPULATE_WRITE \(Linux 5\.14/);
    expect(older.message.split('lacks')[1]).not.toContain('MADV_PAGEOUT');
    expect(older.message).toMatch(/has O_TMPFILE, MADV_PAGEOUT; lacks/);
    expect(checkKernel('5.3.18').message).toMatch(/MADV_PAGEOUT .*MADV_POPULATE_WRITE/);
  });

  it('fails on a kernel without O_TMPFILE and warns on a release it cannot read', () => {
    expect(checkKernel('3.10.0-1160.el7.x86_64')).toMatchObject({ status: 'error' });
    expect(checkKernel('unknown')).toMatchObject({ status: 'warning' });
  });
});

describe('checkKernel and cachestat', () => {
  it('names every feature on 6.5 and later', () => {
    expect(checkKernel('6.5.0')).toEqual({
      name: 'kernel',
      status: 'ok',
      message: 'Linux 6.5.0: O_TMPFILE, MADV_PAGEOUT, MADV_POPULATE_WRITE, cachestat'
    });
  });

  it('says mincore stands in for cachestat before 6.5, without a warning', () => {
    const result = checkKernel('6.1.0-18-amd64');
    expect(result.status).toBe('ok');
    expect(result.message).toBe(
      'Linux 6.1.0-18-amd64 has O_TMPFILE, MADV_PAGEOUT, MADV_POPULATE_WRITE; lacks ' +
        'cachestat (Linux 6.5, for residency with dirty bytes; mincore is used instead, ' +
        'dirty bytes unknown)'
    );
  });
});

describe('checkMemoryLimit', () => {
  const GiB = 1024 ** 3;
  const cgroup = (limit: number | undefined, usage: number): MemoryLimit => ({
    version: 2,
    path: '/sys/fs/cgroup/jest',
    limit,
    usage
  });

  it('is content with a limit well above the usage and the dirty budget', () => {
    const result = checkMemoryLimit(cgroup(4 * GiB, GiB), { BIGMAAC_DIRTY_BUDGET: '1G' }, 0);
    expect(result).toEqual({
      name: 'memory',
      status: 'ok',
      message: 'cgroup v2 limit 4.00 GiB, 1.00 GiB in use (/sys/fs/cgroup/jest)'
    });
  });

  it('warns when the usage is near the limit', () => {
    const result = checkMemoryLimit(cgroup(4 * GiB, 3.8 * GiB), {}, 0);
    expect(result.status).toBe('warning');
    expect(result.message).toMatch(/: 95% of the limit is in use: the OOM killer is near/);
  });

  it('warns when the dirty budget is close to the limit or above it, or not a size', () => {
    const close = checkMemoryLimit(cgroup(4 * GiB, GiB), { BIGMAAC_DIRTY_BUDGET: '3G' }, 0);
    expect(close.status).toBe('warning');
    expect(close.message).toMatch(/BIGMAAC_DIRTY_BUDGET \(3\.00 GiB\) is close to the limit/);
    const above = checkMemoryLimit(cgroup(4 * GiB, GiB), { BIGMAAC_DIRTY_BUDGET: '8G' }, 0);
    expect(above.message).toMatch(/\(8\.00 GiB\) is at or above the limit/);
    const bad = checkMemoryLimit(cgroup(4 * GiB, GiB), { BIGMAAC_DIRTY_BUDGET: 'lots' }, 0);
    expect(bad).toMatchObject({ status: 'warning' });
    expect(bad.message).toMatch(/BIGMAAC_DIRTY_BUDGET='lots' is not a size/);
    // 0 turns the budget off: nothing to warn about.
    expect(checkMemoryLimit(cgroup(4 * GiB, GiB), { BIGMAAC_DIRTY_BUDGET: '0' }, 0).status).toBe(
      'ok'
    );
  });

  it('warns when there is neither a memory limit nor swap', () => {
    const none = checkMemoryLimit(cgroup(undefined, GiB), {}, 0);
    expect(none.status).toBe('warning');
    expect(none.message).toMatch(/no memory limit and no swap: the pressure policy needs a limit/);
    expect(checkMemoryLimit(cgroup(undefined, GiB), {}, 2 * GiB).status).toBe('ok');
  });

  it('reads the swap size from /proc/meminfo', () => {
    expect(systemSwapBytes()).toEqual(expect.any(Number));
    expect(systemSwapBytes('/nonexistent/meminfo')).toBeUndefined();
  });
});

describe('checkPreload', () => {
  it('accepts no preload, BigMaac alone, or an allocator after BigMaac', () => {
    expect(checkPreload(undefined).status).toBe('ok');
    expect(checkPreload('/opt/libbigmaac.so').status).toBe('ok');
    expect(checkPreload('/opt/libbigmaac.so:/usr/lib/libjemalloc.so.2').status).toBe('ok');
  });

  it('fails on an allocator that comes first', () => {
    for (const preload of [
      '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
      'libtcmalloc_minimal.so.4 /opt/libbigmaac.so',
      '/usr/lib/libmimalloc.so.2:/opt/libbigmaac.so'
    ]) {
      expect(checkPreload(preload).status).toBe('error');
    }
  });
});

describe('swapDirectory', () => {
  it('follows the library: BIGMAAC_DIR, the template, then the cache', () => {
    expect(swapDirectory({ BIGMAAC_DIR: '/data/swap', BIGMAAC_TEMPLATE: '/x/t.XXXXXX' })).toBe(
      '/data/swap'
    );
    expect(swapDirectory({ BIGMAAC_TEMPLATE: '/scratch/bigmaac.XXXXXX' })).toBe('/scratch');
    expect(swapDirectory({ XDG_CACHE_HOME: '/c', HOME: '/h' })).toBe('/c/bigmaac/swap');
    expect(swapDirectory({ HOME: '/home/ada' })).toBe('/home/ada/.cache/bigmaac/swap');
  });
});

describe('formatAge', () => {
  it.each([
    [850, '850 ms'],
    [42_000, '42 s'],
    [184_000, '3 min 4 s'],
    [3_600_000, '1 h'],
    [7_500_000, '2 h 5 min'],
    [273_600_000, '3 d 4 h']
  ])('prints %d ms as %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });
});
