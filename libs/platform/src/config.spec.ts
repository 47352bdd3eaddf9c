import { configFromEnv, SERVICE_NAMES } from './config';

describe('configFromEnv: Kafka settings stop start-up when wrong', () => {
  it('passes the validated Kafka settings through', () => {
    const config = configFromEnv(['contract-intake'], { KAFKA_BROKERS: 'k1:9093', KAFKA_PARTITIONS: '6', KAFKA_COMPRESSION: 'lz4', KAFKA_CLIENT_ID: 'intake-1' });
    expect(config.kafkaPartitions).toBe(6);
    expect(config.kafka).toMatchObject({ compression: 'lz4', clientId: 'intake-1', partitions: 6, replicationFactor: 1, createTopics: true });
  });

  it.each([
    [{ KAFKA_PARTITIONS: 'abc' }, /KAFKA_PARTITIONS must be an integer 1\.\.10000, got "abc"/],
    [{ KAFKA_REPLICATION_FACTOR: '0' }, /KAFKA_REPLICATION_FACTOR must be an integer/],
    [{ KAFKA_COMPRESSION: 'lzma' }, /KAFKA_COMPRESSION must be one of/],
  ])('refuses %j, even for the single-process default (so a typo is caught early)', (env, message) => {
    expect(() => configFromEnv(['contract-intake'], { KAFKA_BROKERS: 'k1:9093', ...env })).toThrow(message);
    expect(() => configFromEnv(SERVICE_NAMES, env)).toThrow(message);
  });

  it('needs KAFKA_BROKERS for a process that runs no service (the ledger), naming it; then runs it distributed', () => {
    expect(() => configFromEnv([], {}, 'ledger')).toThrow('KAFKA_BROKERS must be set to run ledger as its own service (e.g. KAFKA_BROKERS=localhost:9092)');
    expect(configFromEnv([], { KAFKA_BROKERS: 'k1:9092' }, 'ledger')).toMatchObject({ services: [], mode: 'distributed', kafkaBrokers: ['k1:9092'] });
  });
});
