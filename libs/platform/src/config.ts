import { join } from 'node:path';
import { KafkaConnectionConfig, kafkaConnectionFromEnv } from '@backstop/messaging';

export type ServiceName = 'contract-intake' | 'premium-pricing' | 'margin-monitor' | 'default-settlement';
export const SERVICE_NAMES: readonly ServiceName[] = ['contract-intake', 'premium-pricing', 'margin-monitor', 'default-settlement'];

/** Every setting an operator can give, from the environment, with the defaults a newcomer needs. */
export interface RuntimeConfig {
  /** Which services this process runs: all four for `npm start`, one per deployment otherwise. */
  readonly services: readonly ServiceName[];
  /** 'single-process': in-process bus, events delivered from the store; 'distributed': Kafka. */
  readonly mode: 'single-process' | 'distributed';
  readonly port: number;
  readonly host: string;
  readonly dataFile: string;
  readonly eventStoreConnectionString?: string;
  /** BACKSTOP_POSTGRES_URL / BACKSTOP_POSTGRES_SCHEMA: run on PostgreSQL (one database or schema per service). */
  readonly postgresUrl?: string;
  readonly postgresSchema?: string;
  readonly kafkaBrokers?: readonly string[];
  readonly topicPrefix: string;
  readonly kafkaPartitions: number;
  /** TLS, SASL, compression, client id, topic creation (KAFKA_*); validated at start. */
  readonly kafka?: KafkaConnectionConfig;
}

/** `name`: the process's own name when it runs none of the services (the ledger), for the messages. */
export function configFromEnv(services: readonly ServiceName[], env: NodeJS.ProcessEnv = process.env, name?: string): RuntimeConfig {
  const kafkaBrokers = env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean);
  const single = services.length === SERVICE_NAMES.length && !kafkaBrokers?.length;
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`PORT must be an integer 0..65535, got "${env.PORT}"`);
  if (!single && !kafkaBrokers?.length) {
    throw new Error(`KAFKA_BROKERS must be set to run ${name ?? services.join(', ')} as its own service (e.g. KAFKA_BROKERS=localhost:9092)`);
  }
  // Validated even in single-process mode, so a typo is caught before anyone relies on it.
  const kafka = kafkaConnectionFromEnv(env);
  return {
    services,
    mode: single ? 'single-process' : 'distributed',
    port,
    host: env.HOST ?? '0.0.0.0',
    dataFile: env.BACKSTOP_DATA_FILE ?? join(process.cwd(), 'data', 'backstop.db'),
    eventStoreConnectionString: env.EVENTSTORE_CONNECTION_STRING || undefined,
    postgresUrl: env.BACKSTOP_POSTGRES_URL || undefined,
    postgresSchema: env.BACKSTOP_POSTGRES_SCHEMA || undefined,
    kafkaBrokers,
    topicPrefix: env.KAFKA_TOPIC_PREFIX ?? '',
    kafkaPartitions: kafka.partitions,
    kafka,
  };
}
