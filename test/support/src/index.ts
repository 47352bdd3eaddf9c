export * from './kafka';
export * from './wait';
export * from './process';
export * from './store';
