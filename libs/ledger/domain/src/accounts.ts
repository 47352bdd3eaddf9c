import { assertNever } from '@backstop/kernel';

/**
 * The chart of accounts (docs/ledger.md). The books are the backstop's own, as custodian of every
 * amount in the system: what it holds for parties (collateral, premiums not yet distributed,
 * payouts due), the providers' capital, and the claims it administers against defaulters.
 *
 * Every account has a normal side. A balance is shown on that side (positive = the normal case).
 * Most accounts the system OWES on (liabilities, the providers' equity) are floored at zero: the
 * system cannot owe a negative amount, so going below zero is money made from nothing
 * (InvariantViolation). Two are not, by design of the services that move them: variation margin
 * (flows are owed in full whatever the payer holds; margin-monitor calls or defaults the payer) and
 * a provider's book capital, whose floor is on the tranche (see floorGroupOf).
 */
export type Tranche = 'junior' | 'senior';
export const TRANCHES: readonly Tranche[] = ['junior', 'senior'];

export type AccountRef =
  /** Boundary with the outside world: net money `party` paid into the system (negative: it got more out). */
  | { readonly kind: 'cash-external'; readonly party: string }
  /** Collateral `party` posted on `contract` (intake's balance: deposits − withdrawals), less what a default took. */
  | { readonly kind: 'collateral'; readonly party: string; readonly contract: string }
  /** Contract cash flows (funding, settlement) `party` received (+) or paid (−) on `contract`. */
  | { readonly kind: 'variation-margin'; readonly party: string; readonly contract: string }
  /** A desk's premium account at pricing (pricing's balance). */
  | { readonly kind: 'premium-account'; readonly party: string }
  /** Premium debited for `coverage`, owed to the pool until settlement distributes it. */
  | { readonly kind: 'premium-collected'; readonly coverage: string }
  /** Premium income a pool holds while no tranche can earn it. */
  | { readonly kind: 'premium-reserve'; readonly pool: string }
  /** A provider's book capital in a tranche: deposits + income − withdrawals − losses − advances. */
  | { readonly kind: 'pool-capital'; readonly tranche: Tranche; readonly provider: string }
  /** Margin the pool posted on `party`'s behalf when it missed a call (held against its positions). */
  | { readonly kind: 'backstop-cover-advanced'; readonly party: string }
  /** Everything `party` (a defaulter) owes that the system administers: close-out losses, advanced cover. */
  | { readonly kind: 'claim-on-defaulter'; readonly party: string }
  /** What the system owes `party` (a protected party) out of a default, to be paid by the waterfall. */
  | { readonly kind: 'payout-payable'; readonly party: string }
  /** A protected party's claim left unpaid after the waterfall, payable only from recoveries. */
  | { readonly kind: 'unpaid-claim'; readonly creditor: string; readonly defaulter: string }
  /** What a provider lost or advanced for `defaulter`, repayable from recoveries. */
  | { readonly kind: 'pool-recoverable'; readonly tranche: Tranche; readonly provider: string; readonly defaulter: string }
  /** Money recovered from a default's estate, not yet passed back up the waterfall. */
  | { readonly kind: 'recovery'; readonly defaultId: string };

export type AccountKind = AccountRef['kind'];
export type NormalSide = 'debit' | 'credit';
export type AccountClass = 'external' | 'asset' | 'liability' | 'equity';

interface KindInfo {
  readonly class: AccountClass;
  readonly normal: NormalSide;
  readonly floored: boolean;
  readonly describe: string;
}

export const ACCOUNT_KINDS: Readonly<Record<AccountKind, KindInfo>> = {
  'cash-external': { class: 'external', normal: 'debit', floored: false, describe: 'net money the party paid into the system' },
  collateral: { class: 'liability', normal: 'credit', floored: true, describe: 'collateral the party posted on the contract' },
  'variation-margin': { class: 'liability', normal: 'credit', floored: false, describe: 'cash flows the party received (+) or paid (−) on the contract' },
  'premium-account': { class: 'liability', normal: 'credit', floored: true, describe: "the party's premium account at pricing" },
  'premium-collected': { class: 'liability', normal: 'credit', floored: true, describe: 'premium debited, owed to the pool until distributed' },
  'premium-reserve': { class: 'equity', normal: 'credit', floored: true, describe: 'premium income held while no tranche can earn it' },
  'pool-capital': { class: 'equity', normal: 'credit', floored: true, describe: "a provider's book capital in a tranche (floor: the tranche's total)" },
  'backstop-cover-advanced': { class: 'liability', normal: 'credit', floored: true, describe: "margin the pool posted on the party's behalf" },
  'claim-on-defaulter': { class: 'asset', normal: 'debit', floored: false, describe: 'what the defaulter owes, administered by the system' },
  'payout-payable': { class: 'liability', normal: 'credit', floored: true, describe: 'owed to the protected party out of a default' },
  'unpaid-claim': { class: 'liability', normal: 'credit', floored: true, describe: "a creditor's unpaid claim on a defaulter, payable from recoveries" },
  'pool-recoverable': { class: 'equity', normal: 'credit', floored: true, describe: 'what a provider lost to or advanced for a defaulter, repayable from recoveries' },
  recovery: { class: 'liability', normal: 'credit', floored: true, describe: 'recovered from a default, not yet allocated' },
};

