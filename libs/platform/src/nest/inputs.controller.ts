import { Body, Controller, HttpCode, Inject, Post, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { EnvelopeDto, envelopeViolations, makeEnvelope, flattenValidationErrors, TOPICS, TopicName } from '@backstop/messaging';
import { futureDatedMark, INPUT_SCHEMAS, markFutureToleranceMs } from '../inputs';
import { storeFailureCode } from '../store-write-health';
import { Runtime } from '../runtime';
import { RUNTIME } from './tokens';
import { Roles } from './roles.guard';

/**
 * Market data and credit updates over HTTP: the same envelopes as the Kafka input topics, put on
 * that topic (the in-process bus in the single-process default), so the same consumers handle them.
 * Only the operator's feeds may post them (a forged mark could trigger margin calls).
 */
@ApiTags('inputs')
@Controller('v1')
@Roles('operator')
export class InputsController {
  /** Read once: a bad value stops the service at start-up, naming the variable. */
  private readonly markFutureToleranceMs = markFutureToleranceMs();

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Post('market/marks')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Publish MarkPrice envelopes onto backstop.market.marks (one envelope or an array)',
    description: '202 once durable; 400 not a valid envelope or payload; 422 a mark dated ahead of the receiving clock beyond MARGIN_MARK_FUTURE_TOLERANCE_MS (field payload.at, rule notFutureDated): nothing of the batch is taken',
  })
  @ApiBody({ type: EnvelopeDto, isArray: true })
  marks(@Body() body: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    return this.publish(TOPICS.marketMarks, 'MarkPrice', body, res);
  }

  @Post('credit/scores')
  @HttpCode(202)
  @ApiOperation({ summary: 'Publish CreditScore envelopes onto backstop.credit.scores (one envelope or an array)' })
  @ApiBody({ type: EnvelopeDto, isArray: true })
  credit(@Body() body: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    return this.publish(TOPICS.creditScores, 'CreditScore', body, res);
  }

  private async publish(topic: TopicName, type: keyof typeof INPUT_SCHEMAS, body: unknown, res: Response): Promise<unknown> {
    const items = Array.isArray(body) ? body : [body];
    if (items.length === 0 || items.length > 1_000) {
      res.status(400);
      return { status: 'REJECTED', violations: [{ field: '(body)', rule: 'batchSize', message: 'send 1 to 1000 envelopes' }] };
    }
    const violations = items.flatMap((item, i) => {
      const problems = envelopeViolations(item);
      const wrongType = (item as { type?: unknown })?.type !== type ? [{ field: 'type', rule: 'equals', message: `type must be ${type}` }] : [];
      const payload = (item as { payload?: unknown })?.payload;
      const payloadProblems =
        problems.length === 0 && wrongType.length === 0
          ? flattenValidationErrors(validateSync(plainToInstance(INPUT_SCHEMAS[type] as new () => object, payload) as object, { whitelist: true, forbidNonWhitelisted: true })).map((v) => ({ ...v, field: `payload.${v.field}` }))
          : [];
      return [...problems, ...wrongType, ...payloadProblems].map((v) => ({ ...v, field: Array.isArray(body) ? `[${i}].${v.field}` : v.field }));
    });
    if (violations.length > 0) {
      res.status(400);
      return { status: 'REJECTED', violations };
    }
    if (type === 'MarkPrice') {
      const nowMs = this.runtime.clock.now().getTime();
      const future = items.flatMap((item, i) => {
        const v = futureDatedMark(String((item as { payload: { at: string } }).payload.at), nowMs, this.markFutureToleranceMs);
        return v ? [{ ...v, field: Array.isArray(body) ? `[${i}].${v.field}` : v.field }] : [];
      });
      if (future.length > 0) {
        res.status(422);
        return { status: 'REJECTED', violations: future };
      }
    }
    const release = this.runtime.beginWork();
    if (!release) {
      res.setHeader('Retry-After', '1');
      throw new ServiceUnavailableException('this instance is shutting down; send the batch again to another instance');
    }
    try {
      // 202 only once durable (stored, or acknowledged by every in-sync broker replica): a crash after
      // the answer loses nothing the sender was told we have.
      await this.runtime.acceptInputs(topic, items.map((item) => makeEnvelope(item as Parameters<typeof makeEnvelope<Record<string, unknown>>>[0])));
    } catch (err) {
      const code = storeFailureCode(err);
      if (!code) throw err;
      res.setHeader('Retry-After', '1');
      throw new ServiceUnavailableException(`the event store refused the write (${code}); nothing of this batch is acknowledged: send it again`);
    } finally {
      release();
    }
    return { status: 'PUBLISHED', topic: this.runtime.topics.of(topic), count: items.length, durable: true };
  }
}
