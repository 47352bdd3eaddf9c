export * from './pricing.module';
export * from './pricing.commands';
export * from './pricing.consumers';
export * from './pricing.service';
export * from './policy';
export * from './dto';
export * from './stream-cache';
