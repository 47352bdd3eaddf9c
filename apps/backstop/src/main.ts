import './instrument';
import { IntakeModule } from '@backstop/intake-service';
import { LedgerModule } from '@backstop/ledger-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { runMain, SERVICE_NAMES } from '@backstop/platform';

// `npm start`: the four services in one process, embedded event store file, in-process bus, plus
// the compliance ledger (a read-only projection of all of them) under /v1/ledger.
void runMain({ services: SERVICE_NAMES, modules: [IntakeModule, PricingModule, MarginModule, SettlementModule, LedgerModule] });
