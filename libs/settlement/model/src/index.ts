export * from './layers';
export * from './waterfall';
export * from './recovery';
export * from './pool';
