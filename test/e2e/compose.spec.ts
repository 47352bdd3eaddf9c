import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SERVICE_NAMES, tokensFromEnv } from '@backstop/platform';
import { WORKSPACE_ROOT } from '@backstop/testing';

/** Docker cannot run here; this keeps docker-compose.yml in step with the code it starts. */
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(WORKSPACE_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; depends_on?: Record<string, unknown>; image?: string }>;
  };

  it('runs Kafka, EventStoreDB, Jaeger and one container per service', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['eventstore', 'jaeger', 'kafka', ...SERVICE_NAMES].sort());
    expect(compose.services.kafka.image).toMatch(/^apache\/kafka:4\./);
    expect(compose.services.eventstore.image).toMatch(/^eventstore\/eventstore:/);
  });

  it('points every service at an app that exists, with the env vars the config reads', () => {
    for (const name of SERVICE_NAMES) {
      const env = compose.services[name].environment ?? {};
      expect(env.SERVICE).toBe(name);
      expect(existsSync(join(WORKSPACE_ROOT, 'apps', name, 'src', 'main.ts'))).toBe(true);
      expect(env.KAFKA_BROKERS).toBe('kafka:29092');
      expect(env.EVENTSTORE_CONNECTION_STRING).toMatch(/^esdb:\/\/eventstore:2113\?tls=false$/);
      expect(Object.keys(compose.services[name].depends_on ?? {}).sort()).toEqual(['eventstore', 'kafka']);
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
      // One set of tokens for every service (else each container would generate its own).
      expect(env.BACKSTOP_TOKENS).toMatch(/^\$\{BACKSTOP_TOKENS:-.*=operator.*\}$/);
      const defaults = env.BACKSTOP_TOKENS.slice('${BACKSTOP_TOKENS:-'.length, -1);
      expect(() => tokensFromEnv({ BACKSTOP_TOKENS: defaults })).not.toThrow();
    }
  });
});
