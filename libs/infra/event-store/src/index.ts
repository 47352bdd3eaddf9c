export * from './port';
export * from './sqlite-event-store';
export * from './eventstoredb-event-store';
export * from './catch-up-subscription';
export * from './factory';
export * from './hash-chain';
export * from './store-errors';
