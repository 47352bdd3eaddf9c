export * from './policy';
export * from './upstream';
export * from './pool';
export * from './close-out';
export * from './default-case';
export * from './book';
export * from './capacity';
