import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { NOT_YET_KNOWN } from '@backstop/contracts';
import { Causation, DomainRejection, Violation } from '@backstop/kernel';
import { EventStore } from '@backstop/event-store';
import { Envelope, flattenValidationErrors } from '@backstop/messaging';
import { currentTraceCarrier, inSpan, Logger, MetricsRegistry } from '@backstop/telemetry';
import { SpanKind } from '@opentelemetry/api';
import { ServiceName } from './config';
import { bodyHash } from './ids';
import { actorOf, CommandAuthorization, Principal } from './auth';

/** The reply to one command: on backstop.replies (key = command id) and in the HTTP response. */
export interface CommandReply {
  readonly commandId: string;
  readonly commandType: string;
  readonly status: 'ACCEPTED' | 'REJECTED';
  /** ACCEPTED: the stream written and its revision after the command, plus the ids it created. */
  readonly stream?: string;
  readonly revision?: number;
  readonly ids?: Record<string, string>;
  readonly events?: readonly string[];
  /** REJECTED: every violated field and rule. */
  readonly violations?: readonly Violation[];
  /**
   * REJECTED only because a fact from another service has not reached this one yet (rule
   * notYetKnown): the same command, retried with the same id later, may be accepted.
   */
  readonly retryable?: boolean;
}

export interface CommandContext {
  readonly commandId: string;
  readonly correlationId: string;
  readonly traceparent?: string;
  /** When the service accepted the command (the injected clock), recorded in the events. */
  readonly receivedAt: string;
  /** Who sent it over HTTP (see actorOf); absent for the Kafka command topics (trusted by broker ACLs). */
  readonly actor?: string;
  /** The HTTP sender's role and bound party (absent on Kafka): e.g. only an operator registers a contract live. */
  readonly sender?: { readonly role: Principal['role']; readonly partyId?: string };
}

export interface Accepted {
  readonly stream: string;
  readonly revision: number;
  readonly ids?: Record<string, string>;
  readonly events: readonly string[];
}

export interface CommandDefinition<P extends object = object> {
  readonly type: string;
  readonly service: ServiceName;
  readonly schemaVersion: number;
  readonly summary: string;
  /** class-validator DTO: the boundary check of the payload. */
  readonly dto: new () => P;
  /** A payload that passes `dto`: the OpenAPI example of this command (checked by test/e2e/openapi). */
  readonly example: P;
  /** The entity the command targets (its Kafka key). */
  readonly key: (payload: P) => string;
  /** Who may send it over HTTP: roles, and the parties it acts for. */
  readonly auth: CommandAuthorization<P>;
  readonly handle: (payload: P, context: CommandContext) => Promise<Accepted>;
}

const CONSUMER = 'commands';
/** Command id → body hash: the first claim wins (see executeInner). */
const CLAIMS = 'command-claims';

/** Bounds of the rejected-reply cache (TigerBeetle habit: a limit on everything). */
export const REJECTIONS_REMEMBERED = { countMax: 10_000, ttlMs: 60 * 60_000 } as const;

/** Rejected replies by command id, bounded by count and age (oldest dropped first). */
class RejectionCache {
  private readonly entries = new Map<string, { hash: string; reply: CommandReply; atMs: number }>();

  get(commandId: string, hash: string): CommandReply | undefined {
    const entry = this.entries.get(commandId);
    return entry && entry.hash === hash ? entry.reply : undefined;
  }

  put(commandId: string, hash: string, reply: CommandReply, nowMs: number): void {
    this.entries.delete(commandId);
    this.entries.set(commandId, { hash, reply, atMs: nowMs });
    for (const [id, entry] of this.entries) {
      if (this.entries.size <= REJECTIONS_REMEMBERED.countMax && nowMs - entry.atMs <= REJECTIONS_REMEMBERED.ttlMs) break;
      this.entries.delete(id);
    }
  }
}

/** The parties a raw payload names for `actsFor`; [] when they cannot be read. */
async function partiesOf(definition: CommandDefinition, rawPayload: unknown): Promise<string[]> {
  if (typeof rawPayload !== 'object' || rawPayload === null || Array.isArray(rawPayload)) return [];
  try {
    const named = await definition.auth.actsFor!(rawPayload as object);
    return named.filter((p): p is string => typeof p === 'string');
  } catch {
    return [];
  }
}
/** The field of the violation a refused sender gets. */
const AUTHORIZATION_FIELD = 'authorization';

/**
 * The one command pipeline behind POST /v1/commands and the *.commands topics:
 * dedupe by command id (same body → the stored reply; different body → conflict), validate the
 * payload with class-validator, run the handler, remember the reply. Never throws on bad input.
 */
export class CommandBus {
  private readonly definitions = new Map<string, CommandDefinition>();
  private readonly rejections = new RejectionCache();

  constructor(
    private readonly store: EventStore,
    private readonly logger: Logger,
    private readonly metrics: MetricsRegistry,
    private readonly now: () => Date,
  ) {}

