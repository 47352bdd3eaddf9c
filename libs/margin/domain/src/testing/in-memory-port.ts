/**
 * The workflow's port over memory, for specs: the same semantics as the platform's decideOnStream
 * (a causation already in the stream is "already done"; otherwise decide on the folded state and
 * append), then the written events go to the monitor, as the service's port does.
 */
import { Decider, DomainEvent, DomainRejection } from '@backstop/kernel';
import { AccountCommand, accountDecider } from '../account';
import { MarketCommand, marketDecider } from '../market';
import { MarginMonitor } from '../monitor';
import { marginStream, marketStream } from '../projection';
import { MarginPolicy } from '../policy';
import { Causation } from '@backstop/kernel';
import { DecisionOutcome, DecisionPort } from '../workflow';

export interface MemoryEvent extends DomainEvent<string, Record<string, unknown>> {
  readonly stream: string;
  readonly revision: number;
  readonly causation: Causation;
}

export class InMemoryMarginPort implements DecisionPort {
  readonly streams = new Map<string, MemoryEvent[]>();
  readonly log: MemoryEvent[] = [];
  readonly rejections: { what: string; rejection: DomainRejection }[] = [];
  private readonly account: ReturnType<typeof accountDecider>;
  private readonly market: ReturnType<typeof marketDecider>;

  constructor(private readonly monitor: MarginMonitor, policy: MarginPolicy) {
    this.account = accountDecider(policy);
    this.market = marketDecider(policy.sanity);
  }

  async decideAccount(command: AccountCommand, causation: Causation): Promise<DecisionOutcome> {
    return this.decideOn(marginStream(command.partyId), this.account, command, causation);
  }

  async decideMarket(command: MarketCommand, causation: Causation): Promise<DecisionOutcome> {
    return this.decideOn(marketStream(command.underlying), this.market, command, causation);
  }

  /** A restart: a new monitor rebuilt from everything recorded so far, over the same streams. */
  restarted(policy: MarginPolicy): { monitor: MarginMonitor; port: InMemoryMarginPort } {
    const monitor = new MarginMonitor(policy);
    const port = new InMemoryMarginPort(monitor, policy);
    for (const [stream, events] of this.streams) port.streams.set(stream, [...events]);
    port.log.push(...this.log);
    for (const e of this.log) monitor.applyReplayed({ stream: e.stream, revision: e.revision, type: e.type, data: e.data });
    monitor.completeReplay();
    return { monitor, port };
  }

  rejected(what: string, rejection: DomainRejection): void {
    this.rejections.push({ what, rejection });
  }

  eventsOf(type: string): MemoryEvent[] {
    return this.log.filter((e) => e.type === type);
  }

  private decideOn<C, S, E extends DomainEvent>(stream: string, decider: Decider<C, S, E>, command: C, causation: Causation): DecisionOutcome {
    const events = this.streams.get(stream) ?? [];
    const previous = events.filter((e) => e.causation.causationId === causation.causationId);
    if (previous.length > 0) return { stream, lastRevision: previous[previous.length - 1].revision, events: previous, alreadyApplied: true };
    const state = events.reduce((s, e) => decider.evolve(s, e as unknown as E), decider.initialState);
    const decided = decider.decide(command, state);
    const written = decided.map((e, i): MemoryEvent => ({ type: e.type, data: e.data as Record<string, unknown>, stream, revision: events.length + i, causation }));
    events.push(...written);
    this.streams.set(stream, events);
    this.log.push(...written);
    for (const e of written) this.monitor.apply({ stream, revision: e.revision, type: e.type, data: e.data });
    return { stream, lastRevision: events.length - 1, events: written, alreadyApplied: false };
  }
}
