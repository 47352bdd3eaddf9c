/**
 * `npm run chaos`: the real Kafka broker and the four services as separate processes under steady
 * load, with faults at seeded random moments, then the invariants checked from the store and the
 * topics. Exit 0: every check held; 1: a violation (listed); 2: the run itself could not be set up.
 *
 * Settings: CHAOS_DURATION_S (default 120) of load and faults, CHAOS_SEED (default 20200312),
 * CHAOS_DATA_DIR (default ../shared/data), CHAOS_DISK_MB (size of the tmpfs the store lives on,
 * default 64). Every process is bounded (broker watchdog, SIGKILL at the end) and stopped at exit.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kafka, logLevel } from 'kafkajs';
import { SqliteEventStore, StoredEvent, verifyChains } from '@backstop/event-store';
import { LedgerProjection } from '@backstop/ledger';

const ROOT = join(__dirname, '..', '..');
const SERVICES = ['contract-intake', 'premium-pricing', 'margin-monitor', 'default-settlement'] as const;
type Service = (typeof SERVICES)[number];
const OWNER: Record<string, Service> = {
  RegisterParty: 'contract-intake', RegisterContract: 'contract-intake', AcceptContract: 'contract-intake', DepositCollateral: 'contract-intake',
  RequestQuote: 'premium-pricing', BindCoverage: 'premium-pricing', FundPremiumAccount: 'premium-pricing',
  DepositCapital: 'default-settlement',
};
const TOKEN = { operator: 'chaos-operator-token-000000001', desk: 'chaos-desk-token-0000000000001' };
const COMMAND_TIMEOUT_MS = 90_000;

export interface ChaosSettings {
  readonly durationS: number;
  readonly seed: number;
  readonly dataDir: string;
  readonly diskMb: number;
}

interface Sent {
  readonly id: string;
  readonly type: string;
  readonly payload: Record<string, unknown>;
  status?: number;
  reply?: { status: string; stream?: string; events?: string[]; violations?: { rule: string }[]; retryable?: boolean };
}

interface Fault {
  readonly kind: string;
  readonly atS: number;
  recoverMs?: number;
  note?: string;
}

/** mulberry32: a seeded PRNG, so a run's fault times and load can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** One service process, restarted by the supervisor when it exits (as Kubernetes would). */
class ServiceProcess {
  child: ChildProcess | undefined;
  unplannedExits = 0;
  readonly exitReasons: string[] = [];
  private planned = false;
  private stopping = false;
  constructor(
    readonly name: Service,
    readonly port: number,
    private readonly env: Record<string, string>,
    readonly logFile: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): void {
    const log = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, ['-r', join(ROOT, 'tools/register.js'), join(ROOT, 'apps', this.name, 'src', 'main.ts')], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.stopping || this.child !== child) return;
      if (!this.planned) {
        this.unplannedExits += 1;
        // Why it died: the last error line of its log (kept, since the work dir is removed at the end).
        const lines = readFileSync(this.logFile, 'utf8').split('\n').filter((l) => /error|Error|FULL|unhandled/.test(l));
        this.exitReasons.push(`exit ${code ?? signal}: ${(lines.at(-1) ?? '(no error line)').slice(0, 300)}`);
      }
      this.planned = false;
      setTimeout(() => !this.stopping && this.start(), 1_000).unref();
    });
  }

  /** SIGKILL now; the supervisor restarts it after a second. */
  kill(): void {
    this.planned = true;
    this.child?.kill('SIGKILL');
  }

  /** One /health/ready answer: true for 200, false for anything else or no answer. */
  async isReady(): Promise<boolean> {
    return (await this.readiness()).ready;
  }

  /** /health/ready as the operator (who sees every check): ready, and the checks that are not ok. */
  async readiness(): Promise<{ ready: boolean; failing: string[] }> {
    try {
      const res = await fetch(`${this.url}/health/ready`, { headers: { authorization: `Bearer ${TOKEN.operator}` }, signal: AbortSignal.timeout(2_000) });
      const body = (await res.json().catch(() => ({}))) as { checks?: Record<string, string> };
      const failing = Object.entries(body.checks ?? {}).filter(([, v]) => v !== 'ok').map(([k, v]) => `${k}: ${v}`.replace(/\d+/g, 'N').slice(0, 160));
      return { ready: res.status === 200, failing };
    } catch (err) {
      return { ready: false, failing: [`no answer: ${(err as Error).message.slice(0, 80)}`] };
    }
  }

  async ready(timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
      try {
        const res = await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return Date.now() - started;
      } catch {
        /* not up yet */
      }
      await sleep(250);
    }
    throw new Error(`${this.name} not ready within ${timeoutMs} ms; log ${this.logFile}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function marksFrom(dataDir: string): number[] {
  const rows = readFileSync(join(dataDir, 'btc-usd-daily.csv'), 'utf8').split('\n').filter((l) => /^2020-03-(0[6-9]|1[0-6]) /.test(l));
  if (rows.length !== 11) throw new Error(`expected the 11 daily BTC rows 2020-03-06..16 in ${dataDir}/btc-usd-daily.csv, found ${rows.length}`);
  return rows.map((l) => Number(l.split(',')[1]));
}

/** The disk-full fault: a tmpfs of CHAOS_DISK_MB under the store, filled with a filler file for a while. */
function mountSmallDisk(dir: string, sizeMb: number): { mounted: boolean; reason?: string } {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return { mounted: true };
  } catch (err) {
    return { mounted: false, reason: (err as Error).message.split('\n')[0] };
  }
}

/**
 * Fills the file system of `file` to zero free bytes (1 MiB writes, then 4 KiB, then single bytes:
 * the last partial page too). Returns the bytes written.
 */
function fillDisk(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 4_096, 1]) {
      const chunk = Buffer.alloc(size, 0);
      try {
        for (;;) {
          const n = writeSync(fd, chunk);
          written += n;
          if (n < size) break;
        }
      } catch {
        /* ENOSPC at this size: on to the smaller one */
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/**
 * Why the first disk-full fault never failed a write: SQLite reuses the WAL file's space from its
 * start after each checkpoint, so a WAL that had grown to a few MB before the disk filled kept
 * taking writes. A TRUNCATE checkpoint (from this process's own connection, waiting on the
 * services' readers) copies the WAL into the database file and cuts the WAL to zero bytes, so with
 * the disk then filled, the next commit must grow the WAL and fails with SQLITE_FULL.
 */
function truncateWal(dataFile: string): string {
  const db = new Database(dataFile);
  try {
    db.pragma('busy_timeout = 5000');
    for (let attempt = 1; attempt <= 20; attempt += 1) {
      const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
      const wal = statSync(`${dataFile}-wal`, { throwIfNoEntry: false })?.size ?? 0;
      if (row.busy === 0) return `WAL checkpointed and truncated (${row.checkpointed} pages; WAL now ${wal} bytes, attempt ${attempt})`;
    }
    return 'WAL checkpoint stayed busy after 20 attempts (readers); the WAL was not truncated';
  } finally {
    db.close();
  }
}

/** `"event store write failed"` log lines (StoreWriteHealth) after byte `from` of a service log, by code. */
function failedWritesIn(logFile: string, from: number): Record<string, number> {
  const text = readFileSync(logFile).subarray(from).toString('utf8');
  const byCode: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.includes('event store write failed')) continue;
    const code = /"code":"([A-Z_]+)"/.exec(line)?.[1] ?? 'unknown';
    byCode[code] = (byCode[code] ?? 0) + 1;
  }
  return byCode;
}

export async function runChaos(settings: ChaosSettings, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<{ violations: string[]; figures: Record<string, unknown> }> {
  const random = prng(settings.seed);
  const work = mkdtempSync(join(tmpdir(), 'backstop-chaos-'));
  const dataDir = join(work, 'data');
  mkdirSync(dataDir);
  const disk = mountSmallDisk(dataDir, settings.diskMb);
  const dataFile = join(dataDir, 'backstop.db');
  const prefix = `chaos${settings.seed}-${Date.now()}.`;
  const { startBroker } = require(join(ROOT, 'tools/kafka/broker.js')) as { startBroker: (o: object) => Promise<{ brokers: string; stop(): Promise<void>; restart(o: { downMs: number }): Promise<void> }> };
  const broker = await startBroker({ log, maxLifetimeSec: settings.durationS + 900 });
  const env = {
    KAFKA_BROKERS: broker.brokers,
    KAFKA_TOPIC_PREFIX: prefix,
    BACKSTOP_DATA_FILE: dataFile,
    BACKSTOP_TOKENS: `${TOKEN.operator}=operator,${TOKEN.desk}=desk`,
    PRICING_MC_PATHS: '200',
    MARGIN_MARK_BAND: '0.4',
    LOG_FORMAT: 'json',
  };
  const services = new Map<Service, ServiceProcess>();
  for (const name of SERVICES) services.set(name, new ServiceProcess(name, await freePort(), env, join(work, `${name}.log`)));
  const kafka = new Kafka({ clientId: 'chaos', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
  const sent: Sent[] = [];
  const faults: Fault[] = [];
  const violations: string[] = [];
  let maxLag = 0;
  /** The disk-full fault's figures (failed writes, time not ready, time to recover); set when it ran. */
  let diskFull: Record<string, unknown> | undefined;
  let lagTimer: NodeJS.Timeout | undefined;
  const stopAll = async () => {
    if (lagTimer) clearInterval(lagTimer);
    for (const s of services.values()) await s.stop();
    await broker.stop().catch(() => undefined);
    if (disk.mounted) execFileSync('umount', ['-l', dataDir], { stdio: 'pipe' });
    rmSync(work, { recursive: true, force: true });
  };
  try {
    log(`chaos: seed ${settings.seed}, ${settings.durationS} s, store on ${disk.mounted ? `a ${settings.diskMb} MB tmpfs` : `the normal disk (tmpfs mount failed: ${disk.reason}; disk-full fault skipped)`}`);
    // The first service creates the topics; the others follow once it listens.
    const [first, ...rest] = [...services.values()];
    first.start();
    await first.ready(120_000);
    for (const s of rest) s.start();
    for (const s of rest) await s.ready(120_000);
    log(`chaos: broker ${broker.brokers} and ${SERVICES.join(', ')} up`);

    // ---- the client: every command retried with its id until answered (200/4xx), bounded
    /** 5xx answers by status (a full disk must give 503 + Retry-After, never a 500). */
    const serverErrors = new Map<number, number>();
    const send = async (type: string, payload: Record<string, unknown>, token = TOKEN.operator): Promise<Sent> => {
      const entry: Sent = { id: randomUUID(), type, payload };
      sent.push(entry);
      const body = JSON.stringify({ id: entry.id, type, schemaVersion: 1, time: new Date().toISOString(), key: String(Object.values(payload)[0]), correlationId: entry.id, payload });
      const deadline = Date.now() + COMMAND_TIMEOUT_MS;
      while (Date.now() < deadline) {
        try {
          const res = await fetch(`${services.get(OWNER[type])!.url}/v1/commands`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body,
            signal: AbortSignal.timeout(45_000),
          });
          if (res.status < 500) {
            entry.status = res.status;
            entry.reply = (await res.json()) as Sent['reply'];
            // A fact not arrived yet at this service (its read model): retry with the same id.
            if (entry.reply?.retryable !== true) return entry;
          }
          serverErrors.set(res.status, (serverErrors.get(res.status) ?? 0) + 1);
          await res.arrayBuffer().catch(() => undefined);
        } catch {
          /* down or timed out: retry with the same id */
        }
        await sleep(300);
      }
      return entry;
    };
    const mark = async (price: number): Promise<boolean> => {
      const at = new Date().toISOString();
      const envelope = { id: randomUUID(), type: 'MarkPrice', schemaVersion: 1, time: at, key: 'BTC-USD', correlationId: randomUUID(), payload: { underlying: 'BTC-USD', price: price.toFixed(2), volAnnual: '0.8', at } };
      for (const s of [services.get('margin-monitor')!, services.get('premium-pricing')!]) {
        try {
          const res = await fetch(`${s.url}/v1/market/marks`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN.operator}` }, body: JSON.stringify(envelope), signal: AbortSignal.timeout(45_000) });
          if (res.status === 202) return true;
        } catch {
          /* try the other endpoint */
        }
      }
      return false;
    };

    // ---- consumer lag, sampled every 2 s over every consumer group of this run
    const admin = kafka.admin();
    await admin.connect();
    const sampleLag = async () => {
      const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
      for (const groupId of groups) {
        for (const topicOffsets of await admin.fetchOffsets({ groupId })) {
          const ends = await admin.fetchTopicOffsets(topicOffsets.topic);
          for (const p of topicOffsets.partitions) {
            const end = Number(ends.find((e) => e.partition === p.partition)?.offset ?? 0);
            const committed = Number(p.offset);
            if (committed >= 0) maxLag = Math.max(maxLag, end - committed);
          }
        }
      }
    };
    lagTimer = setInterval(() => void sampleLag().catch(() => undefined), 2_000);

    // ---- set-up: parties, capital, premium funds
    const desks = ['d1', 'd2', 'd3'];
    const cps = ['cpA', 'cpB', 'cpC'];
    for (const [partyId, role, rating] of [...desks.map((d) => [d, 'DESK', 'A']), ['cpA', 'COUNTERPARTY', 'BB'], ['cpB', 'COUNTERPARTY', 'BBB'], ['cpC', 'COUNTERPARTY', 'BB'], ['pJ', 'PROVIDER', 'A'], ['pS', 'PROVIDER', 'AA']]) {
      await send('RegisterParty', { partyId, name: partyId, role, credit: { rating } });
    }
    await send('DepositCapital', { providerId: 'pJ', tranche: 'JUNIOR', amount: '200000' });
    await send('DepositCapital', { providerId: 'pS', tranche: 'SENIOR', amount: '2000000' });
    for (const d of desks) await send('FundPremiumAccount', { partyId: d, amount: '50000', currency: 'USDC' });
    const prices = marksFrom(settings.dataDir);
    await mark(prices[0]);

    // ---- faults at seeded moments: each service SIGKILLed once, the broker restarted once, the disk filled once
    const durationMs = settings.durationS * 1_000;
    const at = (lo: number, hi: number) => Math.round(durationMs * (lo + random() * (hi - lo)));
    const schedule: { atMs: number; kind: string; run: () => Promise<Fault> }[] = [];
    for (const s of services.values()) {
      schedule.push({
        atMs: at(0.1, 0.75),
        kind: `SIGKILL ${s.name}`,
        run: async () => {
          s.kill();
          await sleep(1_200);
          return { kind: `SIGKILL ${s.name}`, atS: 0, recoverMs: await s.ready(120_000) + 1_200 };
        },
      });
    }
    schedule.push({
      atMs: at(0.3, 0.6),
      kind: 'broker restart',
      run: async () => {
        const t0 = Date.now();
        await broker.restart({ downMs: 3_000 });
        // Recovered: a command goes through intake and its reply reaches the topic again.
        const probe = await send('RegisterParty', { partyId: `probe-${Date.now()}`, name: 'probe', role: 'DESK', credit: { rating: 'A' } });
        return { kind: 'broker restart (3 s down)', atS: 0, recoverMs: Date.now() - t0, note: `probe ${probe.reply?.status ?? 'unanswered'}` };
      },
    });
    if (disk.mounted) {
      schedule.push({
        atMs: at(0.55, 0.8),
        kind: 'disk full',
        run: async () => {
          // Start from every service ready, so the figures are this fault's and not the tail of the last one.
          const settleStarted = Date.now();
          while (Date.now() - settleStarted < 120_000 && !(await Promise.all([...services.values()].map((s) => s.isReady()))).every(Boolean)) await sleep(500);
          const readyBeforeS = Number(((Date.now() - settleStarted) / 1000).toFixed(1));
          const t0 = Date.now();
          const logOffsets = new Map([...services.values()].map((s) => [s.name, statSync(s.logFile).size]));
          const exitsBefore = [...services.values()].reduce((sum, s) => sum + s.unplannedExits, 0);
          const serverErrorsBefore = new Map(serverErrors);
          const wal = truncateWal(dataFile);
          const filler = join(dataDir, 'filler.bin');
          const bytes = fillDisk(filler);
          const free = statfsSync(dataDir);
          const freeBytes = free.bavail * free.bsize;
          const filledAt = Date.now();
          log(`chaos: disk full: ${wal}; filled ${(bytes / 1e6).toFixed(1)} MB, ${freeBytes} bytes free`);
          // Readiness of every service, every 250 ms, for the whole fault (full, then freed, then recovered).
          const notReadyMs = new Map<Service, number>();
          /** Why each service was not ready (its failing checks, digits folded), with how many polls said so. */
          const reasons = new Map<string, number>();
          let firstNotReadyAt: number | undefined;
          let lastNotReadyAt: number | undefined;
          let polling = true;
          const poller = (async () => {
            while (polling) {
              const tick = Date.now();
              const answers = await Promise.all([...services.values()].map(async (s) => [s.name, await s.readiness()] as const));
              for (const [name, { ready, failing }] of answers) {
                if (ready) continue;
                for (const why of failing) reasons.set(`${name} ${why}`, (reasons.get(`${name} ${why}`) ?? 0) + 1);
                notReadyMs.set(name, (notReadyMs.get(name) ?? 0) + 250);
                firstNotReadyAt ??= tick;
                lastNotReadyAt = Date.now();
              }
              await sleep(Math.max(0, 250 - (Date.now() - tick)));
            }
          })();
          const failedSoFar = () =>
            [...services.values()].reduce((sum, s) => sum + Object.values(failedWritesIn(s.logFile, logOffsets.get(s.name)!)).reduce((a, b) => a + b, 0), 0);
          // A write while the disk is full: it must not be acknowledged unless stored; the client retries.
          const probeId = `probe-disk-${Date.now()}`;
          const probe = send('RegisterParty', { partyId: probeId, name: 'probe', role: 'DESK', credit: { rating: 'A' } });
          // Full for at least 10 s of load, and until a write has failed and a service said not-ready (at most 40 s).
          while (Date.now() - filledAt < 10_000 || ((failedSoFar() === 0 || firstNotReadyAt === undefined) && Date.now() - filledAt < 40_000)) await sleep(500);
          const pending = sent.find((c) => c.payload.partyId === probeId)!;
          const duringFull = pending.reply ? `answered ${pending.status} while full` : 'not answered while full';
          unlinkSync(filler);
          const freed = Date.now();
          const fullS = (freed - filledAt) / 1000;
          // Recovered: every service ready again, and the probe (and a fresh command) accepted.
          const done = await probe;
          const after = await send('RegisterParty', { partyId: `probe-disk-after-${Date.now()}`, name: 'probe', role: 'DESK', credit: { rating: 'A' } });
          const recoverDeadline = Date.now() + 120_000;
          while (Date.now() < recoverDeadline && !(await Promise.all([...services.values()].map((s) => s.isReady()))).every(Boolean)) await sleep(250);
          const recoveredAt = Date.now();
          polling = false;
          await poller;
          const byCode: Record<string, number> = {};
          const byService: Record<string, number> = {};
          for (const s of services.values()) {
            for (const [code, n] of Object.entries(failedWritesIn(s.logFile, logOffsets.get(s.name)!))) {
              byCode[code] = (byCode[code] ?? 0) + n;
              byService[s.name] = (byService[s.name] ?? 0) + n;
            }
          }
          const failedWrites = Object.values(byCode).reduce((a, b) => a + b, 0);
          const exitsDuring = [...services.values()].reduce((sum, s) => sum + s.unplannedExits, 0) - exitsBefore;
          const httpDuring = Object.fromEntries([...serverErrors].map(([status, n]) => [status, n - (serverErrorsBefore.get(status) ?? 0)]).filter(([, n]) => n > 0));
          diskFull = {
            waitedForAllReadyS: readyBeforeS,
            wal,
            filledMb: Number((bytes / 1e6).toFixed(1)),
            freeBytesAfterFill: freeBytes,
            fullS,
            failedWrites,
            failedWritesByCode: byCode,
            failedWritesByService: byService,
            notReadyS: firstNotReadyAt === undefined ? 0 : Number((((lastNotReadyAt ?? firstNotReadyAt) - firstNotReadyAt) / 1000).toFixed(1)),
            notReadySByService: Object.fromEntries([...notReadyMs].map(([name, ms]) => [name, ms / 1000])),
            notReadyReasons: [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([why, polls]) => `${why} (${polls} polls)`),
            recoverS: Number(((recoveredAt - freed) / 1000).toFixed(1)),
            unplannedExitsDuring: exitsDuring,
            httpServerErrorsDuring: httpDuring,
            probe: `${duringFull}, then ${done.reply?.status ?? 'unanswered'}; a command after freeing: ${after.reply?.status ?? 'unanswered'}`,
          };
          log(`chaos: disk full: ${failedWrites} failed writes ${JSON.stringify(byCode)}, not ready ${diskFull.notReadyS} s, recovered ${diskFull.recoverS} s after freeing`);
          const ok = failedWrites > 0 && exitsDuring === 0 && recoveredAt < recoverDeadline && done.reply?.status === 'ACCEPTED' && after.reply?.status === 'ACCEPTED';
          return {
            kind: `disk full (${fullS.toFixed(0)} s, store tmpfs)`,
            atS: 0,
            ...(ok ? { recoverMs: recoveredAt - freed } : {}),
            note: `${failedWrites} writes failed (${Object.entries(byCode).map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}), not ready ${diskFull.notReadyS} s, ${exitsDuring} unplanned exits; probe ${diskFull.probe}; fault took ${((recoveredAt - t0) / 1000).toFixed(1)} s`,
          };
        },
      });
    }
    schedule.sort((a, b) => a.atMs - b.atMs);

    const startedMs = Date.now();
    let stop = false;
    const faultRunner = (async () => {
      for (const f of schedule) {
        const wait = startedMs + f.atMs - Date.now();
        if (wait > 0) await sleep(wait);
        log(`chaos: t=${Math.round((Date.now() - startedMs) / 1000)} s ${f.kind}`);
        const done = await f.run().catch((err: Error) => ({ kind: f.kind, atS: 0, note: `failed: ${err.message}` }) as Fault);
        faults.push({ ...done, atS: Math.round(f.atMs / 1000) });
      }
    })();

    // ---- steady load: contracts (operator live, or a desk's proposal accepted by the other side),
    // collateral, quotes and binds, premium funding, and the March 2020 marks spread over the run
    let n = 0;
    const contracts: { id: string; desk: string; cp: string }[] = [];
    const loadLane = async () => {
      while (!stop) {
        const i = n++;
        const desk = desks[i % desks.length];
        const cp = cps[Math.floor(random() * cps.length)];
        const id = `k${i}`;
        const terms = { contractId: id, kind: 'PERPETUAL', underlying: 'BTC-USD', size: String(1 + Math.floor(random() * 3)), entryPrice: '9000', currency: 'USDC', longPartyId: cp, shortPartyId: desk, longInitialMargin: '0', shortInitialMargin: '0' };
        const registered = await send('RegisterContract', terms, random() < 0.5 ? TOKEN.operator : TOKEN.desk);
        if (registered.reply?.events?.includes('ContractProposed')) await send('AcceptContract', { contractId: id, partyId: cp }, TOKEN.desk);
        await send('DepositCollateral', { contractId: id, partyId: cp, amount: String(4000 + Math.floor(random() * 4000)) });
        await send('DepositCollateral', { contractId: id, partyId: desk, amount: '20000' });
        contracts.push({ id, desk, cp });
        const quote = await send('RequestQuote', { quoteId: `q${i}`, contractId: id, protectedPartyId: desk, coverageLimit: '5000', termDays: 30 }, TOKEN.desk);
        if (quote.reply?.status === 'ACCEPTED') await send('BindCoverage', { coverageId: `cov${i}`, quoteId: `q${i}` }, TOKEN.desk);
        if (i % 5 === 4) await send('FundPremiumAccount', { partyId: desk, amount: '1000', currency: 'USDC' });
      }
    };
    const markLane = async () => {
      let marksSent = 0;
      while (!stop) {
        const elapsed = (Date.now() - startedMs) / durationMs;
        const day = Math.min(prices.length - 1, Math.floor(elapsed * prices.length));
        if (await mark(prices[day] * (1 + (random() - 0.5) * 0.002))) marksSent += 1;
        await sleep(1_000);
      }
      return marksSent;
    };
    const lanes = [loadLane(), loadLane()];
    const marksLane = markLane();
    await sleep(durationMs);
    stop = true;
    await faultRunner;
    await Promise.all(lanes);
    const marksAcked = await marksLane;
    log(`chaos: load stopped after ${Math.round((Date.now() - startedMs) / 1000)} s; ${sent.length} commands, ${marksAcked} marks acknowledged; settling`);

    // ---- settle: every consumer group caught up (or 90 s)
    const settleStarted = Date.now();
    for (;;) {
      maxLag = Math.max(maxLag, 0);
      let lagNow = 0;
      const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
      for (const groupId of groups) {
        for (const t of await admin.fetchOffsets({ groupId })) {
          const ends = await admin.fetchTopicOffsets(t.topic);
          for (const p of t.partitions) lagNow += Math.max(0, Number(ends.find((e) => e.partition === p.partition)?.offset ?? 0) - Math.max(0, Number(p.offset)));
        }
      }
      if ((lagNow === 0 && Date.now() - settleStarted > 5_000) || Date.now() - settleStarted > 90_000) break;
      await sleep(1_000);
    }
    clearInterval(lagTimer);

    // ---- the replies topic, read from the start
    const replies = new Map<string, string[]>();
    const consumer = kafka.consumer({ groupId: `${prefix}chaos-replies-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}backstop.replies`, fromBeginning: true });
    let lastMessageAt = Date.now();
    await consumer.run({
      eachMessage: async ({ message }) => {
        lastMessageAt = Date.now();
        const body = JSON.parse(message.value!.toString()) as { payload: { commandId: string; status: string; retryable?: boolean } };
        // A retryable rejection (notYetKnown: a fact the service's read model had not received yet)
        // is not an outcome: the sender retries the same id, which is decided again. Only final
        // replies may not conflict.
        if (body.payload.retryable === true) return;
        replies.set(body.payload.commandId, [...(replies.get(body.payload.commandId) ?? []), body.payload.status]);
      },
    });
    while (Date.now() - lastMessageAt < 4_000) await sleep(500);
    await consumer.disconnect();
    await admin.disconnect();

    // ---- the checks
    const store = new SqliteEventStore(dataFile);
    let events: StoredEvent[] = [];
    try {
      for (let after = 0n; ; ) {
        const page = await store.readAll({ after, maxCount: 4_096 });
        if (page.length === 0) break;
        events = events.concat(page);
        after = page[page.length - 1].position;
      }
      const byCause = new Map<string, StoredEvent[]>();
      for (const e of events) {
        const cause = String(e.metadata.causationId ?? '');
        byCause.set(cause, [...(byCause.get(cause) ?? []), e]);
      }
      const answered = sent.filter((s) => s.reply);
      let accepted = 0;
      for (const s of answered) {
        const written = byCause.get(s.id) ?? [];
        if (s.reply!.status === 'ACCEPTED') {
          accepted += 1;
          // The reply names its stream's events; a command may also write other streams (a bind reserves capacity).
          const expected = s.reply!.events ?? [];
          const inStream = written.filter((e) => e.stream === s.reply!.stream);
          if (inStream.length !== expected.length || inStream.some((e, i) => e.type !== expected[i])) {
            violations.push(`${s.type} ${s.id}: ACCEPTED with [${expected.join(',')}] on ${s.reply!.stream} but the store holds [${inStream.map((e) => e.type).join(',')}] there`);
          }
        } else if (written.length > 0) {
          violations.push(`${s.type} ${s.id}: ${s.reply!.status} (${s.status}) but ${written.length} events were written`);
        }
        const topic = replies.get(s.id) ?? [];
        if (s.status !== 403 && topic.length === 0) violations.push(`${s.type} ${s.id}: answered ${s.status} over HTTP, no reply on backstop.replies`);
        if (new Set(topic).size > 1) violations.push(`${s.type} ${s.id}: conflicting replies on backstop.replies (${topic.join(', ')})`);
      }
      const duplicateReplies = answered.filter((s) => (replies.get(s.id) ?? []).length > 1).length;
      // No payout or premium twice: one PayoutMade per (default, party), one charge per (coverage, period).
      const twice = (type: string, key: (d: Record<string, unknown>) => string) => {
        const seen = new Set<string>();
        for (const e of events.filter((x) => x.type === type)) {
          const k = key(e.data);
          if (seen.has(k)) violations.push(`${type} twice for ${k}`);
          seen.add(k);
        }
        return seen.size;
      };
      const payouts = twice('PayoutMade', (d) => `${d.defaultId}/${d.partyId}`);
      const premiums = twice('PremiumCharged', (d) => `${d.coverageId}/${d.periodStart}`);
      twice('PremiumAccountDebited', (d) => `${d.coverageId ?? d.partyId}/${d.periodStart ?? d.at}/${d.amount}`);
      // Ledger: balanced postings (the projection refuses an unbalanced one), the hash chains intact,
      // and the digest of the books fed from the Kafka event topics = a replay from the store.
      const replay = new LedgerProjection();
      for (const e of events) {
        try {
          replay.apply(e);
        } catch (err) {
          violations.push(`ledger refused ${e.type} ${e.id} at ${e.position}: ${(err as Error).message}`);
          break;
        }
      }
      const chains = await verifyChains(store);
      if (chains.firstBreak) violations.push(`hash chain broken: ${JSON.stringify(chains.firstBreak)}`);
      const live = await liveDigestFromTopics(kafka, prefix, events.length);
      const replayDigest = replay.digest();
      if (live.digest !== replayDigest) violations.push(`ledger digest from the Kafka event topics ${live.digest} (${live.booked} events) != replay from the store ${replayDigest} (${events.length} events)`);
      const unplanned = [...services.values()].map((s) => `${s.name}:${s.unplannedExits}`).join(' ');
      const figures = {
        seed: settings.seed,
        durationS: settings.durationS,
        commandsSent: sent.length,
        commandsAnswered: answered.length,
        commandsAccepted: accepted,
        commandsUnanswered: sent.length - answered.length,
        marksAcknowledged: marksAcked,
        eventsStored: events.length,
        contractsRegistered: contracts.length,
        payouts,
        premiumsCharged: premiums,
        defaults: events.filter((e) => e.type === 'DefaultDeclared').length,
        duplicateRepliesOnTopic: duplicateReplies,
        liveDigest: live.digest,
        replayDigest,
        maxConsumerLag: maxLag,
        faults: faults.map((f) => `${f.kind} at ${f.atS} s: recovered in ${f.recoverMs === undefined ? '?' : `${(f.recoverMs / 1000).toFixed(1)} s`}${f.note ? ` (${f.note})` : ''}`),
        maxRecoverS: Math.max(0, ...faults.map((f) => (f.recoverMs ?? 0) / 1000)),
        unplannedExits: unplanned,
        unplannedExitReasons: [...services.values()].flatMap((s) => s.exitReasons.map((r) => `${s.name}: ${r}`)),
        diskFull: disk.mounted ? (diskFull ?? 'the fault did not run') : `skipped: ${disk.reason}`,
      };
      // The fault must be real: at least one write refused by the full disk, and no service died of it.
      if (diskFull && diskFull.failedWrites === 0) violations.push('disk full: no write failed while the disk was full (the fault was not real)');
      const http500 = (diskFull?.httpServerErrorsDuring as Record<string, number> | undefined)?.['500'] ?? 0;
      if (http500 > 0) violations.push(`disk full: ${http500} HTTP 500 answers (a store failure must be a 503 with Retry-After)`);
      if (diskFull && diskFull.unplannedExitsDuring !== 0) violations.push(`disk full: ${diskFull.unplannedExitsDuring} unplanned service exits while the disk was full (a crash, not a retry)`);
      if (faults.length < SERVICES.length + 1 + (disk.mounted ? 1 : 0)) violations.push(`only ${faults.length} faults ran (the run was too short for the schedule)`);
      for (const f of faults) if (f.recoverMs === undefined) violations.push(`${f.kind}: ${f.note ?? 'did not recover'}`);
      return { violations, figures };
    } finally {
      await store.close();
    }
  } finally {
    await stopAll();
  }
}

