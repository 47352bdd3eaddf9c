import { Clock, Decider, DomainRejection, invariant, isIsoUtc } from '@backstop/kernel';
import { EventStore } from '@backstop/event-store';
import { Envelope } from '@backstop/messaging';
import { Logger } from '@backstop/telemetry';
import { Causation, FactNotYetKnownError, loadState, ReadModel, streamName } from '@backstop/platform';
import {
  createPoolDecider,
  defaultDecider,
  DefaultState,
  DefaultTriggeredData,
  defaultIdFor,
  PoolCommand,
  PoolEvent,
  PoolState,
} from '@backstop/settlement';
import { SettlementConfig } from './config';
import { defaultStream, headPosition, poolStream, readBook, step } from './steps';

/** An operator's close-out prices (decimal strings only) and who declared it, as the trigger carries them. */
function operatorFields(data: DefaultTriggeredData): { closeOutPrices?: Record<string, string>; declaredBy?: string } {
  const prices = Object.entries(data.closeOutPrices ?? {}).filter(([, price]) => typeof price === 'string' && Number(price) > 0);
  return {
    ...(prices.length > 0 ? { closeOutPrices: Object.fromEntries(prices) } : {}),
    ...(typeof data.declaredBy === 'string' ? { declaredBy: data.declaredBy } : {}),
  };
}

/** A settlement takes five steps; more passes than this means something loops. */
const SETTLE_PASSES_MAX = 8;

export interface SettlerDeps {
  readonly store: EventStore;
  readonly config: SettlementConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This service's read model of the other services' facts: the book a close-out reads. */
  readonly facts: ReadModel;
}

/**
 * Default settlement as a deterministic sequence of appends (SPEC §3 step 9, §5, §9):
 *
 *   1. default-<id>: DefaultDeclared              (causation: the trigger event; no-op if declared)
 *   2. pool-<pool>:  WithdrawalsFrozen            (causation `<id>:freeze`)
 *   3. default-<id>: ContractClosedOut…, LossesAssessed   (`<id>:close-out`, book read up to the trigger)
 *   4. pool-<pool>:  DefaultLossCharged           (`<id>:charge`: the waterfall against the pool's balances)
 *   5. default-<id>: LossAllocated…, PayoutMade…, ClaimRecorded…, DefaultSettled   (`<id>:waterfall`)
 *   6. pool-<pool>:  WithdrawalsUnfrozen          (`<id>:unfreeze`)
 *
 * Each step appends with the stream's expected revision and derives its event ids from the
 * causation id, and each decider treats a done step as a no-op. The driver reads the case's
 * status afresh before every step, so a redelivered trigger, a handler restarted mid-way, or two
 * replicas racing all find what is already recorded and pay once.
 */
export class DefaultSettler {
  private readonly pool: Decider<PoolCommand, PoolState, PoolEvent>;
  private readonly poolStreamName: string;

  constructor(private readonly deps: SettlerDeps) {
    this.pool = createPoolDecider(deps.config.pool);
    this.poolStreamName = poolStream(deps.config.pool.poolId);
  }

  /** margin-monitor's DefaultTriggered: declare the case (once per defaulter) and settle it. */
  async onTrigger(envelope: Envelope): Promise<DefaultState | undefined> {
    const data = envelope.payload as unknown as DefaultTriggeredData;
    if (typeof data.partyId !== 'string' || data.partyId === '') {
      this.deps.logger.error('DefaultTriggered without a partyId: not settled', { eventId: envelope.id });
      return undefined;
    }
    const defaultId = defaultIdFor(data.partyId);
    // The book is this service's own kept facts: wait until they include the trigger itself (and so
    // every fact of the defaulter's margin stream before it), then read it up to this store's head.
    if (!(await this.deps.facts.waitForFact(streamName('margin', data.partyId), envelope.id))) {
      throw new FactNotYetKnownError(`DefaultTriggered ${envelope.id}: default-settlement's read model has not kept it yet; redelivered later`);
    }
    const bookPosition = (await headPosition(this.deps.store)).toString();
    const lastSaneMarks = Object.fromEntries(Object.entries(data.lastSaneMarks ?? {}).filter(([, price]) => typeof price === 'string'));
    await step(
      this.deps.store,
      defaultStream(defaultId),
      defaultDecider,
      {
        type: 'DeclareDefault',
        defaultId,
        partyId: data.partyId,
        reason: String(data.reason ?? 'UNSPECIFIED'),
        detail: String(data.detail ?? ''),
        lastSaneMarks,
        ...operatorFields(data),
        triggerEventId: envelope.id,
        bookPosition,
        currency: this.deps.config.pool.currency,
        at: isIsoUtc(data.at) ? data.at : this.now(),
      },
      this.causation(envelope.id, envelope.correlationId, envelope.traceparent),
    );
    return this.settle(defaultId, envelope.correlationId, envelope.traceparent);
  }

