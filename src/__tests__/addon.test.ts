/**
 * The addon against segments it must refuse: it throws an Error with a `.code` and a
 * message that says which problem, and never takes the process down.
 */
import { writeFileSync } from 'fs';
import { join } from 'path';

import { AddonPageoutResult, BigmaacAddon, loadAddon } from '../agent/addon';
import {
  ADDON,
  BigProcess,
  LIBRARY,
  MiB,
  PYTHON,
  requireArtifacts,
  Sandbox,
  startBigProcess
} from './helpers';

const MAGIC = 0x31474553434d4742n; // "BGMCSEG1"
const HEADER_BYTES = 64;

let sandbox: Sandbox;
let addon: BigmaacAddon;

/** A segment header: magic, version, header size, segment size, table slots. */
function header(fields: { magic?: bigint; version?: number; segmentSize?: bigint }): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES);
  buffer.writeBigUInt64LE(fields.magic ?? MAGIC, 0);
  buffer.writeUInt32LE(fields.version ?? 2, 8);
  buffer.writeUInt32LE(HEADER_BYTES, 12);
  buffer.writeBigUInt64LE(fields.segmentSize ?? 12345n, 16);
  buffer.writeUInt32LE(1024, 24);
  return buffer;
}

function plant(pid: number, content: Buffer): void {
  writeFileSync(join(sandbox.segmentDir, `${pid}.seg`), content, { mode: 0o600 });
}

/** The error readProcess(pid) throws. */
function readError(pid: number): { name: string; code: string; message: string } {
  try {
    addon.readProcess(pid, sandbox.segmentDir);
  } catch (error) {
    return error as { name: string; code: string; message: string };
  }
  throw new Error(`readProcess(${pid}) succeeded on a bad segment`);
}

beforeAll(() => {
  requireArtifacts([ADDON, LIBRARY, PYTHON]);
  sandbox = new Sandbox();
  // jest gives each test file a copy of process.env that the C library never sees, so
  // the directory is passed explicitly.
  process.env.BIGMAAC_ADDON = ADDON;
  addon = loadAddon();
});

afterAll(() => {
  sandbox?.dispose();
});

describe('bigmaac.node', () => {
  it('reports the default segment directory', () => {
    expect(addon.segmentDir()).toMatch(/^\/(dev\/shm|tmp)\/bigmaac-\d+$/);
  });

  it.each([
    ['a truncated file', 4000001, Buffer.from([0x42, 0x47]), /truncated/],
    ['a foreign file', 4000002, Buffer.from('#!/bin/sh\necho hello\n'), /not a BigMaac segment/],
    ['another layout version', 4000003, header({ version: 99 }), /another layout version/],
    ['a wrong size', 4000004, header({ segmentSize: 64n }), /size does not match/]
  ])('refuses %s with EINCOMPATIBLE', (_what, pid, content, message) => {
    plant(pid, content);
    const error = readError(pid);
    expect(error.code).toBe('EINCOMPATIBLE');
    expect(error.message).toMatch(message);
    expect(error.message).toContain(`process ${pid}`);
  });

  it('leaves bad segments out of the list instead of failing', () => {
    plant(4000005, header({ version: 7 }));
    expect(addon.listProcesses(sandbox.segmentDir)).toEqual([]);
  });

  it('says ENOENT_PROCESS for a pid without a segment', () => {
    const error = readError(4000100);
    expect(error.code).toBe('ENOENT_PROCESS');
    expect(error.message).toBe('process 4000100: no BigMaac process with this pid');
  });

  it.each([[0], [-5], [1.5], [2 ** 40], ['12'], [undefined]])('rejects pid %p with EINVAL', pid => {
    expect(() => addon.readProcess(pid as number, sandbox.segmentDir)).toThrow(/pid must be/);
    try {
      addon.readProcess(pid as number, sandbox.segmentDir);
    } catch (error) {
      expect((error as { code: string }).code).toBe('EINVAL');
      expect((error as { name: string }).name).toBe('TypeError');
    }
  });

  it('rejects a page-out of a pid without a segment through the promise', async () => {
    const job = addon.pageout(4000100, null, sandbox.segmentDir);
    expect(typeof job.cancel).toBe('function');
    await expect(job.promise).rejects.toMatchObject({ code: 'ENOENT_PROCESS' });
  });
});

describe('a page-out that times out', () => {
  let big: BigProcess | undefined;

  afterEach(async () => {
    big?.child.kill('SIGCONT');
    await big?.stop();
    big = undefined;
  });

  it('is withdrawn: the process, once continued, does not page out after all', async () => {
    big = await startBigProcess(sandbox, 64 * MiB, 'jest-kernel-withdrawn');
    big.child.kill('SIGSTOP');
    await expect(addon.pageout(big.pid, null, sandbox.segmentDir).promise).rejects.toMatchObject({
      code: 'ETIMEDOUT'
    });
    big.child.kill('SIGCONT');
    // The slot is free once the process has dealt with the old request; the new page-out
    // finds the memory still in RAM rather than paged out by the request given up on.
    let result: AddonPageoutResult | undefined;
    while (!result) {
      result = await addon.pageout(big.pid, null, sandbox.segmentDir).promise.catch(error => {
        if ((error as { code?: string }).code !== 'EBUSY_PAGEOUT') {
          throw error;
        }
        return new Promise<undefined>(done => setTimeout(done, 100));
      });
    }
    expect(result.residentBefore).toBeGreaterThanOrEqual(64 * MiB);
    expect(result.residentAfter).toBeLessThan(result.residentBefore / 2);
  });
});

describe('residency', () => {
  let big: BigProcess | undefined;

  afterEach(async () => {
    await big?.stop();
    big = undefined;
  });

  it('rejects a pid without a segment with ENOENT_PROCESS', async () => {
    await expect(addon.residency(4000100, sandbox.segmentDir)).rejects.toMatchObject({
      code: 'ENOENT_PROCESS'
    });
  });

  it('rejects a bad pid with EINVAL before asking anyone', () => {
    expect(() => addon.residency(0, sandbox.segmentDir)).toThrow(/pid must be/);
  });

  it('measures a real process per allocation, and again after a page-out', async () => {
    big = await startBigProcess(sandbox, 64 * MiB, 'jest-kernel-residency');
    const asked = Date.now();
    const before = await addon.residency(big.pid, sandbox.segmentDir);
    expect(before.pid).toBe(big.pid);
    expect(before.measuredAt).toBeGreaterThanOrEqual(asked - 1);
    expect(before.resident).toBeGreaterThanOrEqual(64 * MiB);
    expect(before.allocationsTotal).toBeGreaterThanOrEqual(1);
    const array = before.allocations.find(a => a.size >= 64 * MiB);
    expect(array).toBeDefined();
    expect(array!.resident).toBeGreaterThanOrEqual(64 * MiB);
    if (before.dirtyKnown) {
      // Just written: dirty page cache, which smaps would not show (mostly: the kernel's
      // flusher may have written some back already on a machine busy writing).
      expect(array!.dirty).toBeGreaterThanOrEqual(16 * MiB);
      expect(array!.dirty).toBeLessThanOrEqual(array!.resident);
      expect(before.dirty).toBeGreaterThanOrEqual(array!.dirty);
    }

    await addon.pageout(big.pid, null, sandbox.segmentDir).promise;
    const after = await addon.residency(big.pid, sandbox.segmentDir);
    expect(after.measuredAt).toBeGreaterThanOrEqual(before.measuredAt);
    expect(after.resident).toBeLessThanOrEqual(before.resident / 50);
    expect(after.dirty).toBe(0);
  });
});
