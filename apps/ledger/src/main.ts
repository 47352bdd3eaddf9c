import './instrument';
import { LedgerServiceModule } from '@backstop/ledger-service';
import { runMain } from '@backstop/platform';

// The ledger deployment: the four event topics (KAFKA_BROKERS) into its own store, /v1/ledger for compliance.
void runMain({ services: [], name: 'ledger', modules: [LedgerServiceModule] });
