import { Body, Controller, Headers, HttpCode, Inject, Post, Res, UnauthorizedException } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { EnvelopeDto, flattenValidationErrors } from '@backstop/messaging';
import { isForbidden } from '../commands';
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
  @ApiResponse({ status: 403, description: 'REJECTED: field authorization, rule commandRole or ownParty' })
  async submit(@Body() body: unknown, @Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const principal = this.runtime.auth.authenticate(authorization);
    if (!principal) throw new UnauthorizedException('a bearer token is required (Authorization: Bearer <token>)');
    const dto = plainToInstance(EnvelopeDto, body);
    const violations = typeof body === 'object' && body !== null ? flattenValidationErrors(validateSync(dto as object)) : [{ field: '(body)', rule: 'isObject', message: 'body must be a JSON envelope object' }];
    if (violations.length > 0) {
      res.status(400);
      return { status: 'REJECTED', violations };
    }
    const envelope = dto as unknown as Parameters<Runtime['commands']['execute']>[0];
    const reply = await this.runtime.commands.execute(envelope, principal);
    const forbidden = isForbidden(reply);
    // A refused sender's attempt is answered here only: backstop.replies carries the outcome of a command.
    // The reply reaches backstop.replies before the HTTP answer, so a crash right after the answer
    // cannot leave a command answered over HTTP with no reply on the topic (a broker outage is logged:
    // the HTTP reply is the sender's, and a retry with the same id publishes it again).
    if (!forbidden) {
      await this.runtime.publishReply(envelope, reply).catch((err: Error) =>
        this.runtime.logger.warn('reply not published to the replies topic', { commandId: envelope.id, error: err.message }),
      );
    }
    if (reply.status === 'REJECTED') res.status(forbidden ? 403 : reply.violations?.some((v) => v.rule === 'idempotencyConflict') ? 409 : 422);
    return reply;
  }
}
