import { createHash } from 'node:crypto';
import type { OpenAPIObject } from '@nestjs/swagger';
import { EnvelopeDto } from '@backstop/messaging';
import { describeAuthorization } from '../auth';
import { CommandDefinition } from '../commands';
import { dtoSchema, JsonSchema } from '../schemas';

const violation = (field: string, rule: string, message: string) => ({ field, rule, message });
const VIOLATION: JsonSchema = {
  type: 'object',
  required: ['field', 'rule', 'message'],
  properties: { field: { type: 'string', example: 'payload.partyId' }, rule: { type: 'string', example: 'isNotEmpty' }, message: { type: 'string' } },
};
const REPLY: JsonSchema = {
  type: 'object',
  required: ['commandId', 'commandType', 'status'],
  properties: {
    commandId: { type: 'string', format: 'uuid' },
    commandType: { type: 'string' },
    status: { type: 'string', enum: ['ACCEPTED', 'REJECTED'] },
    stream: { type: 'string', description: 'ACCEPTED: the stream written' },
    revision: { type: 'integer', description: 'ACCEPTED: its revision after the command' },
    ids: { type: 'object', additionalProperties: { type: 'string' } },
    events: { type: 'array', items: { type: 'string' } },
    violations: { type: 'array', items: { $ref: '#/components/schemas/Violation' }, description: 'REJECTED: every field and rule' },
    retryable: { type: 'boolean', description: 'REJECTED only because a fact from another service has not arrived yet (rule notYetKnown): retry the same command later' },
  },
};
const HTTP_ERROR: JsonSchema = {
  type: 'object',
  required: ['statusCode', 'message'],
  properties: { statusCode: { type: 'integer' }, message: { type: 'string' }, error: { type: 'string' } },
};

/**
 * The body of POST /v1/commands, per command type: one envelope schema per registered command
 * (oneOf, discriminated by `type`), each with its payload read from the class-validator DTO the
 * service enforces, and the answer of every status with an example. Swagger's decorators cannot
 * express this (the body is one class, EnvelopeDto), so the generated document is completed here.
 */
export function documentCommands(document: OpenAPIObject, definitions: readonly CommandDefinition[]): void {
  const post = document.paths['/v1/commands']?.post;
  if (!post) return;
  const schemas = (document.components ??= {}).schemas ??= {};
  const envelope = dtoSchema(EnvelopeDto) as { properties: Record<string, JsonSchema>; required: string[] };
  schemas.Violation = VIOLATION as never;
  schemas.CommandReply = REPLY as never;
  schemas.HttpError = HTTP_ERROR as never;
  const sorted = [...definitions].sort((a, b) => a.type.localeCompare(b.type));
  for (const d of sorted) {
    schemas[`${d.type}Command`] = {
      type: 'object',
      description: `${d.summary} ${describeAuthorization(d.auth)} Service: ${d.service}.`,
      required: envelope.required,
      properties: { ...envelope.properties, type: { type: 'string', enum: [d.type] }, schemaVersion: { type: 'integer', enum: [d.schemaVersion] }, payload: toOpenApi30(dtoSchema(d.dto)) },
      example: exampleEnvelope(d),
    } as never;
  }
  const example = {
    id: '6f1c1b0e-3b8a-4c1e-9d52-1f0f5a9b7c11',
    type: 'RegisterParty',
    schemaVersion: 1,
    time: '2026-01-31T08:00:00Z',
    key: 'desk1',
    correlationId: '6f1c1b0e-3b8a-4c1e-9d52-1f0f5a9b7c11',
    payload: { partyId: 'desk1', name: 'Desk One', role: 'DESK', credit: { rating: 'A' } },
  };
  post.requestBody = {
    required: true,
    content: {
      'application/json': {
        schema: {
          oneOf: sorted.map((d) => ({ $ref: `#/components/schemas/${d.type}Command` })),
          discriminator: { propertyName: 'type', mapping: Object.fromEntries(sorted.map((d) => [d.type, `#/components/schemas/${d.type}Command`])) },
        },
        // One named example per command type (Swagger UI offers them in a list), each a whole envelope.
        examples: Object.fromEntries(sorted.map((d) => [d.type, { summary: d.type, value: exampleEnvelope(d) }])),
      },
    },
  };
  const reply = (description: string, ex: unknown) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/CommandReply' }, example: ex } } });
  const error = (description: string, statusCode: number, message: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/HttpError' }, example: { statusCode, message } } },
  });
  const base = { commandId: example.id, commandType: 'RegisterParty' };
  post.responses = {
    200: reply('ACCEPTED (a retry with the same id and body gets the same reply again)', { ...base, status: 'ACCEPTED', stream: 'party-desk1', revision: 0, ids: { partyId: 'desk1' }, events: ['PartyRegistered'] }),
    400: {
      description: 'not an envelope: every envelope field and rule (nothing written)',
      content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string', enum: ['REJECTED'] }, violations: { type: 'array', items: { $ref: '#/components/schemas/Violation' } } } }, example: { status: 'REJECTED', violations: [violation('id', 'isUuid', 'id must be a UUID (the message id; retries reuse it)')] } } },
    },
    401: error('no or unknown bearer token (static token or JWT)', 401, 'a bearer token is required (Authorization: Bearer <token>)'),
    403: reply('REJECTED: the token may not send this command (rule commandRole) or acts for another party (rule ownParty); nothing written', { ...base, status: 'REJECTED', violations: [violation('authorization', 'commandRole', 'RegisterParty needs the role operator; the token has desk')] }),
    409: reply('REJECTED: the id was already used with another body (rule idempotencyConflict)', { ...base, status: 'REJECTED', violations: [violation('id', 'idempotencyConflict', `command id ${example.id} was already used with a different body; use a new id for a new command`)] }),
    413: error('the body is over 1 MB', 413, 'request entity too large'),
    422: reply('REJECTED: every payload field and rule, or a business rule', { ...base, status: 'REJECTED', violations: [violation('payload.role', 'isIn', 'role must be one of the following values: DESK, COUNTERPARTY, PROVIDER')] }),
    503: error('the instance is shutting down: nothing written; retry the same command (same id)', 503, 'this instance is shutting down; retry the same command (same id) on another instance'),
  } as never;
}

/**
 * The envelope a desk would send for `d`, around the definition's example payload. Its id is a
 * UUID derived from the type, so each command's example has its own, stable across builds.
 */
export function exampleEnvelope(d: CommandDefinition): Record<string, unknown> {
  const hex = createHash('sha256').update(`backstop example ${d.type}`).digest('hex');
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return { id, type: d.type, schemaVersion: d.schemaVersion, time: '2026-01-31T08:00:00Z', key: d.key(d.example), correlationId: id, payload: d.example };
}

/** OpenAPI 3.0 schemas are JSON Schema draft 4 in this respect: `required` may not be an empty list. */
function toOpenApi30(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'required' && Array.isArray(value) && value.length === 0) continue;
    if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(Object.entries(value as Record<string, JsonSchema>).map(([name, child]) => [name, toOpenApi30(child)]));
      continue;
    }
    out[key] = value;
  }
  return out;
}