/**
 * The ledger fed from the four event topics (what a ledger service in a distributed deployment
 * reads), deduped by message id and booked in the store's global order (each event carries its
 * position): its digest must equal a replay from the store.
 */
async function liveDigestFromTopics(kafka: Kafka, prefix: string, expected: number): Promise<{ digest: string; booked: number }> {
  const pending = new Map<bigint, StoredEvent>();
  const consumer = kafka.consumer({ groupId: `${prefix}chaos-ledger-${randomUUID()}` });
  await consumer.connect();
  for (const t of ['intake', 'pricing', 'margin', 'settlement']) await consumer.subscribe({ topic: `${prefix}backstop.events.${t}`, fromBeginning: true });
  let lastMessageAt = Date.now();
  await consumer.run({
    eachMessage: async ({ message }) => {
      lastMessageAt = Date.now();
      const env = JSON.parse(message.value!.toString()) as { id: string; type: string; time: string; payload: Record<string, unknown> };
      const { _stream, _revision, _position, ...data } = env.payload;
      const position = BigInt(String(_position));
      pending.set(position, { id: env.id, type: env.type, data, metadata: {}, stream: String(_stream), revision: Number(_revision), position, recordedAt: env.time });
    },
  });
  const deadline = Date.now() + 60_000;
  while ((pending.size < expected || Date.now() - lastMessageAt < 3_000) && Date.now() < deadline) await sleep(500);
  await consumer.disconnect();
  const live = new LedgerProjection();
  let booked = 0;
  for (const position of [...pending.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    live.apply(pending.get(position)!);
    booked += 1;
  }
  return { digest: live.digest(), booked };
}

function settingsFromEnv(env: NodeJS.ProcessEnv): ChaosSettings {
  const durationS = Number(env.CHAOS_DURATION_S ?? 120);
  const seed = Number(env.CHAOS_SEED ?? 20200312);
  const diskMb = Number(env.CHAOS_DISK_MB ?? 64);
  if (!Number.isInteger(durationS) || durationS < 20 || durationS > 3_600) throw new RangeError(`CHAOS_DURATION_S must be an integer 20..3600, got "${env.CHAOS_DURATION_S}"`);
  if (!Number.isInteger(seed)) throw new RangeError(`CHAOS_SEED must be an integer, got "${env.CHAOS_SEED}"`);
  if (!Number.isInteger(diskMb) || diskMb < 16) throw new RangeError(`CHAOS_DISK_MB must be an integer ≥ 16, got "${env.CHAOS_DISK_MB}"`);
  const dataDir = env.CHAOS_DATA_DIR ?? join(ROOT, '..', 'shared', 'data');
  if (!existsSync(join(dataDir, 'btc-usd-daily.csv'))) throw new Error(`CHAOS_DATA_DIR: ${dataDir}/btc-usd-daily.csv not found`);
  return { durationS, seed, dataDir, diskMb };
}

if (require.main === module) {
  let settings: ChaosSettings;
  try {
    settings = settingsFromEnv(process.env);
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).message}\n`);
    process.exit(2);
  }
  runChaos(settings).then(
    ({ violations, figures }) => {
      process.stdout.write(`\nchaos figures:\n${JSON.stringify(figures, null, 2)}\n`);
      if (violations.length > 0) {
        process.stdout.write(`\nchaos: ${violations.length} violation(s):\n${violations.slice(0, 50).map((v) => `  - ${v}`).join('\n')}\n`);
        process.exit(1);
      }
      process.stdout.write('\nchaos: every check held\n');
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`chaos: the run failed: ${err.stack ?? err.message}\n`);
      process.exit(2);
    },
  );
}
