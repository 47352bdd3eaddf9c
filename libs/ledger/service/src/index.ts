export * from './ledger.module';
export * from './live-ledger';
export * from './ledger.controller';
export * from './dto';
export * from './ledger-ingest';
export * from './ledger-service.module';
