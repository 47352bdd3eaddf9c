export * from './option-value';
export * from './valuation';
export * from './portfolio';
export * from './span';
export * from './equity';
export * from './mark-sanity';
export * from './stress';
