import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describeKafka } from '@backstop/testing';

/**
 * The short variant of `npm run chaos` (issue 9): the real broker and the four services as separate
 * processes under load for CHAOS_DURATION_S=30, each service SIGKILLed once, the broker restarted
 * once, the store's disk filled once (for real: writes fail with SQLITE_FULL); the run exits 0 only if every invariant held. It starts its own
 * broker (it must restart it), so it only needs Kafka to be runnable here (describeKafka).
 */
describeKafka('npm run chaos, short', () => {
  it('keeps every invariant through kills, a broker restart and a full disk', async () => {
    const root = join(__dirname, '..', '..');
    const child = spawn(process.execPath, ['-r', join(root, 'tools/register.js'), join(root, 'tools/chaos/run.ts')], {
      cwd: root,
      env: { ...process.env, CHAOS_DURATION_S: '30', CHAOS_SEED: '7' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 840_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    if (code !== 0) throw new Error(`chaos exited ${code}:\n${out.slice(-6000)}`);
    expect(out).toMatch(/chaos: every check held/);
    const figures = JSON.parse(out.slice(out.indexOf('{', out.indexOf('chaos figures:')), out.lastIndexOf('}') + 1)) as {
      faults: string[];
      commandsAccepted: number;
      diskFull: string | { failedWrites: number; failedWritesByCode: Record<string, number>; notReadyS: number; recoverS: number; unplannedExitsDuring: number };
    };
    expect(figures.faults.filter((f) => f.startsWith('SIGKILL'))).toHaveLength(4);
    expect(figures.faults.some((f) => f.startsWith('broker restart'))).toBe(true);
    expect(figures.commandsAccepted).toBeGreaterThan(20);
    // The disk-full fault is real where a tmpfs can be mounted (root): writes failed with SQLITE_FULL
    // or ENOSPC, a service said not-ready, nothing crashed, and it recovered once space was freed.
    // Without mount permission the run says why it skipped the fault.
    if (typeof figures.diskFull === 'string') {
      expect(figures.diskFull).toMatch(/^skipped: /);
    } else {
      expect(figures.faults.some((f) => f.startsWith('disk full'))).toBe(true);
      expect(figures.diskFull.failedWrites).toBeGreaterThan(0);
      expect(Object.keys(figures.diskFull.failedWritesByCode).every((code) => /^SQLITE_(FULL|IOERR)|ENOSPC/.test(code))).toBe(true);
      expect(figures.diskFull.notReadyS).toBeGreaterThan(0);
      expect(figures.diskFull.unplannedExitsDuring).toBe(0);
    }
  }, 900_000);
});
