import { Module } from '@nestjs/common';
import { LedgerController } from './ledger.controller';
import { LiveLedger } from './live-ledger';

/**
 * The ledger (SPEC §7): a live double-entry projection of every service's money events, read from
 * the event store in global order, and the compliance endpoints under /v1/ledger. It owns no
 * streams and writes nothing: balances are projections of the events.
 */
@Module({ controllers: [LedgerController], providers: [LiveLedger], exports: [LiveLedger] })
export class LedgerModule {}
