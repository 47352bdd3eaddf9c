import './instrument';
import { SettlementModule } from '@backstop/settlement-service';
import { runMain } from '@backstop/platform';

// The default-settlement deployment: this one service against Kafka (KAFKA_BROKERS) and the event store.
void runMain({ services: ['default-settlement'], modules: [SettlementModule] });
