import fc from 'fast-check';
import type { ServiceName } from '@backstop/platform';

/**
 * Hostile command messages for the fuzz suites (issue 9): valid-looking commands of every type,
 * each broken by at least one mutation that no schema accepts (prototype keys, deep nesting,
 * 1e309, unknown fields, booleans where strings go, a broken envelope) plus up to two more of any
 * kind (huge strings, over-scale decimals, future or impossible timestamps, an id reused with
 * another body, NaN/Infinity tokens). The JSON is built as TEXT, so "__proto__" stays a key and
 * non-JSON numbers reach the parser as sent.
 */

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_260_109);
/** Bodies per HTTP command route; FUZZ_RUNS=100000 for a bigger run. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
/**
 * Messages per Kafka command topic: 10,000 (issue 9). Replies and dead letters are published
 * batched (one produce per batch), so this takes about a minute (README, Reliability and security).
 * FUZZ_RUNS (or FUZZ_KAFKA_RUNS) sets it, e.g. FUZZ_KAFKA_RUNS=2500 for a quicker run.
 */
export const FUZZ_KAFKA_RUNS = Number(process.env.FUZZ_KAFKA_RUNS ?? process.env.FUZZ_RUNS ?? 10_000);

type Payload = Record<string, unknown>;

/** A valid payload per command type (entities need not exist: the fuzz is about the boundary). */
export const TEMPLATES: Record<ServiceName, Record<string, Payload>> = {
  'contract-intake': {
    RegisterParty: { partyId: 'fz-desk', name: 'Fuzz Desk', role: 'DESK', credit: { rating: 'A' } },
    UpdateCreditProfile: { partyId: 'fz-desk', credit: { pdAnnual: '0.02' }, reason: 'fuzz' },
    RegisterContract: {
      contractId: 'fz-c1', kind: 'PERPETUAL', underlying: 'BTC-USD', size: '1', entryPrice: '60000', currency: 'USDC',
      longPartyId: 'fz-desk', shortPartyId: 'fz-cp', longInitialMargin: '6000', shortInitialMargin: '6000',
    },
    DepositCollateral: { contractId: 'fz-c1', partyId: 'fz-cp', amount: '100' },
    WithdrawCollateral: { contractId: 'fz-c1', partyId: 'fz-cp', amount: '100' },
    CloseContract: { contractId: 'fz-c1', partyId: 'fz-desk', closePrice: '61000' },
  },
  'premium-pricing': {
    RequestQuote: { quoteId: 'fz-q1', contractId: 'fz-c1', protectedPartyId: 'fz-desk', coverageLimit: '10000', termDays: 30 },
    BindCoverage: { coverageId: 'fz-cov1', quoteId: 'fz-q1' },
    FundPremiumAccount: { partyId: 'fz-desk', amount: '100', currency: 'USDC' },
    WithdrawPremiumAccount: { partyId: 'fz-desk', amount: '100', currency: 'USDC' },
  },
  'margin-monitor': {
    DeclareDefault: { partyId: 'fz-cp', reason: 'fuzz' },
  },
  'default-settlement': {
    DepositCapital: { providerId: 'fz-p1', tranche: 'JUNIOR', amount: '1000', currency: 'USDC' },
    RequestWithdrawal: { providerId: 'fz-p1', tranche: 'JUNIOR', shares: '1000' },
    WithdrawCapital: { providerId: 'fz-p1', tranche: 'JUNIOR' },
    RecordRecovery: { defaultId: 'fz-cp', amount: '10', currency: 'USDC', reference: 'fuzz' },
  },
};

/** Raw JSON tokens planted through a placeholder string (JSON.stringify cannot write them). */
const RAW = { inf: '1e309', ninf: '-1e309', nan: 'NaN', infinity: 'Infinity' } as const;
const rawMark = (token: keyof typeof RAW) => `@@RAW:${token}@@`;

type Mutation =
  | { kind: 'protoKey'; key: '__proto__' | 'constructor' | 'prototype'; where: number; value: unknown }
  | { kind: 'deep'; where: number; depth: number; arrays: boolean }
  | { kind: 'nonFinite'; where: number; token: keyof typeof RAW }
  | { kind: 'unknownField'; name: string; value: unknown }
  | { kind: 'booleanField'; where: number }
  | { kind: 'envelope'; field: 'id' | 'schemaVersion' | 'time' | 'key' | 'type' | 'payload'; value: unknown }
  | { kind: 'hugeString'; where: number; length: number }
  | { kind: 'overScale'; where: number; value: string }
  | { kind: 'time'; value: string; inPayload: boolean }
  | { kind: 'reuseId'; slot: number }
  | { kind: 'notJson'; cut: number };

