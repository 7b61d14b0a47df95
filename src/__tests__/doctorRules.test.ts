/**
 * The rules behind `bigmaac doctor`'s kernel and LD_PRELOAD checks, and the ages `show` prints.
 */
import { checkKernel, checkPreload, swapDirectory } from '../cli/doctor';
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
    expect(older.message).not.toContain('MADV_PAGEOUT');
    expect(checkKernel('5.3.18').message).toMatch(/MADV_PAGEOUT .*MADV_POPULATE_WRITE/);
  });

  it('fails on a kernel without O_TMPFILE and warns on a release it cannot read', () => {
    expect(checkKernel('3.10.0-1160.el7.x86_64')).toMatchObject({ status: 'error' });
    expect(checkKernel('unknown')).toMatchObject({ status: 'warning' });
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
