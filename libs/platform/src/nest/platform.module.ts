import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Runtime } from '../runtime';
import { CommandsController } from './commands.controller';
import { HealthController } from './health.controller';
import { InputsController } from './inputs.controller';
import { RUNTIME } from './tokens';

@Global()
@Module({})
export class PlatformModule implements OnApplicationShutdown {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  static forRuntime(runtime: Runtime): DynamicModule {
    return {
      module: PlatformModule,
      controllers: [CommandsController, InputsController, HealthController],
      providers: [{ provide: RUNTIME, useValue: runtime }],
      exports: [RUNTIME],
    };
  }

  /** Graceful shutdown: stop consuming, let in-flight work finish, close the bus and the store. */
  async onApplicationShutdown(): Promise<void> {
    await this.runtime.stop();
  }
}
