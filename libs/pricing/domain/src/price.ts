import { floatToMinor, fromMinor, iso, minorToFloat, ms, otherSide, Side, toMinor, Violations } from '@backstop/kernel';
import { CounterpartyExposure, coverageStressContribution, DEFAULT_STRESS_POLICY, FALLBACK_CRASH_DAYS, StressCoverage, StressMarket } from '@backstop/margin-model';
import { CoveragePrice, CreditProfile, pdAnnualOf, premiumPerIntervalMinor, priceCoverage } from '@backstop/pricing-model';
import { ContractFacts, counterpartyOf, CreditFacts, MarketFacts, sideOf, termsOf } from './facts';
import { decimal, toDouble } from './numbers';
import { PRICING_LIMITS, PricingPolicy } from './policy';

/** The inputs a coverage was last priced on: what a repricing trigger compares against. */
export interface PricingBasis {
  readonly spot: string;
  readonly volAnnual: string;
  readonly pdAnnual: string;
  readonly collateralHeld: string;
  readonly markAt: string;
  readonly seed: number;
}

/** Every component of a price, on the wire (SPEC §4: "quotes show every component, so a desk can see why"). */
export interface PriceComponents {
  readonly market: { readonly underlying: string; readonly spot: string; readonly volAnnual: string; readonly markAt: string };
  readonly collateralHeld: string;
  readonly expectedExposure: {
    readonly peak: string;
    readonly average: string;
    readonly horizonHours: string;
    readonly profile: readonly { readonly at: string; readonly ee: string; readonly eeCapped: string }[];
  };
  readonly credit: { readonly pdAnnual: string; readonly hazardRateAnnual: string; readonly pdTerm: string; readonly source: string; readonly rating?: string };
  readonly lgd: string;
  readonly expectedLoss: string;
  /** Expected loss with the path-dependent default intensity, minus expectedLoss (wrong-way risk). */
  readonly wrongWayRisk: string;
  /** β of λ ∝ (S/S₀)^(−β): > 0 when the counterparty is long the underlying. */
  readonly wrongWayBeta: string;
  readonly stressContribution: string;
  /** Years the capital is charged for: the exposure horizon plus the close-out period. */
  readonly capitalYears: string;
  readonly costOfCapitalAnnual: string;
  readonly capitalCharge: string;
  readonly loadingFraction: string;
  readonly loading: string;
  readonly premiumTotal: string;
  readonly model: { readonly method: string; readonly paths: number; readonly steps: number; readonly seed: number };
}

export interface PricingRequest {
  readonly contract: ContractFacts;
  readonly protectedSide: Side;
  readonly market: MarketFacts;
  readonly credit: CreditFacts;
  readonly coverageLimitMinor: bigint;
  readonly scale: number;
  readonly startMs: number;
  readonly termMs: number;
  readonly seed: number;
  readonly policy: PricingPolicy;
  /** The pool's open coverages (pricing's capacity book): the capital is the marginal Cover-2 against them. */
  readonly book?: PoolBookFacts;
}

/** One open coverage of the pool, as pricing knows it (its capacity book, the contract, the coverage's limit). */
export interface OpenCoverageFacts {
  readonly coverageId: string;
  readonly contract: ContractFacts;
  readonly protectedPartyId: string;
  readonly counterpartyId: string;
  readonly currency: string;
  readonly coverageLimitMinor: bigint;
}

/** The open coverages and the latest marks of their underlyings. */
export interface PoolBookFacts {
  readonly coverages: readonly OpenCoverageFacts[];
  readonly markets: Readonly<Record<string, MarketFacts>>;
}

/**
 * The Cover-2 input for the open coverages in `currency`, built as settlement's CapacityAssessed
 * builds it: one exposure per counterparty, collateral = what it holds on its covered contracts
 * (each contract counted once), and a stress market with every underlying in the book (last mark
 * and vol, else the contract's own price and the stress policy's default vol).
 */
