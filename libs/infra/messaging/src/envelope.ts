import { randomUUID } from 'node:crypto';
import { plainToInstance } from 'class-transformer';
import {
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  validateSync,
  ValidationError,
} from 'class-validator';

/**
 * The envelope every message carries, on Kafka and in POST /v1/commands alike (SPEC section 8).
 * `payload` is the command, event or reply body; its schema is named by `type` + `schemaVersion`.
 */
export interface Envelope<TPayload = Record<string, unknown>> {
  readonly id: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly time: string;
  readonly key: string;
  readonly correlationId: string;
  readonly causationId?: string;
  /** W3C trace context (https://www.w3.org/TR/trace-context/). */
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly payload: TPayload;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export class EnvelopeDto {
  @IsUUID('all', { message: 'id must be a UUID (the message id; retries reuse it)' })
  id!: string;

  @IsString() @IsNotEmpty() @MaxLength(100) @Matches(/^[A-Za-z][A-Za-z0-9.]*$/, { message: 'type must be a message type name such as RegisterParty' })
  type!: string;

  @IsInt({ message: 'schemaVersion must be an integer' }) @Min(1) @Max(1000)
  schemaVersion!: number;

  @Matches(ISO_UTC, { message: 'time must be an ISO-8601 UTC instant such as 2026-01-31T08:00:00Z' })
  time!: string;

  @IsString() @IsNotEmpty() @MaxLength(200)
  key!: string;

  @IsString() @IsNotEmpty() @MaxLength(200)
  correlationId!: string;

  @IsOptional() @IsString() @MaxLength(200)
  causationId?: string;

  @IsOptional() @Matches(TRACEPARENT, { message: 'traceparent must be W3C trace context: 00-<32 hex>-<16 hex>-<2 hex>' })
  traceparent?: string;

  @IsOptional() @IsString() @MaxLength(512)
  tracestate?: string;

  @IsObject({ message: 'payload must be a JSON object' })
  payload!: Record<string, unknown>;
}

export interface FieldViolation {
  readonly field: string;
  readonly rule: string;
  readonly message: string;
}

/** Flattens class-validator errors into field/rule/message triples (nested fields as a.b.c). */
export function flattenValidationErrors(errors: readonly ValidationError[], parent = ''): FieldViolation[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.entries(error.constraints ?? {}).map(([rule, message]) => ({ field, rule, message }));
    return [...own, ...flattenValidationErrors(error.children ?? [], field)];
  });
}

export type EnvelopeParse =
  | { readonly ok: true; readonly envelope: Envelope }
  | { readonly ok: false; readonly reason: 'OVERSIZED' | 'NOT_JSON' | 'INVALID_ENVELOPE'; readonly detail: string; readonly violations?: FieldViolation[] };

/** Bytes → a validated envelope, or the reason it is not one (never throws). */
export function parseEnvelope(value: Buffer, bytesMax: number): EnvelopeParse {
  if (value.length > bytesMax) {
    return { ok: false, reason: 'OVERSIZED', detail: `message is ${value.length} bytes; the limit is ${bytesMax}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'NOT_JSON', detail: `not JSON: ${(err as Error).message}` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'INVALID_ENVELOPE', detail: 'message must be a JSON object with an envelope' };
  }
  const dto = plainToInstance(EnvelopeDto, json);
  const violations = flattenValidationErrors(validateSync(dto, { forbidUnknownValues: true }));
  if (violations.length > 0) {
    return {
      ok: false,
      reason: 'INVALID_ENVELOPE',
      detail: violations.map((v) => `${v.field}: ${v.message}`).join('; '),
      violations,
    };
  }
  return { ok: true, envelope: json as Envelope };
}

export interface EnvelopeInit<TPayload> {
  readonly type: string;
  readonly key: string;
  readonly payload: TPayload;
  readonly time: string;
  readonly id?: string;
  readonly schemaVersion?: number;
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

export function makeEnvelope<TPayload>(init: EnvelopeInit<TPayload>): Envelope<TPayload> {
  const id = init.id ?? randomUUID();
  return {
    id,
    type: init.type,
    schemaVersion: init.schemaVersion ?? 1,
    time: init.time,
    key: init.key,
    correlationId: init.correlationId ?? id,
    ...(init.causationId ? { causationId: init.causationId } : {}),
    ...(init.traceparent ? { traceparent: init.traceparent } : {}),
    ...(init.tracestate ? { tracestate: init.tracestate } : {}),
    payload: init.payload,
  };
}

/** Kafka headers duplicate the routing and trace fields so tools can read them without parsing. */
export function envelopeHeaders(envelope: Envelope<unknown>): Record<string, string> {
  const headers: Record<string, string> = {
    'message-id': envelope.id,
    'message-type': envelope.type,
    'schema-version': String(envelope.schemaVersion),
    'correlation-id': envelope.correlationId,
  };
  if (envelope.causationId) headers['causation-id'] = envelope.causationId;
  if (envelope.traceparent) headers.traceparent = envelope.traceparent;
  if (envelope.tracestate) headers.tracestate = envelope.tracestate;
  return headers;
}

export function encodeEnvelope(envelope: Envelope<unknown>): { key: string; value: string; headers: Record<string, string> } {
  return {
    key: envelope.key,
    value: JSON.stringify(envelope, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    headers: envelopeHeaders(envelope),
  };
}
