/**
 * Generates docs/asyncapi.yaml from the code: command payloads from the class-validator DTOs the
 * services register, event payloads from the domain event types (TypeScript compiler), input
 * payloads from the input DTOs, replies/dead letters/envelope from their interfaces.
 *   npm run asyncapi            write docs/asyncapi.yaml
 *   npm run asyncapi -- --check exit 1 if the committed file differs (a test does the same)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { IntakeModule } from '@backstop/intake-service';
import { MarginModule } from '@backstop/margin-service';
import { TOPICS } from '@backstop/messaging';
import { CommandDefinition, describeAuthorization, INPUT_SCHEMAS, ServiceName, startTestBackstop, STREAM_OWNERS } from '@backstop/platform';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { dtoSchema, JsonSchema } from './command-schemas';
import { eventSchemas, namedTypeSchema } from './event-schemas';

const ROOT = join(__dirname, '..', '..');
export const ASYNCAPI_FILE = join(ROOT, 'docs', 'asyncapi.yaml');

const SERVICE_TOPICS: Record<ServiceName, { commands: string; events: string; capability: string }> = {
  'contract-intake': { commands: TOPICS.intakeCommands, events: TOPICS.intakeEvents, capability: 'intake' },
  'premium-pricing': { commands: TOPICS.pricingCommands, events: TOPICS.pricingEvents, capability: 'pricing' },
  'margin-monitor': { commands: TOPICS.marginCommands, events: TOPICS.marginEvents, capability: 'margin' },
  'default-settlement': { commands: TOPICS.settlementCommands, events: TOPICS.settlementEvents, capability: 'settlement' },
};

const channelId = (topic: string) => topic.replace(/^backstop\./, '').replace(/\.(\w)/g, (_m, c: string) => c.toUpperCase());

export async function commandDefinitions(): Promise<CommandDefinition[]> {
  const app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule] });
  try {
    return app.runtime.commands.definitionsFor();
  } finally {
    await app.close();
  }
}

export async function generateAsyncApi(): Promise<string> {
  const commands = await commandDefinitions();
  const events = eventSchemas(ROOT);
  const envelope = namedTypeSchema(ROOT, 'libs/infra/messaging/src/envelope.ts', 'Envelope');
  const messages: Record<string, JsonSchema> = {};
  const channels: Record<string, JsonSchema> = {};
  const operations: Record<string, JsonSchema> = {};
  const addMessage = (name: string, summary: string, payload: JsonSchema, version = 1) => {
    messages[name] = {
      name,
      title: name,
      summary,
      contentType: 'application/json',
      headers: {
        type: 'object',
        properties: {
          'message-id': { type: 'string', format: 'uuid' },
          'message-type': { type: 'string', const: name },
          'schema-version': { type: 'string', pattern: '^[0-9]+$' },
          'correlation-id': { type: 'string', description: 'The correlationId of the envelope: the id shared by a command and everything it caused' },
          'causation-id': { type: 'string', description: 'The causationId of the envelope: the id of the message that caused this one' },
          traceparent: { type: 'string', pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$', description: 'W3C trace context' },
        },
      },
      correlationId: { description: 'Replies and events carry the correlationId of the command that caused them.', location: '$message.payload#/correlationId' },
      bindings: { kafka: { key: { type: 'string', description: 'the entity id (commands, events), the command id (replies)' }, bindingVersion: '0.5.0' } },
      payload: {
        allOf: [{ $ref: '#/components/schemas/Envelope' }, { type: 'object', properties: { type: { const: name }, schemaVersion: { const: version }, payload } }],
      },
    };
    return { $ref: `#/components/messages/${name}` };
  };
  const addChannel = (topic: string, description: string, refs: Record<string, JsonSchema>, action: 'send' | 'receive', key: string) => {
    const id = channelId(topic);
    channels[id] = {
      address: topic,
      description: `${description} Key: ${key}. A configurable prefix (KAFKA_TOPIC_PREFIX) may stand before the name.`,
      messages: refs,
      bindings: { kafka: { topic, bindingVersion: '0.5.0' } },
    };
    operations[`${action}${id[0].toUpperCase()}${id.slice(1)}`] = {
      action,
      channel: { $ref: `#/channels/${id}` },
      messages: Object.keys(refs).map((m) => ({ $ref: `#/channels/${id}/messages/${m}` })),
    };
  };

  for (const [service, topics] of Object.entries(SERVICE_TOPICS) as [ServiceName, (typeof SERVICE_TOPICS)[ServiceName]][]) {
    const own = commands.filter((c) => c.service === service).sort((a, b) => a.type.localeCompare(b.type));
    addChannel(topics.commands, `Commands to ${service}; one reply each on backstop.replies.`, Object.fromEntries(own.map((c) => [c.type, addMessage(c.type, `${c.summary} ${describeAuthorization(c.auth)}`, dtoSchema(c.dto), c.schemaVersion)])), 'receive', 'the target entity id');
    const categories = Object.entries(STREAM_OWNERS).filter(([, o]) => o.service === service).map(([c]) => `${c}-*`);
    const ownEvents = events.filter((e) => e.capability === topics.capability);
    addChannel(
      topics.events,
      `Domain events of ${service}, published from its event store streams (${categories.join(', ')}). The payload also carries _stream, _revision and _position.`,
      Object.fromEntries(ownEvents.map((e) => [e.type, addMessage(e.type, `Event declared in ${e.declaredIn}.`, e.payload)])),
      'send',
      'the entity id',
    );
  }
  const reply = namedTypeSchema(ROOT, 'libs/platform/src/commands.ts', 'CommandReply');
  addChannel(TOPICS.replies, 'One reply per command: accepted (stream, revision, ids) or rejected (every field and rule).', {
    CommandAccepted: addMessage('CommandAccepted', 'The command was applied (or had been: a retry gets the same reply).', reply),
    CommandRejected: addMessage('CommandRejected', 'The command broke a rule; violations name every field and rule.', reply),
  }, 'send', 'the command id');
  addChannel(TOPICS.marketMarks, 'Market data in: mark price, optional implied vol and funding rate.', { MarkPrice: addMessage('MarkPrice', 'A mark for one underlying.', dtoSchema(INPUT_SCHEMAS.MarkPrice)) }, 'receive', 'the underlying (e.g. BTC-USD)');
  addChannel(TOPICS.creditScores, 'Credit updates in, from a credit feed.', { CreditScore: addMessage('CreditScore', 'A rating or an annual PD for one party.', dtoSchema(INPUT_SCHEMAS.CreditScore)) }, 'receive', 'the party id');
  const deadLetter = namedTypeSchema(ROOT, 'libs/infra/messaging/src/consumer-runner.ts', 'DeadLetter');
  channels[channelId(TOPICS.dlq)] = {
    address: TOPICS.dlq,
    description: 'What could not be processed: the reason, the source topic/partition/offset and the original bytes (base64). Not enveloped. Key: as received.',
    messages: { DeadLetter: { $ref: '#/components/messages/DeadLetter' } },
  };
  messages.DeadLetter = { name: 'DeadLetter', contentType: 'application/json', payload: deadLetter };
  operations.sendDlq = { action: 'send', channel: { $ref: `#/channels/${channelId(TOPICS.dlq)}` } };

  const doc = {
    asyncapi: '3.0.0',
    info: {
      title: 'Backstop',
      version: '1.0.0',
      description:
        'Kafka interface of the Backstop risk-sharing service. GENERATED by `npm run asyncapi` from the code (command DTOs, domain event types, input DTOs); a test fails when this file and the code differ. Amounts are decimal strings in the currency scale; times ISO-8601 UTC.',
    },
    defaultContentType: 'application/json',
    servers: {
      kafka: { host: 'localhost:9092', protocol: 'kafka', description: 'docker compose up -d kafka' },
      'kafka-secure': {
        host: 'kafka.example.internal:9093',
        protocol: 'kafka-secure',
        description: 'A production cluster: TLS, with SASL/SCRAM-SHA-512 or mutual TLS; broker ACLs decide who may write the command topics.',
        security: [{ $ref: '#/components/securitySchemes/saslScram' }, { $ref: '#/components/securitySchemes/mutualTls' }],
      },
    },
    channels,
    operations,
    components: {
      schemas: { Envelope: withEnvelopeFormats(envelope) },
      messages,
      securitySchemes: {
        saslScram: { type: 'scramSha512', description: 'SASL/SCRAM-SHA-512 over TLS' },
        mutualTls: { type: 'X509', description: 'mutual TLS with a client certificate' },
      },
    },
  };
  return `# GENERATED by \`npm run asyncapi\` from the code; do not edit by hand.\n${stringify(doc, { lineWidth: 0, sortMapEntries: false })}`;
}

/** The envelope's wire formats (ids are UUIDs, times ISO-8601 UTC), with an example. */
function withEnvelopeFormats(envelope: JsonSchema): JsonSchema {
  const properties = { ...((envelope.properties as Record<string, JsonSchema> | undefined) ?? {}) };
  const format = (name: string, extra: JsonSchema) => {
    if (properties[name]) properties[name] = { ...properties[name], ...extra };
  };
  format('id', { format: 'uuid' });
  format('time', { format: 'date-time' });
  format('traceparent', { pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' });
  return {
    ...envelope,
    properties,
    examples: [
      {
        id: '6f1c1b0e-3b8a-4c1e-9d52-1f0f5a9b7c11',
        type: 'DepositCollateral',
        schemaVersion: 1,
        time: '2026-01-31T08:00:00Z',
        key: 'perp1',
        correlationId: '6f1c1b0e-3b8a-4c1e-9d52-1f0f5a9b7c11',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        payload: { contractId: 'perp1', partyId: 'desk1', amount: '1250.500000' },
      },
    ],
  };
}

if (require.main === module) {
  // npm run asyncapi
  void (async () => {
    const text = await generateAsyncApi();
    if (process.argv.includes('--check')) {
      const current = readFileSync(ASYNCAPI_FILE, 'utf8');
      if (current !== text) {
        process.stderr.write('docs/asyncapi.yaml is out of date: run `npm run asyncapi`\n');
        process.exit(1);
      }
      process.stdout.write('docs/asyncapi.yaml is up to date\n');
      return;
    }
    writeFileSync(ASYNCAPI_FILE, text);
    process.stdout.write(`wrote ${ASYNCAPI_FILE}\n`);
    process.exit(0);
  })().catch((err: Error) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}
