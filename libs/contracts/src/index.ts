export * from './intake';
export * from './pricing';
export * from './margin';
export * from './read-models';
