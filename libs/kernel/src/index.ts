export * from './money';
export * from './decider';
export * from './errors';
export * from './time';
export * from './testing/given-when-then';
export * from './instrument';
