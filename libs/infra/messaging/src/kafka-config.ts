import { readFileSync } from 'node:fs';
import { KAFKA_COMPRESSIONS, KafkaCompression } from './kafka-codecs';

/**
 * Connection and topic settings for a production Kafka (Strimzi, MSK, Confluent Cloud...), read from
 * the environment and validated at start: a bad value stops start-up with an error naming the
 * variable and the rule, never a late surprise at the first send.
 */
export interface KafkaConnectionConfig {
  readonly clientId?: string;
  /** Codec for what this service produces (replies, events, dead letters). */
  readonly compression: KafkaCompression;
  /** false: operators pre-create the topics; the service only checks they exist. */
  readonly createTopics: boolean;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly tls?: KafkaTlsConfig;
  readonly sasl?: KafkaSaslConfig;
}

export interface KafkaTlsConfig {
  /** PEM text of the CA(s); absent: the system's trusted CAs. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly keyPassphrase?: string;
  /** Checked against the broker's certificate unless KAFKA_TLS_SERVERNAME overrides it. */
  readonly servername?: string;
}

export type KafkaSaslConfig =
  | { readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; readonly username: string; readonly password: string }
  | { readonly mechanism: 'oauthbearer'; /** Read at every (re-)authentication, so a refreshed token file is picked up. */ readonly token: () => string };

export class KafkaConfigError extends Error {
  constructor(variable: string, rule: string, value?: string) {
    super(`${variable} ${rule}${value === undefined ? '' : `, got "${value}"`}`);
    this.name = 'KafkaConfigError';
  }
}

/** gzip by default: every mainstream client (Java, librdkafka/kcat, kafkajs, Go, Python) reads it. */
export const DEFAULT_KAFKA_COMPRESSION: KafkaCompression = 'gzip';

const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'] as const;

export function kafkaConnectionFromEnv(env: NodeJS.ProcessEnv, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): KafkaConnectionConfig {
  const compression = (env.KAFKA_COMPRESSION ?? DEFAULT_KAFKA_COMPRESSION).trim().toLowerCase();
  if (!(KAFKA_COMPRESSIONS as readonly string[]).includes(compression)) {
    throw new KafkaConfigError('KAFKA_COMPRESSION', `must be one of ${KAFKA_COMPRESSIONS.join(', ')}`, env.KAFKA_COMPRESSION);
  }
  const clientId = env.KAFKA_CLIENT_ID?.trim();
  if (clientId !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(clientId)) {
    throw new KafkaConfigError('KAFKA_CLIENT_ID', 'must be 1..249 characters of letters, digits, ".", "_" or "-"', env.KAFKA_CLIENT_ID);
  }
  return {
    clientId: clientId || undefined,
    compression: compression as KafkaCompression,
    createTopics: bool(env, 'KAFKA_CREATE_TOPICS', true),
    partitions: int(env, 'KAFKA_PARTITIONS', 3, 1, 10_000),
    replicationFactor: int(env, 'KAFKA_REPLICATION_FACTOR', 1, 1, 32),
    tls: tlsFromEnv(env, readFile),
    sasl: saslFromEnv(env, readFile),
  };
}

function tlsFromEnv(env: NodeJS.ProcessEnv, readFile: (path: string) => string): KafkaTlsConfig | undefined {
  const files = { ca: 'KAFKA_TLS_CA_FILE', cert: 'KAFKA_TLS_CERT_FILE', key: 'KAFKA_TLS_KEY_FILE' } as const;
  const anyFile = Object.values(files).some((v) => env[v]);
  const enabled = bool(env, 'KAFKA_TLS', anyFile);
  if (!enabled) {
    if (anyFile) throw new KafkaConfigError('KAFKA_TLS', 'is false but TLS files are given (KAFKA_TLS_CA_FILE/CERT_FILE/KEY_FILE)');
    return undefined;
  }
  const load = (variable: string): string | undefined => {
    const path = env[variable];
    if (!path) return undefined;
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      throw new KafkaConfigError(variable, `must name a readable PEM file (${(err as Error).message})`, path);
    }
    if (!text.includes('-----BEGIN ')) throw new KafkaConfigError(variable, 'must name a PEM file (no "-----BEGIN" line in it)', path);
    return text;
  };
  const cert = load(files.cert);
  const key = load(files.key);
  if ((cert === undefined) !== (key === undefined)) {
    throw new KafkaConfigError(cert ? files.key : files.cert, `must be set together with ${cert ? files.cert : files.key} (client certificate and its key)`);
  }
  return { ca: load(files.ca), cert, key, keyPassphrase: env.KAFKA_TLS_KEY_PASSWORD || undefined, servername: env.KAFKA_TLS_SERVERNAME || undefined };
}

function saslFromEnv(env: NodeJS.ProcessEnv, readFile: (path: string) => string): KafkaSaslConfig | undefined {
  const raw = env.KAFKA_SASL_MECHANISM?.trim().toLowerCase();
  if (!raw) {
    for (const v of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE', 'KAFKA_SASL_OAUTH_TOKEN_FILE']) {
      if (env[v]) throw new KafkaConfigError('KAFKA_SASL_MECHANISM', `must be set when ${v} is (one of ${SASL_MECHANISMS.join(', ')})`);
    }
    return undefined;
  }
  if (!(SASL_MECHANISMS as readonly string[]).includes(raw)) {
    throw new KafkaConfigError('KAFKA_SASL_MECHANISM', `must be one of ${SASL_MECHANISMS.join(', ')}`, env.KAFKA_SASL_MECHANISM);
  }
  const secret = (variable: string, fileVariable: string): string => {
    const file = env[fileVariable];
    if (file) {
      try {
        const text = readFile(file).trim();
        if (text) return text;
      } catch (err) {
        throw new KafkaConfigError(fileVariable, `must name a readable file (${(err as Error).message})`, file);
      }
      throw new KafkaConfigError(fileVariable, 'names an empty file', file);
    }
    const value = env[variable];
    if (!value) throw new KafkaConfigError(variable, `must be set (or ${fileVariable}) for KAFKA_SASL_MECHANISM=${raw}`);
    return value;
  };
  if (raw === 'oauthbearer') {
    const first = secret('KAFKA_SASL_OAUTH_TOKEN', 'KAFKA_SASL_OAUTH_TOKEN_FILE');
    const file = env.KAFKA_SASL_OAUTH_TOKEN_FILE;
    return { mechanism: 'oauthbearer', token: file ? () => readFile(file).trim() || first : () => first };
  }
  const username = env.KAFKA_SASL_USERNAME;
  if (!username) throw new KafkaConfigError('KAFKA_SASL_USERNAME', `must be set for KAFKA_SASL_MECHANISM=${raw}`);
  return { mechanism: raw as 'plain' | 'scram-sha-256' | 'scram-sha-512', username, password: secret('KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE') };
}

function bool(env: NodeJS.ProcessEnv, variable: string, fallback: boolean): boolean {
  const raw = env[variable]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new KafkaConfigError(variable, 'must be true or false', env[variable]);
}

function int(env: NodeJS.ProcessEnv, variable: string, fallback: number, min: number, max: number): number {
  const raw = env[variable]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new KafkaConfigError(variable, `must be an integer ${min}..${max}`, env[variable]);
  }
  return Number(raw);
}
