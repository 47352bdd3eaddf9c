import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntakeModule } from '@backstop/intake-service';
import { encodeEnvelope, KafkaBus, KafkaBusConfig, kafkaConnectionFromEnv, TOPICS, TopicNames } from '@backstop/messaging';
import { commandEnvelope, CommandReply, configFromEnv, startTestBackstop, TestBackstop } from '@backstop/platform';
import { describeKafka, uniquePrefix, waitUntil } from '@backstop/testing';

const { runInterop } = require('../../tools/kafka/java-client') as {
  runInterop(args: string[], options?: { input?: string; timeoutMs?: number; env?: Record<string, string> }): Promise<{ code: number; stdout: string; stderr: string }>;
};
const { startSecuredBroker } = require('../../tools/kafka/secured') as {
  startSecuredBroker(options: { dir: string; users: { mechanism: string; name: string; password: string }[] }): Promise<{
    saslSsl: string;
    mtls: string;
    brokers: string;
    pki: { caFile: string; clientCertFile: string; clientKeyFile: string };
    stop(): Promise<void>;
  }>;
};

/** A KafkaBus configured the way a deployment is: from KAFKA_* variables. */
function busFromEnv(env: Record<string, string>, clientId: string): KafkaBus {
  const connection = kafkaConnectionFromEnv(env);
  const config: KafkaBusConfig = {
    brokers: env.KAFKA_BROKERS.split(','),
    clientId: connection.clientId ?? clientId,
    compression: connection.compression,
    createTopics: connection.createTopics,
    partitions: connection.partitions,
    replicationFactor: connection.replicationFactor,
    tls: connection.tls,
    sasl: connection.sasl,
  };
  return new KafkaBus(config);
}