  register(definition: CommandDefinition<any>): void {
    if (this.definitions.has(definition.type)) throw new Error(`command ${definition.type} registered twice`);
    this.definitions.set(definition.type, definition as CommandDefinition);
  }

  definitionsFor(service?: ServiceName): CommandDefinition[] {
    return [...this.definitions.values()].filter((d) => !service || d.service === service);
  }

  accepts(type: string): boolean {
    return this.definitions.has(type);
  }

  /**
   * Runs one command. `principal` is the HTTP caller (authorized here, recorded as the actor);
   * commands from the Kafka topics come without one.
   */
  async execute(envelope: Envelope, principal?: Principal): Promise<CommandReply> {
    const attributes = { 'backstop.command.id': envelope.id, 'backstop.command.type': envelope.type };
    // One span per command, continuing the sender's trace; the events it writes name it as their parent.
    return inSpan(`command ${envelope.type}`, principal ? SpanKind.SERVER : SpanKind.CONSUMER, envelope, attributes, async (span) => {
      const started = process.hrtime.bigint();
      // The type label comes from caller input: only registered types name a series, anything else is
      // "unknown", so junk types cannot create series or push real commands out of their histograms.
      const type = this.definitions.has(envelope.type) ? envelope.type : 'unknown';
      const count = (status: string) => {
        this.metrics.counter('backstop_commands_total', 'Commands handled, by type and status (ACCEPTED, REJECTED, FAILED: an error, retried or dead-lettered)', ['type', 'status']).inc({ type, status });
        this.metrics.histogram('backstop_command_seconds', 'Command handling time', undefined, ['type', 'status']).observe(Number(process.hrtime.bigint() - started) / 1e9, { type, status });
      };
      let reply: CommandReply;
      try {
        reply = await this.executeInner(envelope, principal);
      } catch (err) {
        count('FAILED');
        throw err;
      }
      count(reply.status);
      span.setAttribute('backstop.command.status', reply.status);
      if (reply.violations) span.setAttribute('backstop.command.violations', reply.violations.map((v) => `${v.field}:${v.rule}`).join(','));
      return reply;
    });
  }

  private async executeInner(envelope: Envelope, principal?: Principal): Promise<CommandReply> {
    const definition = this.definitions.get(envelope.type);
    const rejected = (violations: Violation[]): CommandReply => ({
      commandId: envelope.id,
      commandType: envelope.type,
      status: 'REJECTED',
      violations,
    });
    if (!definition) {
      return rejected([{ field: 'type', rule: 'knownCommand', message: `unknown command type "${envelope.type}" (known: ${[...this.definitions.keys()].join(', ')})` }]);
    }
    if (envelope.schemaVersion !== definition.schemaVersion) {
      return rejected([{ field: 'schemaVersion', rule: 'supportedVersion', message: `${envelope.type} schema version ${envelope.schemaVersion} is not supported (supported: ${definition.schemaVersion})` }]);
    }
    // Who first, on the raw payload: a refused sender learns nothing of the validation and uses up no id.
    const forbidden = principal ? await this.authorize(definition, principal, envelope.payload) : undefined;
    if (forbidden) {
      this.logger.warn('command refused for its sender', { commandId: envelope.id, type: envelope.type, actor: actorOf(principal!), rule: forbidden.rule });
      return rejected([forbidden]);
    }
    const hash = bodyHash({ type: envelope.type, payload: envelope.payload });
    const conflict = () =>
      rejected([{ field: 'id', rule: 'idempotencyConflict', message: `command id ${envelope.id} was already used with a different body; use a new id for a new command` }]);
    const previous = await this.previousOutcome(envelope.id, hash);
    if (previous === 'conflict') return conflict();
    if (previous) return previous;

    const payload = plainToInstance(definition.dto, envelope.payload);
    const violations = flattenValidationErrors(await validate(payload as object, { whitelist: true, forbidNonWhitelisted: true }));
    if (violations.length > 0) {
      return this.finish(envelope, hash, rejected(violations.map((v) => ({ ...v, field: `payload.${v.field}` }))));
    }
    // Claim the id for this body before anything is written: the store keeps the first claim (an
    // atomic insert-if-absent on every adapter), so of two bodies raced to two replicas exactly one
    // runs and the other is told so, never ACCEPTED for a body that was not applied. A claim that
    // outlives a crash is harmless: a retry of the same body runs again and the handler's
    // causation check finds what was already written.
    await this.store.recordProcessed(CLAIMS, envelope.id, hash);
    if ((await this.store.findProcessed(CLAIMS, envelope.id)) !== hash) return conflict();
    return this.finish(envelope, hash, await this.run(definition, payload, envelope, rejected, principal), { claimed: true });
  }

  /** The stored reply of this id and body, 'conflict' for another body, or undefined: not seen yet. */
  private async previousOutcome(commandId: string, hash: string): Promise<CommandReply | 'conflict' | undefined> {
    const claim = await this.store.findProcessed(CLAIMS, commandId);
    if (claim !== undefined && claim !== hash) return 'conflict';
    const stored = await this.store.findProcessed(CONSUMER, commandId);
    if (stored !== undefined) {
      const previous = JSON.parse(stored) as { hash: string; reply: CommandReply };
      return previous.hash === hash ? previous.reply : 'conflict';
    }
    return this.rejections.get(commandId, hash);
  }

