import { Inject, Module } from '@nestjs/common';
import { TOPICS } from '@backstop/messaging';
import { Runtime, RUNTIME } from '@backstop/platform';
import { marginConfigFromEnv } from './margin.config';
import { marginCommands } from './margin.commands';
import { MarginController } from './margin.controller';
import { CONSUMED_EVENT_TYPES, MarginEngine } from './margin.engine';

const SERVICE = 'margin-monitor' as const;

/**
 * The margin-monitor service (SPEC §1, §3 steps 6-8): marks in, margin calls, cures, misses,
 * defaults and contract cash flows out; streams `margin-<partyId>` and `market-<underlying>`.
 */
@Module({
  controllers: [MarginController],
  providers: [{ provide: MarginEngine, useFactory: (runtime: Runtime) => new MarginEngine(runtime, marginConfigFromEnv()), inject: [RUNTIME] }],
  exports: [MarginEngine],
})
export class MarginModule {
  constructor(@Inject(RUNTIME) runtime: Runtime, @Inject(MarginEngine) engine: MarginEngine) {
    marginCommands(engine).forEach((definition) => runtime.commands.register(definition));
    runtime.registerConsumer({
      name: 'marks',
      service: SERVICE,
      topics: [TOPICS.marketMarks],
      types: ['MarkPrice'],
      handle: (envelope) => engine.handleMark(envelope),
    });
    runtime.registerConsumer({
      name: 'contracts-and-cover',
      service: SERVICE,
      topics: [TOPICS.intakeEvents, TOPICS.settlementEvents],
      types: [...CONSUMED_EVENT_TYPES],
      handle: (envelope) => engine.handleEvent(envelope),
    });
    runtime.registerTicker({ name: 'margin-deadlines', service: SERVICE, everyMs: engine.config.tickEveryMs, handle: (nowIso) => engine.tick(nowIso) });
  }
}
