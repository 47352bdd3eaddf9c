import { BadRequestException, Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { isIsoUtc, ManualClock } from '@backstop/kernel';
import { Runtime } from '../runtime';
import { RUNTIME } from './tokens';

/**
 * Test-only: present only when the process was started with BACKSTOP_TEST_CLOCK=<ISO instant>, so
 * an end-to-end test can move the clock of separately running services (deadlines, premium
 * intervals) the way a replay does, and run their tickers. Never registered otherwise.
 */
@ApiExcludeController()
@Controller('v1/test/clock')
export class TestClockController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Post()
  @HttpCode(200)
  async set(@Body() body: { now?: unknown }): Promise<{ now: string }> {
    if (!isIsoUtc(body?.now)) throw new BadRequestException('now must be an ISO-8601 UTC instant');
    const clock = this.runtime.clock as ManualClock;
    if (Date.parse(body.now) < clock.now().getTime()) throw new BadRequestException('the test clock only moves forward');
    clock.set(new Date(body.now));
    await this.runtime.tick();
    return { now: clock.now().toISOString() };
  }
}