  /**
   * Accepted replies are stored for good (the id is spent). So are rejections the handler decided
   * (the id was claimed for this body first): deciding such a command again could ACCEPT it once the
   * facts changed (its party registered meanwhile), after the sender was told REJECTED and may have
   * sent a new command: two outcomes for one id, an effect twice. The claim row already exists for
   * each of them, so this adds one row per claimed command, not an unbounded class of junk. A
   * rejection marked retryable (a fact not seen yet) is not final, so it is not stored. Malformed
   * commands (never claimed; their outcome depends on the body alone) are only remembered in a
   * bounded cache (REJECTIONS_REMEMBERED); after it, deciding them again gives the same answer.
   */
  private async finish(envelope: Envelope, hash: string, reply: CommandReply, { claimed = false } = {}): Promise<CommandReply> {
    // Retryable: the reply says so (a fact this service has not received yet), or a violation does.
    const retryable = reply.retryable === true || (reply.violations?.some((v) => (v as { retryable?: unknown }).retryable === true) ?? false);
    if (reply.status === 'ACCEPTED' || (claimed && !retryable)) await this.store.recordProcessed(CONSUMER, envelope.id, JSON.stringify({ hash, reply }));
    // A retryable rejection is not remembered: the retry of the same id is decided again.
    else if (!retryable) this.rejections.put(envelope.id, hash, reply, this.now().getTime());
    this.logger.info('command handled', {
      commandId: envelope.id,
      type: envelope.type,
      status: reply.status,
      ...(reply.violations ? { violations: reply.violations.map((v) => `${v.field}:${v.rule}`).join(',') } : {}),
    });
    return reply;
  }

  /**
   * The role check, then for a token bound to a party the party check, on the payload as sent (before
   * validation, so a refused sender learns nothing about the body). A payload whose parties cannot be
   * read is refused to a bound token. Returns the violation to refuse with, or undefined.
   */
  private async authorize(definition: CommandDefinition, principal: Principal, rawPayload: unknown): Promise<Violation | undefined> {
    const { role, partyId } = principal;
    if (role !== 'operator' && !(definition.auth.roles as readonly string[]).includes(role)) {
      const allowed = ['operator', ...definition.auth.roles].join(' or ');
      return { field: AUTHORIZATION_FIELD, rule: 'commandRole', message: `${definition.type} needs the role ${allowed}; the token has ${role}` };
    }
    if (role === 'operator' || !partyId || !definition.auth.actsFor) return undefined;
    const parties = await partiesOf(definition, rawPayload);
    if (parties.includes(partyId)) return undefined;
    return {
      field: AUTHORIZATION_FIELD,
      rule: 'ownParty',
      message: `this ${role} token acts for ${partyId}; this ${definition.type} acts for ${parties.length > 0 ? parties.join(' / ') : 'no party it could name'}`,
    };
  }

  private async run(
    definition: CommandDefinition,
    payload: object,
    envelope: Envelope,
    rejected: (violations: Violation[]) => CommandReply,
    principal: Principal | undefined,
  ): Promise<CommandReply> {
    try {
      const accepted = await definition.handle(payload, {
        commandId: envelope.id,
        correlationId: envelope.correlationId,
        traceparent: currentTraceCarrier().traceparent ?? envelope.traceparent,
        receivedAt: this.now().toISOString(),
        ...(principal ? { actor: actorOf(principal), sender: { role: principal.role, ...(principal.partyId ? { partyId: principal.partyId } : {}) } } : {}),
      });
      return {
        commandId: envelope.id,
        commandType: envelope.type,
        status: 'ACCEPTED',
        stream: accepted.stream,
        revision: accepted.revision,
        ids: accepted.ids ?? {},
        events: accepted.events,
      };
    } catch (err) {
      if (err instanceof DomainRejection) {
        const reply = rejected(err.violations.map((v) => ({ ...v, field: v.field.startsWith('payload.') ? v.field : `payload.${v.field}` })));
        return err.violations.every((v) => v.rule === NOT_YET_KNOWN) ? { ...reply, retryable: true } : reply;
      }
      throw err;
    }
  }
}

/** The sender may not send this command (refused by CommandBus.authorize: HTTP 403, nothing written). */
export function isForbidden(reply: CommandReply): boolean {
  return reply.violations?.some((v) => v.field === AUTHORIZATION_FIELD) ?? false;
}

/** What a command's events record as their cause (the command id: event ids derive from it). */
export function causationOf(context: CommandContext): Causation {
  return {
    causationId: context.commandId,
    correlationId: context.correlationId,
    occurredAt: context.receivedAt,
    traceparent: context.traceparent,
    ...(context.actor ? { actor: context.actor } : {}),
  };
}
