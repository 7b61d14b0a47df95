/**
 * The frame `bigmaac top` draws: bars of disk-backed memory now against the peak.
 */
import { ProcessInfo } from '../common/protocol';
import { bar, renderTop } from '../cli/top';

const MiB = 1024 * 1024;

function info(pid: number, bytes: number, peak: number, kernelId = ''): ProcessInfo {
  return {
    pid,
    startTime: 1,
    uid: 0,
    kernelId,
    label: kernelId ? '' : 'train',
    command: 'python',
    swapDir: '/swap',
    diskBacked: { bytes, count: 1 },
    peakBytes: peak,
    updatedAt: 0
  };
}

describe('bar', () => {
  it('fills # for now and . up to the peak, scaled to the largest peak', () => {
    expect(bar(25, 50, 100, 10)).toBe('[###..     ]');
    expect(bar(0, 0, 100, 4)).toBe('[    ]');
    expect(bar(100, 100, 100, 4)).toBe('[####]');
    expect(bar(0, 0, 0, 3)).toBe('[   ]');
  });
});

describe('renderTop', () => {
  it('lists every process with aligned columns and bars of RAM against disk-backed', () => {
    const frame = renderTop(
      [info(7, 1024 * MiB, 1024 * MiB, 'abcdef0123'), info(4242, 2048 * MiB, 2048 * MiB)],
      { width: 120, intervalMs: 1000 },
      new Map([
        [7, 256 * MiB],
        [4242, 2048 * MiB]
      ])
    );
    const lines = frame.split('\n');
    expect(lines[0]).toBe(
      'bigmaac top: 2 processes, 3.00 GiB disk-backed; every 1 s; q or Ctrl-C quits'
    );
    expect(lines[2]).toMatch(/^\s*PID\s+DISK-BACKED\s+IN RAM\s+PEAK\s+ALLOCS\s+RAM # \/ DISK \./);
    const rows = lines.slice(3);
    expect(rows[0]).toMatch(
      /^\s+7\s+1.00 GiB\s+256 MiB\s+1.00 GiB\s+1\s+\[(#+)(\.+)\s*\]\s+kernel abcdef01$/
    );
    expect(rows[1]).toMatch(/^4242\s+2.00 GiB\s+2.00 GiB\s+2.00 GiB\s+1\s+\[#+\]\s+train$/);
    // A quarter of its disk-backed bytes in RAM; half the largest disk-backed in all.
    const [, ram, disk] = /\[(#+)(\.+)/.exec(rows[0])!;
    const full = /\[(#+)\]/.exec(rows[1])![1].length;
    expect(ram.length).toBe(Math.round(full / 8));
    expect(ram.length + disk.length).toBe(Math.round(full / 2));
    expect(rows[0].indexOf('[')).toBe(rows[1].indexOf('['));
  });

  it('shows ? and a bar of disk-backed bytes only for a process that did not answer', () => {
    const frame = renderTop([info(9, 64 * MiB, 64 * MiB)], { width: 100, intervalMs: 1000 });
    const row = frame.split('\n')[3];
    expect(row).toMatch(/^\s*9\s+64.0 MiB\s+\?\s+64.0 MiB\s+1\s+\[\.+\]\s+train$/);
  });

  it('says so when nothing runs', () => {
    expect(renderTop([], { width: 80, intervalMs: 250 })).toBe(
      'bigmaac top: 0 processes, 0 B disk-backed; every 250 ms; q or Ctrl-C quits\n\n' +
        'No processes are running under BigMaac.'
    );
  });
});