  /** Drives a declared case to SETTLED (and the pool unfrozen), from wherever it stands. */
  async settle(defaultId: string, correlationId = `settle:${defaultId}`, traceparent?: string): Promise<DefaultState> {
    const stream = defaultStream(defaultId);
    const cause = (what: string) => this.causation(`${defaultId}:${what}`, correlationId, traceparent);
    for (let pass = 0; pass < SETTLE_PASSES_MAX; pass += 1) {
      const { state } = await loadState(this.deps.store, stream, defaultDecider);
      const declared = state.declared;
      switch (state.status) {
        case 'NONE':
          throw new Error(`default ${defaultId} has not been declared`);
        case 'DECLARED': {
          invariant(declared !== undefined, 'a declared case has its declaration');
          await this.poolStep({ type: 'FreezeWithdrawals', defaultId, partyId: declared.partyId, at: this.now() }, cause('freeze'));
          const book = await readBook(this.deps.store, BigInt(declared.bookPosition));
          const contracts = book.defaultedContracts(declared.partyId, declared.at);
          const marks = book.closeOutMarks(contracts, declared.lastSaneMarks, this.deps.config.stress.defaultVolAnnual, declared.closeOutPrices);
          await step(this.deps.store, stream, defaultDecider, { type: 'CloseOut', defaultId, contracts, marks, costs: this.deps.config.liquidationCosts, at: this.now() }, cause('close-out'));
          break;
        }
        case 'CLOSED_OUT': {
          const assessment = state.assessment!;
          await this.poolStep({ type: 'FreezeWithdrawals', defaultId, partyId: assessment.partyId, at: this.now() }, cause('freeze'));
          await this.poolStep(
            {
              type: 'ChargeDefaultLoss',
              defaultId,
              partyId: assessment.partyId,
              losses: assessment.parties.map((p) => ({ partyId: p.partyId, loss: p.lossOwed, coverageLimit: p.coverageLimit })),
              contractCollateral: assessment.contractCollateral,
              at: this.now(),
            },
            cause('charge'),
          );
          const { state: pool } = await loadState(this.deps.store, this.poolStreamName, this.pool);
          const charge = pool.charges.get(defaultId);
          invariant(charge !== undefined, `the pool holds the charge of default ${defaultId} after charging it`);
          await step(this.deps.store, stream, defaultDecider, { type: 'RecordWaterfall', defaultId, charge, at: this.now() }, cause('waterfall'));
          break;
        }
        case 'SETTLED':
          await this.poolStep({ type: 'UnfreezeWithdrawals', defaultId, at: this.now() }, cause('unfreeze'));
          return state;
        default: {
          const _exhaustive: never = state.status;
          return _exhaustive;
        }
      }
    }
    throw new Error(`default ${defaultId} did not settle in ${SETTLE_PASSES_MAX} passes`);
  }

  /** Ticker: finishes every settlement the pool still shows as frozen (a crash, a dead-lettered trigger). */
  async resumeFrozen(): Promise<void> {
    const { state } = await loadState(this.deps.store, this.poolStreamName, this.pool);
    for (const defaultId of state.frozen.keys()) {
      try {
        await this.settle(defaultId);
      } catch (err) {
        this.deps.logger.error('resuming a default settlement failed; will retry', { defaultId, error: (err as Error).message });
      }
    }
  }

  private async poolStep(command: PoolCommand, causation: Causation): Promise<void> {
    try {
      await step(this.deps.store, this.poolStreamName, this.pool, command, causation);
    } catch (err) {
      // A pool rule broken by a settlement step is a bug, not a bad message: surface it loudly.
      if (err instanceof DomainRejection) throw new Error(`pool refused settlement step ${command.type}: ${err.message}`);
      throw err;
    }
  }

  private causation(causationId: string, correlationId: string, traceparent?: string): Causation {
    return { causationId, correlationId, occurredAt: this.now(), ...(traceparent ? { traceparent } : {}) };
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }
}
