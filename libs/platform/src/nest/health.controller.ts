import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Runtime } from '../runtime';
import { RUNTIME } from './tokens';

/** Kubernetes probes and Prometheus scraping. */
@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get('health/live')
  live(): { status: string } {
    return { status: 'ok' };
  }

  @Get('health/ready')
  async ready(@Res({ passthrough: true }) res: Response): Promise<unknown> {
    const readiness = await this.runtime.readiness();
    if (!readiness.ready) res.status(503);
    return {
      status: readiness.ready ? 'ok' : 'not ready',
      services: this.runtime.config.services,
      mode: this.runtime.config.mode,
      store: { kind: this.runtime.store.kind, location: this.runtime.store.location },
      bus: { kind: this.runtime.bus.kind, location: this.runtime.bus.location },
      checks: readiness.checks,
    };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.runtime.metrics.render();
  }
}
