/**
 * A progress line on stderr for long replays and verifies, only on a terminal (never in a pipe or a
 * log), redrawn at most every 100 ms, erased when done.
 */
export interface Progress {
  update(events: number, position: bigint): void;
  done(): void;
}

const REDRAW_MS = 100;
const WIDTH = 30;

export function progressBar(stream: NodeJS.WriteStream, enabled: boolean, label: string, target?: bigint): Progress {
  if (!enabled || !stream.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let drawn = false;
  return {
    update(events, position) {
      const now = Date.now();
      if (now - last < REDRAW_MS) return;
      last = now;
      let bar = '';
      if (target !== undefined && target > 0n) {
        const fraction = Math.min(1, Number(position) / Number(target));
        const filled = Math.round(fraction * WIDTH);
        bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${Math.round(fraction * 100)}% `;
      }
      stream.write(`\r${label} ${bar}${events} events, position ${position}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
