import { rmSync } from 'node:fs';
import type { EventStore } from '@backstop/event-store';
import { ConsumerHandle, encodeEnvelope, Envelope, KafkaBus, TOPICS, TopicName } from '@backstop/messaging';
import { bearer, readAllEvents, RunningApp, startApp, waitUntil } from '@backstop/testing';

/*
 * The harness of the end-to-end specs that run the four services as four processes over the real
 * broker, sharing one store. It lives with the e2e specs, not in the testing lib, because it needs
 * the messaging lib, whose own specs use the testing lib. Service names come from the caller.
 */

/** Each service's command topic (a spec types it as Record<ServiceName, TopicName> to stay exhaustive). */
export const SERVICE_COMMAND_TOPICS = {
  'contract-intake': TOPICS.intakeCommands,
  'premium-pricing': TOPICS.pricingCommands,
  'margin-monitor': TOPICS.marginCommands,
  'default-settlement': TOPICS.settlementCommands,
} as const satisfies Record<string, TopicName>;

/** The service each command goes to (its command topic and its HTTP port), for every command the specs send. */
export const COMMAND_SERVICE = {
  RegisterParty: 'contract-intake', UpdateCreditProfile: 'contract-intake', RegisterContract: 'contract-intake', AcceptContract: 'contract-intake', DeclineContract: 'contract-intake',
  DepositCollateral: 'contract-intake', WithdrawCollateral: 'contract-intake', CloseContract: 'contract-intake',
  RequestQuote: 'premium-pricing', BindCoverage: 'premium-pricing', FundPremiumAccount: 'premium-pricing', WithdrawPremiumAccount: 'premium-pricing',
  DeclareDefault: 'margin-monitor',
  DepositCapital: 'default-settlement', RequestWithdrawal: 'default-settlement', WithdrawCapital: 'default-settlement', RecordRecovery: 'default-settlement',
} as const satisfies Record<string, keyof typeof SERVICE_COMMAND_TOPICS>;

/**
 * Starts apps/<service>/src/main.ts for each service, one at a time (each creates the topics it
 * needs; concurrent starts on two cores are slower), adding each to `apps` as it comes up so a
 * failed start still leaves the started ones for afterAll to stop.
 */
export async function startServiceApps<S extends string>(apps: Map<S, RunningApp>, services: readonly S[], env: Record<string, string>, timeoutMs: number): Promise<void> {
  for (const service of services) apps.set(service, await startApp(`apps/${service}/src/main.ts`, env, timeoutMs));
}

/** Quiet: every service's publisher has published the head and the head stopped moving. */
export async function waitForServicesQuiet(store: Pick<EventStore, 'readAll' | 'loadCheckpoint'>, services: readonly string[]): Promise<void> {
  const head = async () => (await readAllEvents(store)).at(-1)?.position ?? 0n;
  let last = -1n;
  let stableSince = Date.now();
  await waitUntil(async () => {
    const now = await head();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
      return undefined;
    }
    for (const service of services) {
      if (((await store.loadCheckpoint(`publisher-${service}`)) ?? 0n) < now) return undefined;
    }
    return Date.now() - stableSince > 700 || undefined;
  }, 30_000, 'the four services to go quiet');
}

/** Moves every app's test clock (BACKSTOP_TEST_CLOCK) to `iso`, with the services quiet before and after. */
export async function advanceTestClocks(apps: Iterable<RunningApp>, iso: string, quiet: () => Promise<void>): Promise<void> {
  await quiet();
  for (const app of apps) {
    const res = await fetch(`${app.url}/v1/test/clock`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ now: iso }) });
    if (res.status !== 200) throw new Error(`test clock refused ${iso}: ${res.status} ${await res.text()}`);
  }
  await quiet();
}

/** How long a client keeps re-sending a command rejected as retryable (a fact still on its way between services). */
const RETRY_NOT_YET_KNOWN_MS = 30_000;

/**
 * Publishes a command on its topic and waits for the reply that the spec's observer records by
 * envelope id. A reply marked retryable (rule notYetKnown: the service's read model has not received
 * a fact yet) is retried with the same id, as a client should, until it is not or 30 s have passed.
 */
export async function publishCommand<R extends { readonly retryable?: boolean }>(client: Pick<KafkaBus, 'publish'>, topic: string, envelope: Envelope<unknown>, replies: Map<string, R>): Promise<R> {
  const deadline = Date.now() + RETRY_NOT_YET_KNOWN_MS;
  for (;;) {
    replies.delete(envelope.id);
    await client.publish(topic, [encodeEnvelope(envelope)]);
    const reply = await waitUntil(() => replies.get(envelope.id), 30_000, `the reply to ${envelope.type}`);
    if (reply.retryable !== true || Date.now() > deadline) return reply;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The harness's afterAll: any part may be missing when beforeAll failed part-way. */
export async function stopServiceHarness(parts: {
  readonly observer?: ConsumerHandle;
  readonly client?: Pick<KafkaBus, 'close'>;
  readonly apps: ReadonlyMap<string, RunningApp>;
  readonly store?: Pick<EventStore, 'close'>;
  readonly dir: string;
}): Promise<void> {
  await parts.observer?.stop();
  await parts.client?.close();
  for (const app of parts.apps.values()) await app.stop();
  await parts.store?.close();
  rmSync(parts.dir, { recursive: true, force: true });
}

/**
 * The ledger service (apps/ledger) as its own process: it reads the four event topics into ITS OWN
 * store, which `env` names (BACKSTOP_DATA_FILE, or BACKSTOP_POSTGRES_URL and BACKSTOP_POSTGRES_SCHEMA),
 * with the same KAFKA_BROKERS / KAFKA_TOPIC_PREFIX as the services. Never give it a services' store.
 * Keep LOG_LEVEL at info or below: startApp waits for the "listening on" line.
 */
export function startLedgerApp(env: Record<string, string>, timeoutMs = 180_000): Promise<RunningApp> {
  return startApp('apps/ledger/src/main.ts', env, timeoutMs);
}

export interface LedgerDigest {
  readonly source: string;
  readonly position: string;
  readonly digest: string;
}

/** GET /v1/ledger/digest of a ledger process (compliance token); `position` replays to that position. */
export async function ledgerDigest(url: string, position?: bigint | string): Promise<LedgerDigest | undefined> {
  const res = await fetch(`${url}/v1/ledger/digest${position === undefined ? '' : `?position=${position}`}`, { headers: bearer('compliance') });
  if (res.status === 503) return undefined; // starting, or halted (the body says which)
  if (res.status !== 200) throw new Error(`GET /v1/ledger/digest: ${res.status} ${await res.text()}`);
  return (await res.json()) as LedgerDigest;
}
