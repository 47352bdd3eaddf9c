export * from './generate';
export * from './event-schemas';
export * from './command-schemas';
