import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
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
}

export interface CommandContext {
  readonly commandId: string;
  readonly correlationId: string;
  readonly traceparent?: string;
  /** When the service accepted the command (the injected clock), recorded in the events. */
  readonly receivedAt: string;
  /** Who sent it over HTTP (see actorOf); absent for the Kafka command topics (trusted by broker ACLs). */
  readonly actor?: string;
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
  /** The entity the command targets (its Kafka key). */
  readonly key: (payload: P) => string;
  /** Who may send it over HTTP: roles, and the parties it acts for. */
  readonly auth: CommandAuthorization<P>;
  readonly handle: (payload: P, context: CommandContext) => Promise<Accepted>;
}

const CONSUMER = 'commands';
/** The field of the violation a refused sender gets. */
const AUTHORIZATION_FIELD = 'authorization';

/**
 * The one command pipeline behind POST /v1/commands and the *.commands topics:
 * dedupe by command id (same body → the stored reply; different body → conflict), validate the
 * payload with class-validator, run the handler, remember the reply. Never throws on bad input.
 */
export class CommandBus {
  private readonly definitions = new Map<string, CommandDefinition>();

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
    const payload = plainToInstance(definition.dto, envelope.payload);
    const violations = flattenValidationErrors(await validate(payload as object, { whitelist: true, forbidNonWhitelisted: true }));
    // Refused callers change nothing and are not remembered: the rightful sender may still use the id.
    const forbidden = principal ? await this.authorize(definition, principal, violations.length === 0 ? payload : undefined) : undefined;
    if (forbidden) {
      this.logger.warn('command refused for its sender', { commandId: envelope.id, type: envelope.type, actor: actorOf(principal!), rule: forbidden.rule });
      return rejected([forbidden]);
    }
    const hash = bodyHash({ type: envelope.type, payload: envelope.payload });
    const stored = await this.store.findProcessed(CONSUMER, envelope.id);
    if (stored !== undefined) {
      const previous = JSON.parse(stored) as { hash: string; reply: CommandReply };
      if (previous.hash === hash) return previous.reply;
      return rejected([{ field: 'id', rule: 'idempotencyConflict', message: `command id ${envelope.id} was already used with a different body; use a new id for a new command` }]);
    }
    let reply: CommandReply;
    if (violations.length > 0) {
      reply = rejected(violations.map((v) => ({ ...v, field: `payload.${v.field}` })));
    } else {
      reply = await this.run(definition, payload, envelope, rejected, principal);
    }
    await this.store.recordProcessed(CONSUMER, envelope.id, JSON.stringify({ hash, reply }));
    this.logger.info('command handled', {
      commandId: envelope.id,
      type: envelope.type,
      status: reply.status,
      ...(reply.violations ? { violations: reply.violations.map((v) => `${v.field}:${v.rule}`).join(',') } : {}),
    });
    return reply;
  }

  /**
   * The role check, then (for a token bound to a party, once the payload is valid) the party check.
   * Returns the violation to refuse with, or undefined.
   */
  private async authorize(definition: CommandDefinition, principal: Principal, payload: object | undefined): Promise<Violation | undefined> {
    const { role, partyId } = principal;
    if (role !== 'operator' && !(definition.auth.roles as readonly string[]).includes(role)) {
      const allowed = ['operator', ...definition.auth.roles].join(' or ');
      return { field: AUTHORIZATION_FIELD, rule: 'commandRole', message: `${definition.type} needs the role ${allowed}; the token has ${role}` };
    }
    if (role === 'operator' || !partyId || !payload || !definition.auth.actsFor) return undefined;
    const parties = (await definition.auth.actsFor(payload)).filter((p): p is string => p !== undefined);
    if (parties.includes(partyId)) return undefined;
    return {
      field: AUTHORIZATION_FIELD,
      rule: 'ownParty',
      message: `this ${role} token acts for ${partyId}; ${definition.type} acts for ${parties.length > 0 ? parties.join(' / ') : 'another party'}`,
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
        ...(principal ? { actor: actorOf(principal) } : {}),
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
        return rejected(err.violations.map((v) => ({ ...v, field: v.field.startsWith('payload.') ? v.field : `payload.${v.field}` })));
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
