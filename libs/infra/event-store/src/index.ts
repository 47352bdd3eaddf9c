export * from './port';
export * from './sqlite-event-store';
export * from './postgres-event-store';
// Test helpers (a fresh PostgreSQL database per spec file); here so specs outside this lib can use them.
export { createTestDatabase, describePostgres, dropTestDatabase, postgresUnavailableReason, TestDatabase } from './testing/postgres';
export * from './eventstoredb-event-store';
export * from './catch-up-subscription';
export * from './factory';
export * from './hash-chain';
