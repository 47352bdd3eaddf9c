import { Module } from '@nestjs/common';
import { LedgerIngest } from './ledger-ingest';
import { LedgerModule } from './ledger.module';

/**
 * The ledger as its own service (apps/ledger): the four event topics into its own store
 * (LedgerIngest), and the compliance endpoints over that store (LedgerModule's LiveLedger and
 * controller, the same ones the single-process composition serves).
 */
@Module({ imports: [LedgerModule], providers: [LedgerIngest], exports: [LedgerIngest] })
export class LedgerServiceModule {}
