import { Inject, Module } from '@nestjs/common';
import { Runtime, RUNTIME } from '@backstop/platform';
import { createSettlement, SETTLEMENT, Settlement } from './settlement';
import { settlementCommands } from './settlement.commands';
import { settlementConsumers, settlementTickers } from './settlement.consumers';
import { SettlementController } from './settlement.controller';

/** The default-settlement service: the backstop pool, capacity (Cover 2) and default settlement (SPEC section 1). */
@Module({
  controllers: [SettlementController],
  providers: [{ provide: SETTLEMENT, useFactory: (runtime: Runtime) => createSettlement(runtime), inject: [RUNTIME] }],
})
export class SettlementModule {
  constructor(@Inject(RUNTIME) runtime: Runtime, @Inject(SETTLEMENT) settlement: Settlement) {
    settlementCommands(settlement).forEach((definition) => runtime.commands.register(definition));
    runtime.registerConsumer(settlement.facts.consumer());
    settlementConsumers(settlement).forEach((consumer) => runtime.registerConsumer(consumer));
    settlementTickers(settlement).forEach((ticker) => runtime.registerTicker(ticker));
  }
}
