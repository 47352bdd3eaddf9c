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

/**
 * Limits on the SHAPE of untrusted JSON, checked before class-transformer sees it: plainToInstance
 * recurses (3,000 levels overflow the stack) and treats keys such as "constructor" / "prototype" as
 * class members ("targetType is not a constructor"), so such input must never reach it.
 */
export const UNTRUSTED_JSON_LIMITS = {
  /** Deepest nesting of objects/arrays (the envelope is level 1; real commands need about 4). */
  depthMax: 16,
  /** Objects, arrays and values in one message. */
  nodesMax: 20_000,
  /** Longest key (field name). */
  keyLengthMax: 200,
} as const;

/** Keys that name JavaScript object machinery, never a field of ours: refused wherever they appear. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Walks untrusted JSON without recursion (so hostile depth cannot overflow the stack) and names the
 * first shape problems: too deep, too many nodes, a forbidden key, a number JSON turned into
 * Infinity (1e309). Empty list = safe to hand to class-transformer / class-validator.
 */
export function untrustedJsonViolations(value: unknown, root = '', limits = UNTRUSTED_JSON_LIMITS): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  let nodes = 0;
  const at = (path: string) => path || '(body)';
  while (stack.length > 0 && violations.length < 20) {
    const { value: v, path, depth } = stack.pop()!;
    nodes += 1;
    if (nodes > limits.nodesMax) {
      violations.push({ field: '(body)', rule: 'maxNodes', message: `the message has more than ${limits.nodesMax} JSON values; the limit is ${limits.nodesMax}` });
      break;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) {
      violations.push({ field: at(path), rule: 'finiteNumber', message: `${at(path)} must be a finite number (JSON turned it into ${v})` });
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > limits.depthMax) {
      violations.push({ field: at(path), rule: 'maxDepth', message: `${at(path)} nests deeper than ${limits.depthMax} levels; the limit is ${limits.depthMax}` });
      continue;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i -= 1) stack.push({ value: v[i], path: `${path}[${i}]`, depth: depth + 1 });
      continue;
    }
    // Own keys only: JSON.parse makes "__proto__" an own property, never the prototype.
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i -= 1) {
      const key = keys[i];
      const child = path ? `${path}.${key.slice(0, limits.keyLengthMax)}` : key.slice(0, limits.keyLengthMax);
      if (FORBIDDEN_KEYS.has(key)) {
        violations.push({ field: child, rule: 'forbiddenKey', message: `"${key}" is not allowed as a field name (it names JavaScript object machinery)` });
        continue;
      }
      if (key.length > limits.keyLengthMax) {
        violations.push({ field: child, rule: 'maxKeyLength', message: `a field name is ${key.length} characters long; the limit is ${limits.keyLengthMax}` });
        continue;
      }
      stack.push({ value: (v as Record<string, unknown>)[key], path: child, depth: depth + 1 });
    }
  }
  return violations;
}

/**
 * An untrusted object → class-validator violations of the envelope (shape first, never throws).
 * Shared by the Kafka consumer runner and the HTTP controllers, so both refuse the same input.
 */
export function envelopeViolations(json: unknown): FieldViolation[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return [{ field: '(body)', rule: 'isObject', message: 'message must be a JSON object with an envelope' }];
  }
  const shape = untrustedJsonViolations(json);
  if (shape.length > 0) return shape;
  try {
    const violations = flattenValidationErrors(validateSync(plainToInstance(EnvelopeDto, json), { forbidUnknownValues: true }));
    const time = (json as { time?: unknown }).time;
    if (typeof time === 'string' && ISO_UTC.test(time) && !isRealInstant(time)) {
      violations.push({ field: 'time', rule: 'isRealInstant', message: `time ${time.slice(0, 40)} is not a real instant (no such day or hour)` });
    }
    return violations;
  } catch (err) {
    // Defence in depth: whatever class-transformer/-validator still trips on is the input's fault.
    return [{ field: '(body)', rule: 'parsable', message: `the envelope cannot be read: ${(err as Error).message}` }];
  }
}

/** "2026-02-30T00:00:00Z" matches the pattern but names no day (Date.parse would roll it into March). */
function isRealInstant(text: string): boolean {
  const ms = Date.parse(text);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === text.slice(0, 19);
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
  const violations = envelopeViolations(json);
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
