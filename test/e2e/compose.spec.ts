import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DCLinter } from 'dclint';
import { parse } from 'yaml';
import { kafkaConnectionFromEnv } from '@backstop/messaging';
import { SERVICE_NAMES, tokensFromEnv } from '@backstop/platform';
import { WORKSPACE_ROOT } from '@backstop/testing';

interface Service {
  image?: string;
  build?: { context: string; additional_contexts?: Record<string, string> };
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  healthcheck?: { test: string[]; interval?: string };
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
}

/**
 * Docker cannot run here: docker-compose.yml is validated against the Compose Specification JSON
 * schema and linted (dclint ships both, offline), and kept in step with the code it starts.
 */
const FILE = join(WORKSPACE_ROOT, 'docker-compose.yml');
const compose = parse(readFileSync(FILE, 'utf8'), { merge: true }) as { name: string; services: Record<string, Service> };

// Ordering and quoting rules are taste; every schema, security and correctness rule stays on.
const STYLE_ONLY = ['services-alphabetical-order', 'service-keys-order', 'top-level-properties-order', 'service-ports-alphabetical-order', 'require-quotes-in-ports'];
function lint(file: string) {
  const linter = new DCLinter({ rules: Object.fromEntries(STYLE_ONLY.map((r) => [r, 0])), quiet: false, debug: false, exclude: [] } as never);
  return linter.lintFiles([file], false)[0].messages.map((m) => `${m.rule} (line ${m.line}): ${m.message}`);
}

