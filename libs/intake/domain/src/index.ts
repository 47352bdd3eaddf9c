export * from './party';
export * from './contract';
