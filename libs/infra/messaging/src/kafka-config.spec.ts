import { kafkaConnectionFromEnv } from './kafka-config';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const files: Record<string, string> = { '/ca.pem': PEM, '/client.pem': PEM, '/client.key': PEM.replace(/CERTIFICATE/g, 'PRIVATE KEY'), '/pw': 's3cret\n', '/empty': '', '/token': 'eyJhbGciOi.token\n' };
const readFile = (path: string) => {
  if (!(path in files)) throw new Error(`ENOENT: no such file, open '${path}'`);
  return files[path];
};
const parse = (env: Record<string, string>) => kafkaConnectionFromEnv(env, readFile);

describe('Kafka settings from the environment', () => {
  it('defaults: gzip, topics created with 3 partitions and replication factor 1, no TLS, no SASL', () => {
    expect(parse({})).toEqual({ clientId: undefined, compression: 'gzip', createTopics: true, partitions: 3, replicationFactor: 1, tls: undefined, sasl: undefined });
  });

  it('reads a production setup: TLS with a private CA and client certificate, SCRAM-SHA-512 from a password file', () => {
    const config = parse({
      KAFKA_CLIENT_ID: 'backstop-intake',
      KAFKA_COMPRESSION: 'ZSTD',
      KAFKA_CREATE_TOPICS: 'false',
      KAFKA_PARTITIONS: '12',
      KAFKA_REPLICATION_FACTOR: '3',
      KAFKA_TLS_CA_FILE: '/ca.pem',
      KAFKA_TLS_CERT_FILE: '/client.pem',
      KAFKA_TLS_KEY_FILE: '/client.key',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'backstop',
      KAFKA_SASL_PASSWORD_FILE: '/pw',
    });
    expect(config).toMatchObject({ clientId: 'backstop-intake', compression: 'zstd', createTopics: false, partitions: 12, replicationFactor: 3 });
    expect(config.tls).toMatchObject({ ca: PEM, cert: PEM });
    expect(config.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'backstop', password: 's3cret' });
  });

  it('KAFKA_TLS=true alone uses the system CAs; OAUTHBEARER re-reads its token file', () => {
    const config = parse({ KAFKA_TLS: 'true', KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_SASL_OAUTH_TOKEN_FILE: '/token' });
    expect(config.tls).toEqual({ ca: undefined, cert: undefined, key: undefined, keyPassphrase: undefined, servername: undefined });
    expect(config.sasl?.mechanism === 'oauthbearer' && config.sasl.token()).toBe('eyJhbGciOi.token');
    files['/token'] = 'rotated';
    expect(config.sasl?.mechanism === 'oauthbearer' && config.sasl.token()).toBe('rotated');
  });

  it.each([
    [{ KAFKA_COMPRESSION: 'brotli' }, /^KAFKA_COMPRESSION must be one of none, gzip, snappy, lz4, zstd, got "brotli"/],
    [{ KAFKA_PARTITIONS: '0' }, /^KAFKA_PARTITIONS must be an integer 1\.\.10000, got "0"/],
    [{ KAFKA_PARTITIONS: 'three' }, /^KAFKA_PARTITIONS must be an integer/],
    [{ KAFKA_PARTITIONS: '2.5' }, /^KAFKA_PARTITIONS must be an integer/],
    [{ KAFKA_REPLICATION_FACTOR: '-1' }, /^KAFKA_REPLICATION_FACTOR must be an integer 1\.\.32/],
    [{ KAFKA_CREATE_TOPICS: 'maybe' }, /^KAFKA_CREATE_TOPICS must be true or false/],
    [{ KAFKA_CLIENT_ID: 'has space' }, /^KAFKA_CLIENT_ID must be/],
    [{ KAFKA_TLS_CA_FILE: '/missing.pem' }, /^KAFKA_TLS_CA_FILE must name a readable PEM file .*ENOENT/],
    [{ KAFKA_TLS_CA_FILE: '/pw' }, /^KAFKA_TLS_CA_FILE must name a PEM file/],
    [{ KAFKA_TLS_CERT_FILE: '/client.pem' }, /^KAFKA_TLS_KEY_FILE must be set together with KAFKA_TLS_CERT_FILE/],
    [{ KAFKA_TLS: 'false', KAFKA_TLS_CA_FILE: '/ca.pem' }, /^KAFKA_TLS is false but TLS files are given/],
    [{ KAFKA_SASL_MECHANISM: 'GSSAPI' }, /^KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512, oauthbearer, got "GSSAPI"/],
    [{ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, /^KAFKA_SASL_MECHANISM must be set when KAFKA_SASL_USERNAME is/],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_PASSWORD: 'p' }, /^KAFKA_SASL_USERNAME must be set for KAFKA_SASL_MECHANISM=scram-sha-256/],
    [{ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }, /^KAFKA_SASL_PASSWORD must be set \(or KAFKA_SASL_PASSWORD_FILE\)/],
    [{ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: '/empty' }, /^KAFKA_SASL_PASSWORD_FILE names an empty file/],
    [{ KAFKA_SASL_MECHANISM: 'oauthbearer' }, /^KAFKA_SASL_OAUTH_TOKEN must be set/],
  ])('refuses %j, naming the variable and the rule', (env, message) => {
    expect(() => parse(env as Record<string, string>)).toThrow(message);
  });
});
