import { Body, Controller, Headers, HttpCode, Inject, Post, Res, ServiceUnavailableException, UnauthorizedException } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { EnvelopeDto, envelopeViolations } from '@backstop/messaging';
import { isForbidden } from '../commands';
import { storeFailureCode } from '../store-write-health';
import { Runtime } from '../runtime';
import { RUNTIME } from './tokens';

@ApiTags('commands')
@Controller('v1/commands')
export class CommandsController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Submit a command in its envelope (same handling as the *.commands Kafka topics)',
    description:
      'The reply is in the response and on backstop.replies. 200 accepted, 422 rejected (every field and rule), 409 the id was used with another body, 400 not an envelope, ' +
      '401 no or unknown bearer token, 403 the token\'s role may not send this command or it acts for another party (the operator may send every command; ' +
      'a desk or provider token bound to a party only commands for that party). The sender is recorded in the events\' metadata as `actor`.',
  })
  @ApiBearerAuth()
  @ApiBody({ type: EnvelopeDto })
  @ApiResponse({ status: 200, description: 'ACCEPTED (or a retried command: the same reply again)' })
  @ApiResponse({ status: 422, description: 'REJECTED with violations' })
  @ApiResponse({ status: 401, description: 'no or unknown bearer token' })
  @ApiResponse({ status: 503, description: 'retry the same command (same id): the instance is shutting down (nothing was written), the event store refused a write (e.g. a full disk), or the broker did not take the reply (the command stands; the retry gets and publishes its reply)' })
  @ApiResponse({ status: 403, description: 'REJECTED: field authorization, rule commandRole or ownParty' })
  async submit(
    @Body() body: unknown,
    @Headers('authorization') authorization: string | undefined,
    @Res({ passthrough: true }) res: Response,
    @Headers('traceparent') traceparent?: string,
    @Headers('tracestate') tracestate?: string,
  ): Promise<unknown> {
    const principal = await this.runtime.authenticator.authenticate(authorization);
    if (!principal) throw new UnauthorizedException('a bearer token is required (Authorization: Bearer <token>)');
    // Shape limits (depth, size, prototype keys) before class-transformer sees anything: a 400 naming the field and rule, never a 500.
    const violations = envelopeViolations(body);
    if (violations.length > 0) {
      res.status(400);
      return { status: 'REJECTED', violations };
    }
    // W3C trace context from the HTTP headers when the envelope carries none (the envelope's wins: it is the message's own).
    const envelope = body as Parameters<Runtime['commands']['execute']>[0];
    if (!envelope.traceparent && traceparent && /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(traceparent)) {
      Object.assign(envelope, { traceparent, ...(tracestate && tracestate.length <= 512 ? { tracestate } : {}) });
    }
    // Shutting down: refuse before anything is written, so the client retries elsewhere with the same id.
    const release = this.runtime.beginWork();
    if (!release) {
      res.setHeader('Retry-After', '1');
      throw new ServiceUnavailableException('this instance is shutting down; retry the same command (same id) on another instance');
    }
    let reply: Awaited<ReturnType<Runtime['commands']['execute']>>;
    try {
      reply = await this.runtime.commands.execute(envelope, principal);
    } catch (err) {
      // The store refused a write (a full disk, a lock): the sender retries the same command, with the
      // same id, after Retry-After. Whatever part was written is found by the retry (claim, causation).
      const code = storeFailureCode(err);
      if (!code) throw err;
      res.setHeader('Retry-After', '1');
      throw new ServiceUnavailableException(`the event store refused the write (${code}); command ${envelope.id} is not acknowledged: send it again, with the same id`);
    } finally {
      release();
    }
    const forbidden = isForbidden(reply);
    // A refused sender's attempt is answered here only: backstop.replies carries the outcome of a command.
    // The reply reaches backstop.replies before the HTTP answer, so no command is answered over HTTP
    // without its reply on the topic. If the broker cannot take it, the answer is 503: the command
    // stands (its outcome is stored), and a retry with the same id gets the same reply and publishes it.
    if (!forbidden) {
      try {
        await this.runtime.publishReply(envelope, reply);
      } catch (err) {
        this.runtime.logger.warn('reply not published to the replies topic; answering 503 so the sender retries', { commandId: envelope.id, error: (err as Error).message });
        res.setHeader('Retry-After', '1');
        throw new ServiceUnavailableException(
          `command ${envelope.id} was decided (${reply.status}) but its reply could not be put on backstop.replies: send the same command again, with the same id, to get the reply`,
        );
      }
    }
    if (reply.status === 'REJECTED') res.status(forbidden ? 403 : reply.violations?.some((v) => v.rule === 'idempotencyConflict') ? 409 : 422);
    return reply;
  }
}
