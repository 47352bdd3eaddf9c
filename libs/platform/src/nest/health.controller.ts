import { Controller, Get, Header, Headers, Inject, Res } from '@nestjs/common';
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
  async ready(@Res({ passthrough: true }) res: Response, @Headers('authorization') authorization?: string): Promise<unknown> {
    const readiness = await this.runtime.readiness();
    if (!readiness.ready) res.status(503);
    // Probes call this without a token: they get the verdict and the checks, not where the data lives
    // (a file path or broker addresses help an attacker); an operator or compliance token sees those too.
    const caller = this.runtime.auth.authenticate(authorization);
    const insider = caller?.role === 'operator' || caller?.role === 'compliance';
    return {
      status: readiness.ready ? 'ok' : 'not ready',
      services: this.runtime.config.services,
      mode: this.runtime.config.mode,
      store: { kind: this.runtime.store.kind, ...(insider ? { location: this.runtime.store.location } : {}) },
      bus: { kind: this.runtime.bus.kind, ...(insider ? { location: this.runtime.bus.location } : {}) },
      checks: insider ? readiness.checks : redactChecks(readiness.checks),
    };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): string {
    return this.runtime.metrics.render();
  }
}

/** A check's verdict without its detail (an error message may name the data file). */
function redactChecks(checks: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(checks).map(([name, value]) => [name, value === 'ok' || value === 'starting' ? value : value.split(':')[0]]));
}