export function poolStressBook(book: PoolBookFacts | undefined, currency: string, scale: number): { exposures: CounterpartyExposure[]; underlyings: Record<string, { mark: number; volAnnual: number }>; contractsOf: Map<string, Set<string>> } {
  const byCounterparty = new Map<string, { coverages: StressCoverage[]; collateralMinor: bigint; contracts: Set<string> }>();
  const underlyings: Record<string, { mark: number; volAnnual: number }> = {};
  for (const c of book?.coverages ?? []) {
    if (c.currency !== currency || c.contract.currency !== currency || c.contract.status !== 'OPEN') continue;
    const protectedSide = sideOf(c.contract, c.protectedPartyId);
    if (!protectedSide || sideOf(c.contract, c.counterpartyId) !== otherSide(protectedSide)) continue;
    const terms = termsOf(c.contract);
    const entry = byCounterparty.get(c.counterpartyId) ?? { coverages: [], collateralMinor: 0n, contracts: new Set<string>() };
    entry.coverages.push({ terms, protectedSide, coverageLimit: minorToFloat(c.coverageLimitMinor, scale) });
    if (!entry.contracts.has(c.contract.contractId)) {
      entry.contracts.add(c.contract.contractId);
      entry.collateralMinor += toMinor(c.contract.collateral[otherSide(protectedSide)], scale);
    }
    byCounterparty.set(c.counterpartyId, entry);
    if (!underlyings[terms.underlying]) {
      const known = book?.markets[terms.underlying];
      const price = known ? toDouble(known.price) : undefined;
      const vol = known?.volAnnual !== undefined ? toDouble(known.volAnnual) : undefined;
      underlyings[terms.underlying] = {
        mark: price !== undefined && price > 0 ? price : terms.kind === 'OPTION' ? terms.strike! : terms.entryPrice,
        volAnnual: vol !== undefined && vol > 0 ? vol : DEFAULT_STRESS_POLICY.defaultVolAnnual,
      };
    }
  }
  const exposures = [...byCounterparty]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([counterpartyId, e]) => ({ counterpartyId, collateral: minorToFloat(e.collateralMinor, scale), coverages: e.coverages }));
  return { exposures, underlyings, contractsOf: new Map([...byCounterparty].map(([id, e]) => [id, e.contracts])) };
}

export interface PricedCoverage {
  readonly premiumRateAnnual: string;
  /** ⌈premiumTotal × interval / term⌉ in minor units: rounding in the pool's favour (SPEC §2). */
  readonly premiumPerIntervalMinor: bigint;
  readonly premiumTotalMinor: bigint;
  /** The coverage's contribution to the pool's stress loss, rounded up (capacity is checked on it). */
  readonly stressContributionMinor: bigint;
  readonly basis: PricingBasis;
  readonly components: PriceComponents;
  readonly price: CoveragePrice;
}

const METHOD =
  'EL = LGD × Σ EE(tᵢ)·PD(tᵢ₋₁,tᵢ), EE by GBM Monte Carlo (martingale-corrected), capped at the limit; ' +
  'wrong-way risk = EL with intensity λ₀(S/S₀)^(−β) at the same term PD − EL; ' +
  'capital = cost of capital × marginal Cover-2 contribution × (horizon + close-out); loading = fraction × (EL + wrong-way risk + capital)';

/**
 * Why the market and credit inputs cannot be priced on, if they cannot (every reason at once).
 * Field names are those of the command that asked (RequestQuote: contractId names the contract).
 */
