/**
 * Ends the agent when the process that started it is gone, so an agent never outlives
 * the Jupyter server (or editor) it serves, even when that parent was SIGKILLed and
 * never closed our stdin.
 */
const POLL_MS = 1000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Calls `onGone` once `parentPid` has exited or we were re-parented (our ppid changed:
 * a recycled pid must not keep us alive). Returns a function that stops watching.
 */
export function watchParent(parentPid: number, onGone: () => void): () => void {
  const originalPpid = process.ppid;
  const timer = setInterval(() => {
    const reparented = originalPpid === parentPid && process.ppid !== parentPid;
    if (reparented || !isAlive(parentPid)) {
      clearInterval(timer);
      onGone();
    }
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
