import './instrument';
import { IntakeModule } from '@backstop/intake-service';
import { runMain } from '@backstop/platform';

// The contract-intake deployment: this one service against Kafka (KAFKA_BROKERS) and the event store.
void runMain({ services: ['contract-intake'], modules: [IntakeModule] });
