import './instrument';
import { MarginModule } from '@backstop/margin-service';
import { runMain } from '@backstop/platform';

// The margin-monitor deployment: this one service against Kafka (KAFKA_BROKERS) and the event store.
void runMain({ services: ['margin-monitor'], modules: [MarginModule] });
