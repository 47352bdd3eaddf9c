import { Inject, Module } from '@nestjs/common';
import { ReadModel, Runtime, RUNTIME } from '@backstop/platform';
import { INTAKE_FACTS } from './facts-view';
import { intakeCommands } from './intake.commands';
import { intakeConsumers } from './intake.consumers';
import { IntakeController } from './intake.controller';

/** The contract-intake service: parties, contracts and collateral (SPEC section 1). */
@Module({ controllers: [IntakeController] })
export class IntakeModule {
  constructor(@Inject(RUNTIME) runtime: Runtime) {
    // margin-monitor's standings and marks as this service keeps them (its read model, its own store).
    const facts = new ReadModel(runtime.store, { service: 'contract-intake', ...INTAKE_FACTS });
    runtime.registerConsumer(facts.consumer());
    intakeCommands(runtime, facts).forEach((definition) => runtime.commands.register(definition));
    intakeConsumers(runtime).forEach((consumer) => runtime.registerConsumer(consumer));
  }
}