/** Ids may contain ':' (platform IsEntityId), so a name segment escapes '%' and ':' to stay unambiguous. */
function segment(id: string): string {
  return id.replace(/%/g, '%25').replace(/:/g, '%3A');
}

/** The account's name: `<kind>:<segment>…`, e.g. `collateral:cp1:c1`, `pool-capital:junior:p1`. */
export function accountName(ref: AccountRef): string {
  switch (ref.kind) {
    case 'cash-external':
      return `cash:external:${segment(ref.party)}`;
    case 'collateral':
      return `collateral:${segment(ref.party)}:${segment(ref.contract)}`;
    case 'variation-margin':
      return `variation-margin:${segment(ref.party)}:${segment(ref.contract)}`;
    case 'premium-account':
      return `premium-account:${segment(ref.party)}`;
    case 'premium-collected':
      return `premium-collected:${segment(ref.coverage)}`;
    case 'premium-reserve':
      return `premium-reserve:${segment(ref.pool)}`;
    case 'pool-capital':
      return `pool-capital:${ref.tranche}:${segment(ref.provider)}`;
    case 'backstop-cover-advanced':
      return `backstop-cover-advanced:${segment(ref.party)}`;
    case 'claim-on-defaulter':
      return `claim-on-defaulter:${segment(ref.party)}`;
    case 'payout-payable':
      return `payout-payable:${segment(ref.party)}`;
    case 'unpaid-claim':
      return `unpaid-claim:${segment(ref.creditor)}:${segment(ref.defaulter)}`;
    case 'pool-recoverable':
      return `pool-recoverable:${ref.tranche}:${segment(ref.provider)}:${segment(ref.defaulter)}`;
    case 'recovery':
      return `recovery:${segment(ref.defaultId)}`;
    default:
      return assertNever(ref, 'account');
  }
}

/** The parties an account belongs to (party scope): holders, providers, creditors and defaulters. */
export function partiesOf(ref: AccountRef): readonly string[] {
  switch (ref.kind) {
    case 'cash-external':
    case 'collateral':
    case 'variation-margin':
    case 'premium-account':
    case 'backstop-cover-advanced':
    case 'claim-on-defaulter':
    case 'payout-payable':
      return [ref.party];
    case 'pool-capital':
      return [ref.provider];
    case 'unpaid-claim':
      return [ref.creditor, ref.defaulter];
    case 'pool-recoverable':
      return [ref.provider, ref.defaulter];
    case 'premium-collected':
    case 'premium-reserve':
    case 'recovery':
      return []; // resolved through the coverage / the default by the projection's facts
    default:
      return assertNever(ref, 'account');
  }
}

/**
 * What must not go below zero for this account: the account itself, or for pool capital its
 * tranche's total. Withdrawals are priced by shares (SPEC §6), so a provider may take out value the
 * other holders left in the tranche and its own book balance can dip below zero; the tranche cannot.
 * Undefined: not floored.
 */
export function floorGroupOf(ref: AccountRef, name: string): string | undefined {
  if (!ACCOUNT_KINDS[ref.kind].floored) return undefined;
  return ref.kind === 'pool-capital' ? `pool-capital:${ref.tranche}:*` : name;
}

/** JUNIOR, JUNIOR_TRANCHE, junior → junior (the services name tranches and layers both ways). */
export function trancheOf(text: unknown): Tranche | undefined {
  if (typeof text !== 'string') return undefined;
  const t = text.toUpperCase().replace(/_TRANCHE$/, '');
  if (t === 'JUNIOR') return 'junior';
  if (t === 'SENIOR') return 'senior';
  return undefined;
}

/** The kind an account name starts with (`cash:external:…` is cash-external), if any. */
export function kindOfName(name: string): AccountKind | undefined {
  if (name.startsWith('cash:external:')) return 'cash-external';
  const prefix = name.slice(0, name.indexOf(':'));
  return prefix !== 'cash-external' && Object.prototype.hasOwnProperty.call(ACCOUNT_KINDS, prefix) ? (prefix as AccountKind) : undefined;
}
