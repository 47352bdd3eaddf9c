export * from './port';
export * from './topics';
export * from './envelope';
export * from './in-process-bus';
export * from './kafka-bus';
export * from './consumer-runner';
export * from './kafka-codecs';
export * from './kafka-config';
