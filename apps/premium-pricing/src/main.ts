import './instrument';
import { PricingModule } from '@backstop/pricing-service';
import { runMain } from '@backstop/platform';

// The premium-pricing deployment: this one service against Kafka (KAFKA_BROKERS) and the event store.
void runMain({ services: ['premium-pricing'], modules: [PricingModule] });
