import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, startCatchUpSubscription } from '@backstop/event-store';
import { fillStore } from './fill';
async function main() {
  const file = join(mkdtempSync(join(tmpdir(), 'pc-')), 's.db');
  let t = Date.now();
  await fillStore(file, 50_000);
  console.log('fill', Date.now() - t);
  const store = new SqliteEventStore(file);
  t = Date.now();
  const sub = await startCatchUpSubscription(store, { name: 'x', handle: async () => undefined });
  await sub.waitFor(50_000n, 600000);
  console.log('catch-up', Date.now() - t);
  await sub.stop(); await store.close();
}
main();