// Strimzi, MSK and Confluent Cloud expose TLS listeners with SASL (SCRAM, PLAIN, OAUTHBEARER) or
// mutual TLS; the services must reach them through configuration alone (issue 12, item 1).
describeKafka('services on a secured Kafka (TLS with a private CA, SASL/SCRAM, mutual TLS)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-secured-'));
  const users = [
    { mechanism: 'SCRAM-SHA-512', name: 'backstop-intake', password: 'intake-pw-512' },
    { mechanism: 'SCRAM-SHA-256', name: 'desk-7', password: 'desk-pw-256' },
  ];
  let broker: Awaited<ReturnType<typeof startSecuredBroker>>;
  let env: Record<string, string>;

  beforeAll(async () => {
    broker = await startSecuredBroker({ dir: join(dir, 'pki'), users });
    writeFileSync(join(dir, 'intake.password'), 'intake-pw-512\n');
    env = {
      KAFKA_BROKERS: broker.saslSsl,
      KAFKA_TLS_CA_FILE: broker.pki.caFile,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'backstop-intake',
      KAFKA_SASL_PASSWORD_FILE: join(dir, 'intake.password'),
      KAFKA_CLIENT_ID: 'backstop-intake-secured',
      KAFKA_COMPRESSION: 'zstd',
    };
  }, 150_000);
  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs contract-intake through SASL_SSL with SCRAM-SHA-512, and a desk on SCRAM-SHA-256 gets its reply', async () => {
    const prefix = uniquePrefix('secured');
    const topics = new TopicNames(prefix);
    const config = configFromEnv(['contract-intake'], env);
    expect(config.kafka?.sasl?.mechanism).toBe('scram-sha-512');
    let app: TestBackstop | undefined;
    const desk = busFromEnv({ KAFKA_BROKERS: broker.saslSsl, KAFKA_TLS_CA_FILE: broker.pki.caFile, KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'desk-7', KAFKA_SASL_PASSWORD: 'desk-pw-256' }, 'desk-7');
    const replies: { key: string; payload: CommandReply }[] = [];
    try {
      const { mode, kafkaBrokers, kafka, kafkaPartitions } = config;
      app = await startTestBackstop({ modules: [IntakeModule], services: ['contract-intake'], config: { mode, kafkaBrokers, kafka, kafkaPartitions, topicPrefix: prefix } });
      const observer = await desk.subscribe({
        groupId: `${prefix}desk-7`,
        topics: [topics.of(TOPICS.replies)],
        handle: async (m) => {
          replies.push({ key: m.key, payload: JSON.parse(m.value.toString()).payload });
        },
      });
      const command = commandEnvelope('RegisterParty', { partyId: 'secured-desk', name: 'Secured desk', role: 'DESK', credit: { rating: 'A' } });
      await desk.publish(topics.of(TOPICS.intakeCommands), [encodeEnvelope(command)]);
      const reply = await waitUntil(() => replies.find((r) => r.key === command.id)?.payload, 30_000, 'the reply over SASL_SSL');
      expect(reply).toMatchObject({ status: 'ACCEPTED', stream: 'party-secured-desk' });
      // An operator sees where the bus is; anonymous probes get only the verdict.
      const ready = await (await fetch(`${app.url}/health/ready`, { headers: { authorization: `Bearer ${app.runtime.auth.tokenFor('operator')}` } })).json();
      expect(ready).toMatchObject({ status: 'ok', bus: { kind: 'kafka', location: broker.saslSsl } });
      await observer.stop();
    } finally {
      await desk.close();
      await app?.close();
    }
  }, 120_000);

  it('answers a desk using the official Java client over SASL_SSL with SCRAM-SHA-256 and zstd', async () => {
    const prefix = uniquePrefix('secured-java');
    const topics = new TopicNames(prefix);
    const { mode, kafkaBrokers, kafka, kafkaPartitions } = configFromEnv(['contract-intake'], env);
    const app = await startTestBackstop({ modules: [IntakeModule], services: ['contract-intake'], config: { mode, kafkaBrokers, kafka, kafkaPartitions, topicPrefix: prefix } });
    // The client properties a desk would put in its own config for this cluster.
    const props = join(dir, 'desk-7.properties');
    writeFileSync(props, [
      'security.protocol=SASL_SSL',
      'sasl.mechanism=SCRAM-SHA-256',
      'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="desk-7" password="desk-pw-256";',
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${broker.pki.caFile}`,
      '',
    ].join('\n'));
    try {
      const command = commandEnvelope('RegisterParty', { partyId: 'secured-java', name: 'Java desk', role: 'DESK', credit: { rating: 'A' } });
      const { key, value, headers } = encodeEnvelope(command);
      const produced = await runInterop(['produce', broker.saslSsl, topics.of(TOPICS.intakeCommands), 'zstd'], { input: JSON.stringify({ key, value, headers }), env: { INTEROP_PROPS: props }, timeoutMs: 60_000 });
      expect(produced.code).toBe(0);
      const consumed = await runInterop(['consume', broker.saslSsl, topics.of(TOPICS.replies), '45000', command.id], { env: { INTEROP_PROPS: props }, timeoutMs: 60_000 });
      expect(consumed.code).toBe(0);
      const reply = consumed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; value: string; headers: Record<string, string> }).find((r) => r.key === command.id);
      expect(JSON.parse(reply!.value).payload).toMatchObject({ status: 'ACCEPTED', stream: 'party-secured-java' });
      expect(reply!.headers).toMatchObject({ 'message-type': 'CommandAccepted', 'causation-id': command.id });
    } finally {
      await app.close();
    }
  }, 150_000);

  it('connects with a client certificate (mutual TLS) and with OAUTHBEARER from a token file', async () => {
    const topic = `${uniquePrefix('mtls')}probe`;
    const mtls = busFromEnv({ KAFKA_BROKERS: broker.mtls, KAFKA_TLS_CA_FILE: broker.pki.caFile, KAFKA_TLS_CERT_FILE: broker.pki.clientCertFile, KAFKA_TLS_KEY_FILE: broker.pki.clientKeyFile }, 'mtls');
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    // Kafka's default OAUTHBEARER validator accepts unsigned JWTs (a real cluster checks signatures).
    writeFileSync(join(dir, 'token'), `${b64({ alg: 'none' })}.${b64({ sub: 'backstop', iat: now, exp: now + 600 })}.`);
    const oauth = busFromEnv({ KAFKA_BROKERS: broker.saslSsl, KAFKA_TLS_CA_FILE: broker.pki.caFile, KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTH_TOKEN_FILE: join(dir, 'token') }, 'oauth');
    const seen: string[] = [];
    try {
      await mtls.ensureTopics([topic]);
      await mtls.publish(topic, [{ key: 'k', value: 'over mutual TLS' }]);
      const sub = await oauth.subscribe({ groupId: `${topic}.reader`, topics: [topic], handle: async (m) => void seen.push(m.value.toString()) });
      await waitUntil(() => (seen.includes('over mutual TLS') ? true : undefined), 30_000, 'the message read over OAUTHBEARER');
      await sub.stop();
    } finally {
      await mtls.close();
      await oauth.close();
    }
  }, 90_000);

  it('fails clearly on a wrong password, a missing client certificate, an impossible replication factor and missing topics', async () => {
    const topic = `${uniquePrefix('bad')}probe`;
    const attempt = async (extra: Record<string, string>) => {
      const bus = busFromEnv({ ...env, ...extra }, 'bad');
      try {
        await bus.ensureTopics([topic]);
        return 'connected';
      } catch (err) {
        return (err as Error).message;
      } finally {
        await bus.close().catch(() => undefined);
      }
    };
    expect(await attempt({ KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: 'wrong' })).toMatch(/SCRAM SHA512 authentication failed/);
    const noCert = busFromEnv({ KAFKA_BROKERS: broker.mtls, KAFKA_TLS_CA_FILE: broker.pki.caFile }, 'no-cert');
    await expect(noCert.ensureTopics([topic])).rejects.toThrow(/certificate|Connection error|closed/i);
    await noCert.close().catch(() => undefined);
    expect(await attempt({ KAFKA_REPLICATION_FACTOR: '3' })).toMatch(/INVALID_REPLICATION_FACTOR.*KAFKA_REPLICATION_FACTOR=3/);
    expect(await attempt({ KAFKA_CREATE_TOPICS: 'false' })).toMatch(new RegExp(`topics ${topic.replace(/\./g, '\\.')} do not exist .*KAFKA_CREATE_TOPICS=false`));
    expect(await attempt({})).toBe('connected'); // created now
    expect(await attempt({ KAFKA_CREATE_TOPICS: 'false' })).toBe('connected'); // pre-created topics are enough
  }, 120_000);
});