export function pricingInputViolations(
  market: MarketFacts | undefined,
  credit: CreditFacts | undefined,
  underlying: string,
  counterpartyId: string,
  atMs: number,
  policy: PricingPolicy,
  violations = new Violations(),
): Violations {
  if (!market) {
    violations.add('contractId', 'marketData', `no mark price for ${underlying} yet: publish MarkPrice on backstop.market.marks first`);
  } else {
    const spot = toDouble(market.price);
    violations.check(spot !== undefined && spot > 0, 'contractId', 'marketData', `the last mark for ${underlying} (${market.price}) is not a positive price`);
    violations.check(market.volAnnual !== undefined, 'contractId', 'volatility', `no volatility for ${underlying} yet: send MarkPrice with volAnnual`);
    const ageMs = atMs - ms(market.priceAt);
    if (policy.markAgeMaxMs > 0) {
      violations.check(ageMs <= policy.markAgeMaxMs, 'contractId', 'staleMark', `the last mark for ${underlying} is from ${market.priceAt}, older than ${policy.markAgeMaxMs / 3_600_000} h`);
    }
  }
  if (!credit) {
    violations.add('contractId', 'creditProfile', `no credit profile for counterparty ${counterpartyId}`);
    return violations;
  }
  let pdAnnual: number | undefined;
  try {
    pdAnnual = pdAnnualOf(modelCredit(credit));
  } catch (err) {
    violations.add('contractId', 'creditProfile', `counterparty ${counterpartyId}'s credit profile cannot be priced: ${(err as Error).message}`);
  }
  // PD = 1 (rating D): the default has happened; protection against it cannot be sold.
  if (pdAnnual !== undefined) violations.check(pdAnnual < 1, 'contractId', 'inDefault', `counterparty ${counterpartyId} is in default (annual PD 1)`);
  return violations;
}

/** Prices protection of one side of a contract with the model, and shows every component. */
export function priceProtection(request: PricingRequest): PricedCoverage {
  const { contract, protectedSide, market, credit, scale, policy } = request;
  const collateralHeldMinor = toMinor(contract.collateral[otherSide(protectedSide)], scale);
  const spot = Number(market.price);
  const volAnnual = Number(market.volAnnual);
  const terms = termsOf(contract);
  const coverageLimit = minorToFloat(request.coverageLimitMinor, scale);
  const collateralHeld = minorToFloat(collateralHeldMinor, scale);
  const stressContribution = marginalStress({ contract, protectedSide, spot, volAnnual, coverageLimitMinor: request.coverageLimitMinor, scale, nowMs: request.startMs, book: request.book });
  const price = priceCoverage({
    terms,
    protectedSide,
    spot,
    volAnnual,
    collateralHeld,
    coverageLimit,
    stressContribution,
    startMs: request.startMs,
    termMs: request.termMs,
    credit: modelCredit(credit),
    lgd: policy.model.lgd,
    costOfCapitalAnnual: policy.model.costOfCapitalAnnual,
    loadingFraction: policy.model.loadingFraction,
    seed: request.seed,
    paths: policy.model.paths,
    steps: policy.model.steps,
  });
  const premiumPerInterval = premiumPerIntervalMinor(price, scale, policy.intervalMs);
  const premiumTotalMinor = floatToMinor(price.premiumTotal, scale, 'up');
  const stressContributionMinor = floatToMinor(price.stressContribution, scale, 'up');
  const basis: PricingBasis = {
    spot: market.price,
    volAnnual: market.volAnnual!,
    pdAnnual: decimal(price.pdAnnual, 12),
    collateralHeld: fromMinor(collateralHeldMinor, scale),
    markAt: market.priceAt,
    seed: request.seed,
  };
  return {
    premiumRateAnnual: decimal(price.premiumRateAnnual, 10),
    premiumPerIntervalMinor: premiumPerInterval,
    premiumTotalMinor,
    stressContributionMinor,
    basis,
    components: components(request, price, basis, premiumTotalMinor, stressContributionMinor),
    price,
  };
}

export interface MarginalStressInput {
  readonly contract: ContractFacts;
  readonly protectedSide: Side;
  readonly spot: number;
  readonly volAnnual: number;
  readonly coverageLimitMinor: bigint;
  readonly scale: number;
  readonly nowMs: number;
  readonly book?: PoolBookFacts;
}

/**
 * The coverage's marginal Cover-2 contribution on the capacity assessment's scenarios (margin
 * model), against the pool's open coverages: the capital the quote charges for and the stress the
 * capacity gate reserves at bind (both call this). A coverage that adds to the two worst
 * counterparties' stress pays for it; one on a counterparty outside them pays less.
 */
