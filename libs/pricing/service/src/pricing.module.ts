import { Inject, Module } from '@nestjs/common';
import { Runtime, RUNTIME } from '@backstop/platform';
import { registerPricing } from './pricing.consumers';
import { pricingCommands } from './pricing.commands';
import { PricingController } from './pricing.controller';
import { PricingService } from './pricing.service';
import { pricingSettingsFromEnv } from './policy';

const SETTINGS = Symbol('backstop.pricing.settings');

/**
 * The premium-pricing service (SPEC section 1): quotes, bound coverage, premium charges,
 * repricing and limit cuts. Settings come from the environment (PRICING_*; see policy.ts).
 */
@Module({
  controllers: [PricingController],
  providers: [
    { provide: SETTINGS, useFactory: () => pricingSettingsFromEnv() },
    {
      provide: PricingService,
      useFactory: (runtime: Runtime, settings: ReturnType<typeof pricingSettingsFromEnv>) => new PricingService(runtime, settings.policy),
      inject: [RUNTIME, SETTINGS],
    },
  ],
})
export class PricingModule {
  constructor(@Inject(RUNTIME) runtime: Runtime, @Inject(PricingService) pricing: PricingService, @Inject(SETTINGS) settings: ReturnType<typeof pricingSettingsFromEnv>) {
    pricingCommands(pricing).forEach((definition) => runtime.commands.register(definition));
    registerPricing(runtime, pricing, settings.tickMs);
  }
}