const anyValue = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }));
const where = fc.nat(1_000);

/** Mutations that no command schema accepts: every message carries one. */
const fatal: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('protoKey' as const), key: fc.constantFrom('__proto__' as const, 'constructor' as const, 'prototype' as const), where, value: fc.oneof(anyValue, fc.constant({ prototype: {} })) }),
  fc.record({ kind: fc.constant('deep' as const), where, depth: fc.oneof(fc.integer({ min: 17, max: 60 }), fc.integer({ min: 1_000, max: 3_000 })), arrays: fc.boolean() }),
  fc.record({ kind: fc.constant('nonFinite' as const), where, token: fc.constantFrom('inf' as const, 'ninf' as const, 'nan' as const, 'infinity' as const) }),
  fc.record({ kind: fc.constant('unknownField' as const), name: fc.stringMatching(/^zz[a-z0-9]{1,12}$/), value: anyValue }),
  fc.record({ kind: fc.constant('booleanField' as const), where }),
  // A broken envelope: each value here is wrong for its field.
  fc.oneof(
    fc.record({ kind: fc.constant('envelope' as const), field: fc.constant('id' as const), value: fc.constantFrom('not-a-uuid', '', 42, null, [], {}, 'x'.repeat(300)) }),
    fc.record({ kind: fc.constant('envelope' as const), field: fc.constant('schemaVersion' as const), value: fc.constantFrom(0, -1, 1.5, '1', 999_999, null, true) }),
    fc.record({ kind: fc.constant('envelope' as const), field: fc.constant('time' as const), value: fc.constantFrom('2026-13-45T99:99:99Z', '2026-02-30T00:00:00Z', 'yesterday', 1_767_225_600_000, '') }),
    fc.record({ kind: fc.constant('envelope' as const), field: fc.constant('type' as const), value: fc.constantFrom('LaunchRocket', '', 5, '../../etc/passwd', 'RegisterParty\u0000', null) }),
    fc.record({ kind: fc.constant('envelope' as const), field: fc.constant('key' as const), value: fc.constantFrom('', 7, null, 'k'.repeat(201)) }),
    fc.record({ kind: fc.constant('envelope' as const), field: fc.constant('payload' as const), value: fc.constantFrom([], 'x', 5, null, { zz: 1 }) }),
  ),
  fc.record({ kind: fc.constant('notJson' as const), cut: fc.nat(400) }),
);

/** Further mutations, harmless on their own or not. */
const extra: fc.Arbitrary<Mutation> = fc.oneof(
  fatal,
  fc.record({ kind: fc.constant('hugeString' as const), where, length: fc.oneof({ weight: 60, arbitrary: fc.integer({ min: 201, max: 2_000 }) }, { weight: 30, arbitrary: fc.integer({ min: 2_000, max: 20_000 }) }, { weight: 8, arbitrary: fc.integer({ min: 20_000, max: 100_000 }) }, { weight: 2, arbitrary: fc.integer({ min: 262_145, max: 400_000 }) }) }),
  fc.record({ kind: fc.constant('overScale' as const), where, value: fc.oneof(fc.stringMatching(/^[0-9]{1,3}\.[0-9]{13,40}$/), fc.constantFrom('1e5', '-0.0000001', '00012', '1,000', '0x10', ' 1', '1e-7', '-5', '99999999999999999999999999999999999999', '0.1234567')) }),
  fc.record({ kind: fc.constant('time' as const), value: fc.constantFrom('2099-01-01T00:00:00Z', '2036-06-30T08:00:00Z', '9999-12-31T23:59:59Z', '1970-01-01T00:00:00Z', '2026-01-01T00:00:00+05:00'), inPayload: fc.boolean() }),
  fc.record({ kind: fc.constant('reuseId' as const), slot: fc.nat(49) }),
);

export interface HostileMessage {
  readonly type: string;
  readonly id: string;
  /** The JSON text as sent (may be deliberately not JSON). */
  readonly text: string;
  readonly mutations: readonly string[];
}

/** Ids reused across messages with other bodies (slot → uuid), fixed per seed. */
const reusedIds = (service: ServiceName) =>
  Array.from({ length: 50 }, (_, i) => `0f0f0f0${Object.keys(TEMPLATES).indexOf(service)}-0000-4000-8000-${String(i).padStart(12, '0')}`);

function pick<T>(items: readonly T[], n: number): T {
  return items[n % items.length];
}

function fieldsOf(payload: Payload): string[] {
  return Object.keys(payload);
}

