export * from './policy';
export * from './cash-flows';
export * from './market';
export * from './account';
export * from './monitor';
export * from './workflow';
export * from './expiry';
