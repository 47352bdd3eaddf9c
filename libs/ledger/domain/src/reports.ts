import { currencyOf, fromMinor } from '@backstop/kernel';
import { ACCOUNT_KINDS, kindOfName } from './accounts';
import { DefaultExplainer, DefaultReport } from './explain-default';
import { BalanceLine, LedgerProjection, Scope } from './projection';
import { PageReader, replay, ReplayOptions, Until } from './replay';

/**
 * What the HTTP endpoints and the compliance CLI print, built the same way for both: balances with
 * the digest, one account's history, one default's waterfall. Amounts are decimal strings.
 */
export interface BalancesReport {
  /** Global position of the last event included. */
  readonly position: string;
  /** recordedAt of that event (absent for an empty store). */
  readonly recordedAt?: string;
  readonly eventsApplied: number;
  readonly scope: Scope;
  readonly balances: readonly (Omit<BalanceLine, 'balanceMinor'> & { readonly balanceMinor: string })[];
  /** sha256 of the canonical balance sheet in scope (docs/ledger.md). */
  readonly digest: string;
  /** Event types no service declares, seen and not booked (should be empty). */
  readonly unmappedTypes: Readonly<Record<string, number>>;
}

export function balancesReport(projection: LedgerProjection, scope: Scope): BalancesReport {
  return {
    position: projection.position.toString(),
    ...(projection.recordedAt ? { recordedAt: projection.recordedAt } : {}),
    eventsApplied: projection.eventsApplied,
    scope,
    balances: projection.balances(scope).map((l) => ({ ...l, balanceMinor: l.balanceMinor.toString() })),
    digest: projection.digest(scope),
    unmappedTypes: projection.unmappedTypes,
  };
}

/** Why a scope shows nothing, in words (undefined when some account in scope was posted to). */
export function emptyScopeReason(projection: LedgerProjection, scope: Scope): string | undefined {
  if (projection.hasAccountsIn(scope)) return undefined;
  const upTo = `up to position ${projection.position}`;
  const parts: string[] = [];
  if (scope.party !== undefined) {
    const registered = projection.facts.parties.has(scope.party);
    parts.push(`party ${scope.party} (${registered ? 'registered, but nothing has moved money for it' : 'not a registered party'})`);
  }
  if (scope.contract !== undefined) {
    const registered = projection.facts.contracts.has(scope.contract);
    parts.push(`contract ${scope.contract} (${registered ? 'registered, but no money has moved on it' : 'not a registered contract'})`);
  }
  return parts.length === 0 ? undefined : `no postings for ${parts.join(' and ')} ${upTo}`;
}

export interface AccountHistory {
  readonly account: string;
  readonly position: string;
  readonly balances: readonly { currency: string; balance: string }[];
  readonly postings: readonly {
    readonly position: string;
    readonly eventId: string;
    readonly eventType: string;
    readonly stream: string;
    readonly at: string;
    readonly side: 'debit' | 'credit';
    readonly counterAccount: string;
    readonly amount: string;
    readonly currency: string;
    /** The account's balance (normal side) after this posting. */
    readonly balanceAfter: string;
    readonly memo: string;
  }[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly nextAfter?: string;
}

export const HISTORY_LIMIT_MAX = 1_000;

/** One account's postings, replayed from the store: those after `after`, at most `limit`. */
export async function accountHistory(
  read: PageReader,
  account: string,
  options: { until?: Until; after?: bigint; limit?: number; onProgress?: ReplayOptions['onProgress'] } = {},
): Promise<AccountHistory | undefined> {
  const limit = Math.min(Math.max(1, options.limit ?? 100), HISTORY_LIMIT_MAX);
  const after = options.after ?? 0n;
  const running = new Map<string, bigint>();
  const postings: AccountHistory['postings'][number][] = [];
  let more = false;
  const kind = kindOfName(account);
  const normalDebit = kind !== undefined && ACCOUNT_KINDS[kind].normal === 'debit';
  const projection = await replay(read, {
    until: options.until,
    onProgress: options.onProgress,
    onEvent: (_event, made) => {
      for (const p of made) {
        if (p.debit !== account && p.credit !== account) continue;
        const side = p.debit === account ? 'debit' : 'credit';
        const delta = (side === 'debit') === normalDebit ? p.amountMinor : -p.amountMinor;
        const balance = (running.get(p.currency) ?? 0n) + delta;
        running.set(p.currency, balance);
        if (p.position <= after) continue;
        if (postings.length >= limit) {
          more = true;
          continue;
        }
        const scale = currencyOf(p.currency).scale;
        postings.push({
          position: p.position.toString(),
          eventId: p.eventId,
          eventType: p.eventType,
          stream: p.stream,
          at: p.at,
          side,
          counterAccount: side === 'debit' ? p.credit : p.debit,
          amount: fromMinor(p.amountMinor, scale),
          currency: p.currency,
          balanceAfter: fromMinor(balance, scale),
          memo: p.memo,
        });
      }
    },
  });
  if (!projection.hasAccount(account)) return undefined;
  return {
    account,
    position: projection.position.toString(),
    balances: projection
      .balances()
      .filter((l) => l.account === account)
      .map((l) => ({ currency: l.currency, balance: l.balance })),
    postings,
    ...(more && postings.length > 0 ? { nextAfter: postings[postings.length - 1].position } : {}),
  };
}

/** The waterfall of one default as of `until` (undefined when the default was never declared). */
export async function explainDefault(
  read: PageReader,
  defaultId: string,
  options: { until?: Until; onProgress?: ReplayOptions['onProgress'] } = {},
): Promise<(DefaultReport & { position: string }) | undefined> {
  const explainer = new DefaultExplainer(defaultId);
  const projection = await replay(read, { until: options.until, onProgress: options.onProgress, onEvent: (e, p) => explainer.observe(e, p) });
  return explainer.found ? { ...explainer.report(), position: projection.position.toString() } : undefined;
}