export function marginalStress(input: MarginalStressInput): number {
  const { contract, protectedSide, scale } = input;
  const terms = termsOf(contract);
  const pool = poolStressBook(input.book, contract.currency, scale);
  const stressMarket: StressMarket = { nowMs: input.nowMs, underlyings: { ...pool.underlyings, [terms.underlying]: { mark: input.spot, volAnnual: input.volAnnual } } };
  const counterpartyId = counterpartyOf(contract, protectedSide);
  const collateralHeld = minorToFloat(toMinor(contract.collateral[otherSide(protectedSide)], scale), scale);
  return coverageStressContribution({
    book: pool.exposures,
    counterpartyId,
    // The contract's collateral joins the counterparty's unless a coverage on it already counts it.
    collateral: pool.contractsOf.get(counterpartyId)?.has(contract.contractId) ? 0 : collateralHeld,
    coverage: { terms, protectedSide, coverageLimit: minorToFloat(input.coverageLimitMinor, scale) },
    market: stressMarket,
    historical: FALLBACK_CRASH_DAYS,
    policy: DEFAULT_STRESS_POLICY,
  });
}

/** The model's credit profile: an explicit PD wins over a rating (as the model documents). */
export function modelCredit(credit: CreditFacts): CreditProfile {
  if (credit.pdAnnual !== undefined) return { pdAnnual: Number(credit.pdAnnual) };
  return { rating: credit.rating ?? '' };
}

function components(request: PricingRequest, price: CoveragePrice, basis: PricingBasis, premiumTotalMinor: bigint, stressMinor: bigint): PriceComponents {
  const { scale, policy, credit, market } = request;
  const amount = (x: number) => decimal(x, scale);
  const summary = price.expectedExposureSummary;
  return {
    market: { underlying: market.underlying, spot: basis.spot, volAnnual: basis.volAnnual, markAt: basis.markAt },
    collateralHeld: basis.collateralHeld,
    expectedExposure: {
      peak: amount(summary.peakEe),
      average: amount(summary.averageEe),
      horizonHours: decimal(price.horizonMs / 3_600_000, 4),
      profile: sampleIndices(summary.timesMs.length, PRICING_LIMITS.profilePointsMax).map((i) => ({
        at: iso(summary.timesMs[i]),
        ee: amount(summary.ee[i]),
        eeCapped: amount(summary.eeCapped[i]),
      })),
    },
    credit: {
      pdAnnual: basis.pdAnnual,
      hazardRateAnnual: decimal(price.hazardRateAnnual, 12),
      pdTerm: decimal(price.pdTerm, 12),
      source: credit.source,
      ...(credit.rating !== undefined && credit.pdAnnual === undefined ? { rating: credit.rating } : {}),
    },
    lgd: decimal(price.lgd, 6),
    expectedLoss: amount(price.expectedLoss),
    wrongWayRisk: amount(price.wrongWayRisk),
    wrongWayBeta: decimal(price.wrongWayBeta, 6),
    stressContribution: fromMinor(stressMinor, scale),
    capitalYears: decimal(price.capitalYears, 8),
    costOfCapitalAnnual: decimal(policy.model.costOfCapitalAnnual, 6),
    capitalCharge: amount(price.capitalCharge),
    loadingFraction: decimal(policy.model.loadingFraction, 6),
    loading: amount(price.loading),
    premiumTotal: fromMinor(premiumTotalMinor, scale),
    model: { method: METHOD, paths: price.paths, steps: price.steps, seed: price.seed },
  };
}

/** `count` indices spread evenly over 0..length-1, first and last included. */
function sampleIndices(length: number, count: number): number[] {
  if (length <= count) return Array.from({ length }, (_, i) => i);
  return Array.from({ length: count }, (_, k) => Math.round((k * (length - 1)) / (count - 1)));
}