function apply(envelope: Record<string, unknown>, m: Mutation, reused: readonly string[]): { cut?: number } {
  const payload = (typeof envelope.payload === 'object' && envelope.payload !== null && !Array.isArray(envelope.payload) ? envelope.payload : (envelope.payload = {})) as Payload;
  const fields = fieldsOf(payload);
  const field = fields.length > 0 ? pick(fields, 'where' in m ? m.where : 0) : 'x';
  switch (m.kind) {
    case 'protoKey': {
      // Own property named like the machinery (JSON.parse does the same): nested or at the top of the payload.
      const target = m.where % 2 === 0 || typeof payload[field] !== 'object' || payload[field] === null ? payload : (payload[field] as Payload);
      Object.defineProperty(target, m.key, { value: structuredClone(m.value), enumerable: true, configurable: true, writable: true });
      return {};
    }
    case 'deep': {
      let v: unknown = 'bottom';
      for (let i = 0; i < m.depth; i += 1) v = m.arrays ? [v] : { a: v };
      payload[field] = v;
      return {};
    }
    case 'nonFinite':
      payload[field] = rawMark(m.token);
      return {};
    case 'unknownField':
      payload[m.name] = structuredClone(m.value);
      return {};
    case 'booleanField':
      payload[field] = (m.where & 1) === 0;
      return {};
    case 'envelope':
      envelope[m.field] = structuredClone(m.value);
      return {};
    case 'hugeString':
      payload[field] = 'x'.repeat(m.length);
      return {};
    case 'overScale':
      payload[field] = m.value;
      return {};
    case 'time':
      if (m.inPayload) payload[fields.includes('at') ? 'at' : 'expiry'] = m.value;
      else envelope.time = m.value;
      return {};
    case 'reuseId':
      envelope.id = reused[m.slot];
      payload[field] = `changed-${m.slot}-${field}`;
      return {};
    case 'notJson':
      return { cut: m.cut };
    default: {
      const _exhaustive: never = m;
      return _exhaustive;
    }
  }
}

/** Valid input payloads (POST /v1/market/marks, /v1/credit/scores; backstop.market.marks, backstop.credit.scores). */
export const INPUT_TEMPLATES: Record<'MarkPrice' | 'CreditScore', Payload> = {
  MarkPrice: { underlying: 'BTC-USD', price: '60000', volAnnual: '0.6', fundingRate: '0.0001', at: '2026-01-01T00:00:00Z' },
  CreditScore: { partyId: 'fz-desk', rating: 'BB', source: 'fuzz', at: '2026-01-01T00:00:00Z' },
};

/** Hostile messages for one service's command topic (or POST /v1/commands), deterministic per seed. */
export function hostileCommands(service: ServiceName, count: number, seed = FUZZ_SEED, time = '2026-01-01T00:00:00Z'): HostileMessage[] {
  return hostile(TEMPLATES[service], reusedIds(service), count, seed, time);
}

/** Hostile MarkPrice / CreditScore envelopes. */
export function hostileInputs(kind: 'MarkPrice' | 'CreditScore', count: number, seed = FUZZ_SEED, time = '2026-01-01T00:00:00Z'): HostileMessage[] {
  const reused = Array.from({ length: 50 }, (_, i) => `0f0f0f1${kind === 'MarkPrice' ? 0 : 1}-0000-4000-8000-${String(i).padStart(12, '0')}`);
  return hostile({ [kind]: INPUT_TEMPLATES[kind] }, reused, count, seed, time);
}

function hostile(templates: Record<string, Payload>, reused: readonly string[], count: number, seed: number, time: string): HostileMessage[] {
  const types = Object.keys(templates);
  const arb = fc.record({ type: fc.constantFrom(...types), id: fc.uuid(), first: fatal, more: fc.array(extra, { maxLength: 2 }) });
  return fc.sample(arb, { numRuns: count, seed }).map(({ type, id, first, more }) => {
    const envelope: Record<string, unknown> = {
      id, type, schemaVersion: 1, time, key: 'fuzz', correlationId: 'fuzz',
      payload: structuredClone(templates[type]),
    };
    let cut: number | undefined;
    // The fatal mutation goes last, so no later one can overwrite the field it broke.
    for (const m of [...more, first]) cut = apply(envelope, m, reused).cut ?? cut;
    let text = JSON.stringify(envelope).replace(/"@@RAW:(\w+)@@"/g, (_all, token: keyof typeof RAW) => RAW[token]);
    if (cut !== undefined) text = text.slice(0, Math.min(cut, text.length - 1));
    return { type, id: typeof envelope.id === 'string' ? envelope.id : '', text, mutations: [first, ...more].map((m) => m.kind) };
  });
}
