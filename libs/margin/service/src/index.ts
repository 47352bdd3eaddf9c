export * from './margin.module';
export * from './margin.engine';
export * from './margin.commands';
export * from './margin.config';
export * from './dto';
