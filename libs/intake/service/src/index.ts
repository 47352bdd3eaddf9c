export * from './intake.module';
export * from './intake.commands';
export * from './dto';