describe('docker-compose.yml', () => {
  it('is valid against the compose-spec schema and passes the linter (e.g. no port bound to every interface)', () => {
    expect(lint(FILE)).toEqual([]);
  });

  it('the validation catches a schema error and an unbound port (so it can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    try {
      const bad = join(dir, 'docker-compose.yml');
      writeFileSync(bad, 'name: x\nservices:\n  a:\n    image: busybox:1.36\n    healthcheck: { tst: [CMD, "true"] }\n');
      expect(lint(bad).join('\n')).toMatch(/invalid-schema/);
      writeFileSync(bad, 'name: x\nservices:\n  a:\n    image: busybox:1.36\n    ports: ["8080:80"]\n');
      expect(lint(bad).join('\n')).toMatch(/no-unbound-port-interfaces/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs Kafka, EventStoreDB, Jaeger v2, one container per service and the ledger, each with a healthcheck', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['eventstore', 'jaeger', 'kafka', 'ledger', ...SERVICE_NAMES].sort());
    expect(compose.services.kafka.image).toMatch(/^apache\/kafka:4\./);
    expect(compose.services.eventstore.image).toMatch(/^eventstore\/eventstore:/);
    // Jaeger v1 (all-in-one 1.x) is end of life: v2 is the image jaegertracing/jaeger:2.x.
    expect(compose.services.jaeger.image).toMatch(/^jaegertracing\/jaeger:2\.\d+\.\d+$/);
    for (const [name, service] of Object.entries(compose.services)) {
      expect([name, service.healthcheck?.test?.[0]]).toEqual([name, expect.stringMatching(/^CMD(-SHELL)?$/)]);
    }
  });

  it('publishes every port on 127.0.0.1 only', () => {
    const ports = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    expect(ports.length).toBeGreaterThan(5);
    for (const port of ports) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('points every service at an app that exists, with the env vars the config reads', () => {
    for (const name of SERVICE_NAMES) {
      const service = compose.services[name];
      const env = service.environment ?? {};
      expect(env.SERVICE).toBe(name);
      expect(existsSync(join(WORKSPACE_ROOT, 'apps', name, 'src', 'main.ts'))).toBe(true);
      expect(interpolate(env.KAFKA_BROKERS, {})).toBe('kafka:29092');
      expect(env.EVENTSTORE_CONNECTION_STRING).toMatch(/^esdb:\/\/eventstore:2113\?tls=false$/);
      expect(service.depends_on).toEqual({ eventstore: { condition: 'service_healthy' }, kafka: { condition: 'service_healthy' } });
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
      expect(service.healthcheck?.test.join(' ')).toMatch(/\/health\/ready/);
      // The image is built with the stress scenarios' price files (the Dockerfile's market-data context).
      expect(service.build).toEqual({ context: '.', additional_contexts: { 'market-data': '../shared/data' } });
      expect([service.read_only, service.cap_drop, service.security_opt]).toEqual([true, ['ALL'], ['no-new-privileges:true']]);
      // One set of tokens for every service (else each container would generate its own), valid ones.
      expect(env.BACKSTOP_TOKENS).toMatch(/^\$\{BACKSTOP_TOKENS:-.*=operator.*\}$/);
      const defaults = env.BACKSTOP_TOKENS.slice('${BACKSTOP_TOKENS:-'.length, -1);
      expect(() => tokensFromEnv({ BACKSTOP_TOKENS: defaults })).not.toThrow();
    }
  });

  it('runs the ledger service on its own store (a file on its own volume), never the services\' EventStoreDB', () => {
    const ledger = compose.services.ledger;
    const env = ledger.environment ?? {};
    expect(env.SERVICE).toBe('ledger');
    expect(existsSync(join(WORKSPACE_ROOT, 'apps', 'ledger', 'src', 'main.ts'))).toBe(true);
    expect(interpolate(env.KAFKA_BROKERS, {})).toBe('kafka:29092');
    expect(env.EVENTSTORE_CONNECTION_STRING).toBe('');
    expect(env.BACKSTOP_DATA_FILE).toBe('/app/data/ledger.db');
    expect(ledger.volumes).toEqual(['ledger-data:/app/data']);
    expect(ledger.depends_on).toEqual({ kafka: { condition: 'service_healthy' } });
    expect(ledger.healthcheck?.test.join(' ')).toMatch(/\/health\/ready/);
    expect([ledger.read_only, ledger.cap_drop, ledger.security_opt]).toEqual([true, ['ALL'], ['no-new-privileges:true']]);
    expect(env.BACKSTOP_TOKENS).toBe(compose.services['contract-intake'].environment?.BACKSTOP_TOKENS);
  });

  it('passes the KAFKA_* security variables through, off by default and valid to the services\' own parser when set', () => {
    const SECURITY = ['KAFKA_TLS', 'KAFKA_TLS_CA_FILE', 'KAFKA_TLS_CERT_FILE', 'KAFKA_TLS_KEY_FILE', 'KAFKA_TLS_SERVERNAME', 'KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD_FILE', 'KAFKA_SASL_OAUTH_TOKEN_FILE'];
    const files: Record<string, string> = { '/etc/backstop/kafka/ca.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', '/etc/backstop/kafka/password': 'pw-from-file\n' };
    const read = (path: string) => {
      if (!(path in files)) throw new Error(`ENOENT ${path}`);
      return files[path];
    };
    for (const name of SERVICE_NAMES) {
      const env = compose.services[name].environment ?? {};
      expect(SECURITY.filter((v) => !(v in env))).toEqual([]);
      // Nothing set in the shell: every one resolves to empty, and the services connect in plaintext.
      const plain = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v, {})]));
      const off = kafkaConnectionFromEnv(plain, read);
      expect([off.tls, off.sasl]).toEqual([undefined, undefined]);
      // Set in the shell (SCRAM-SHA-512 over TLS with a private CA): the container gets them.
      const shell = { KAFKA_BROKERS: 'broker.example.internal:9093', KAFKA_TLS_CA_FILE: '/etc/backstop/kafka/ca.crt', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'backstop', KAFKA_SASL_PASSWORD_FILE: '/etc/backstop/kafka/password' };
      const secured = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v, shell)]));
      expect(secured.KAFKA_BROKERS).toBe('broker.example.internal:9093');
      const on = kafkaConnectionFromEnv(secured, read);
      expect(on.tls?.ca).toContain('BEGIN CERTIFICATE');
      expect(on.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'backstop', password: 'pw-from-file' });
      // Never a password in the file itself: only the path of a mounted file.
      expect(env.KAFKA_SASL_PASSWORD).toBeUndefined();
    }
  });
});

/** Compose's `${NAME:-default}` / `${NAME}` interpolation, against the shell variables in `shell`. */
function interpolate(value: string, shell: Record<string, string>): string {
  return String(value).replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_all, name: string, fallback?: string) => shell[name] || (fallback ?? ''));
}
