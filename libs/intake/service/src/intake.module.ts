import { Inject, Module } from '@nestjs/common';
import { Runtime, RUNTIME } from '@backstop/platform';
import { intakeCommands } from './intake.commands';
import { intakeConsumers } from './intake.consumers';
import { IntakeController } from './intake.controller';

/** The contract-intake service: parties, contracts and collateral (SPEC section 1). */
@Module({ controllers: [IntakeController] })
export class IntakeModule {
  constructor(@Inject(RUNTIME) runtime: Runtime) {
    intakeCommands(runtime).forEach((definition) => runtime.commands.register(definition));
    intakeConsumers(runtime).forEach((consumer) => runtime.registerConsumer(consumer));
  }
}
