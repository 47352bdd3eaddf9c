import 'reflect-metadata';
import { INestApplication, LoggerService, Type } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Clock, ManualClock } from '@backstop/kernel';
import type { MessageBus } from '@backstop/messaging';
import { accessLogMiddleware, createLogger, Logger, processTracingHandle, startTracing, TracingHandle } from '@backstop/telemetry';
import { configFromEnv, RuntimeConfig, ServiceName } from '../config';
import { Runtime } from '../runtime';
import { documentCommands } from './openapi';
import { PlatformModule } from './platform.module';
import { TestClockController } from './test-clock.controller';

const SHUTDOWN_TIMEOUT_MS = 20_000;

/** BACKSTOP_SHUTDOWN_DELAY_MS: after SIGTERM, fail readiness this long before draining (endpoints propagate). */
function shutdownDelayMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.BACKSTOP_SHUTDOWN_DELAY_MS?.trim();
  if (!raw) return 0;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0 || ms >= SHUTDOWN_TIMEOUT_MS) throw new RangeError(`BACKSTOP_SHUTDOWN_DELAY_MS must be an integer 0..${SHUTDOWN_TIMEOUT_MS - 1}, got "${raw}"`);
  return ms;
}

/**
 * BACKSTOP_STARTUP_TIMEOUT_MS bounds Nest's own start (module scan, dependency injection, provider
 * factories, onModuleInit): an async provider that never settles would otherwise leave a process
 * that neither listens nor exits. The consumers' group join after it is not bounded by this (the
 * startup probe covers that).
 */
export function nestStartTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.BACKSTOP_STARTUP_TIMEOUT_MS?.trim();
  if (!raw) return 60_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100 || ms > 600_000) throw new RangeError(`BACKSTOP_STARTUP_TIMEOUT_MS must be an integer 100..600000, got "${raw}"`);
  return ms;
}

/** A start-up failure, its message naming the step and the cause (Nest's own text when it has one). */
export class StartupError extends Error {
  constructor(step: string, override readonly cause: unknown) {
    super(`${step}: ${describeError(cause)}`);
    this.name = 'StartupError';
  }
}

/**
 * The cause as one readable text: some Nest failures are errors without a message (a module import
 * that is `undefined` at scan time, typically a circular file import, is a bare `TypeError`), so the
 * first frames of the stack stand in for it.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message.trim()) return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
  const frames = (err.stack ?? '').split('\n').slice(1, 4).map((f) => f.trim()).join(' | ');
  return `${err.name} without a message${frames ? ` at ${frames}` : ''}`;
}

function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms (BACKSTOP_STARTUP_TIMEOUT_MS): a provider factory or onModuleInit never settled`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export interface BackstopApp {
  readonly app: INestApplication;
  readonly runtime: Runtime;
  readonly url: string;
  close(): Promise<void>;
}

export interface BootstrapOptions {
  readonly services: readonly ServiceName[];
  /** The process's name when it is none of the services (the ledger): traces and logs say it. */
  readonly name?: string;
  /** The Nest modules of those services (each lives in its capability's service lib). */
  readonly modules: readonly Type<unknown>[];
  readonly config?: Partial<RuntimeConfig>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Tests: the bus to run on instead of the one the config selects (e.g. an InProcessBus in 'distributed' mode). */
  readonly bus?: MessageBus;
}

/** Builds and starts one process: the four services (npm start) or one (a deployment). */
export async function bootstrapBackstop(options: BootstrapOptions): Promise<BackstopApp> {
  const config: RuntimeConfig = { ...configFromEnv(options.services, process.env, options.name), ...(options.config ?? {}) };
  const testClockStart = process.env.BACKSTOP_TEST_CLOCK;
  const clock = options.clock ?? (testClockStart ? new ManualClock(new Date(testClockStart)) : undefined);
  const runtime = Runtime.create(config, { clock, bus: options.bus, logger: options.logger ?? (options.name ? createLogger({ services: options.name }) : undefined) });
  const deadlineMs = nestStartTimeoutMs();
  let app: NestExpressApplication | undefined;
  let step = 'creating the Nest application (modules, dependency injection)';
  try {
    app = await withDeadline(createApp(options, runtime, config, testClockStart), deadlineMs, 'creating the Nest application');
    step = 'initialising the Nest application (onModuleInit)';
    await withDeadline(app.init(), deadlineMs, 'initialising the Nest application');
    // Bind HTTP first: liveness answers while the consumer groups join (a slow rebalance must not get
    // the pod killed); /health/ready stays 503 until they have joined and caught up.
    step = `binding HTTP to ${config.host}:${config.port}`;
    await app.listen(config.port, config.host);
  } catch (err) {
    // Nothing may stay open after a failed start (store, bus, timers, a half-built app), or an
    // in-process caller hangs and a process depends on its exit call alone.
    await closeAfterFailedStart(app, runtime);
    throw new StartupError(`Backstop failed while ${step}`, err);
  }
  const address = app.getHttpServer().address() as { port: number };
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${address.port}`;
  runtime.logger.info(`HTTP bound to ${url}; not ready until the consumers have joined and caught up`);
  try {
    await runtime.start();
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  return {
    app,
    runtime,
    url,
    close: () => {
      runtime.beginDrain();
      return app.close();
    },
  };
}

async function createApp(options: BootstrapOptions, runtime: Runtime, config: RuntimeConfig, testClockStart: string | undefined): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(
    {
      module: class BackstopAppModule {},
      imports: [PlatformModule.forRuntime(runtime), ...options.modules],
      controllers: testClockStart && !options.clock ? [TestClockController] : [],
    },
    // abortOnError false: a dependency-injection failure is thrown to the caller (which closes what
    // was opened and exits non-zero naming it) instead of Nest's own process.abort().
    { logger: nestLogger(runtime.logger), bodyParser: true, abortOnError: false },
  );
  // First middleware: one access-log line per request (method, route, status, duration, trace id; no headers).
  app.use(accessLogMiddleware(runtime.logger));
  app.useBodyParser('json', { limit: '1mb' });
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Backstop')
      .setDescription(`Risk-sharing backstop for crypto derivatives. Services in this process: ${config.services.join(', ')}.`)
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  documentCommands(document, runtime.commands.definitionsFor());
  SwaggerModule.setup('docs', app, document);
  // No work before the consumers have joined (their topics may not exist yet): /v1 answers 503 with
  // Retry-After; health, metrics and docs always answer. After SIGTERM, beginWork refuses instead.
  // Draining: ask every client to drop its keep-alive connection, or a client that keeps sending on
  // one (even to be refused) holds the server's close, and the shutdown, open until it times out.
  app.use((_req: unknown, res: { setHeader(name: string, value: string): void }, next: () => void) => {
    if (runtime.isDraining) res.setHeader('connection', 'close');
    next();
  });
  app.use('/v1', (_req: unknown, res: { status(code: number): { set(h: Record<string, string>): { json(body: unknown): void } } }, next: () => void) => {
    if (runtime.acceptingWork) return next();
    res.status(503).set({ 'retry-after': '1' }).json({ statusCode: 503, message: 'not accepting work: the service is starting or shutting down' });
  });
  return app;
}

async function closeAfterFailedStart(app: INestApplication | undefined, runtime: Runtime): Promise<void> {
  const bounded = <T>(p: Promise<T>) => withDeadline(p, 5_000, 'closing after a failed start').catch(() => undefined);
  // app.close() runs onApplicationShutdown, which stops the runtime; without an app, stop it here.
  if (app) await bounded(app.close());
  else await bounded(runtime.stop(0));
}

/** `backstop` for the services in one process, `backstop-<service>` for one alone (the default OTEL_SERVICE_NAME). */
export function serviceNameOf(services: readonly string[]): string {
  return services.length === 1 ? `backstop-${services[0]}` : 'backstop';
}

function nestLogger(logger: Logger): LoggerService {
  const child = logger.child({ component: 'nest' });
  return {
    log: (message: unknown) => child.debug(String(message)),
    error: (message: unknown, trace?: unknown) => child.error(String(message), trace ? { trace: String(trace) } : undefined),
    warn: (message: unknown) => child.warn(String(message)),
    debug: (message: unknown) => child.debug(String(message)),
    verbose: () => undefined,
  };
}

/** Entry point of every app: start, print where it listens and what it stores, exit non-zero on failure. */
export async function runMain(options: BootstrapOptions): Promise<void> {
  let tracing: TracingHandle | undefined;
  try {
    const delayMs = shutdownDelayMs();
    tracing = processTracingHandle() ?? startTracing({ serviceName: options.name ? `backstop-${options.name}` : serviceNameOf(options.services) });
    const started = await bootstrapBackstop(options);
    const { runtime } = started;
    runtime.logger.info(`Backstop listening on ${started.url} (health: ${started.url}/health/ready, docs: ${started.url}/docs)`, {
      services: runtime.config.services,
      mode: runtime.config.mode,
      store: runtime.store.kind,
      dataLocation: runtime.store.location,
      bus: `${runtime.bus.kind} (${runtime.bus.location})`,
      traces: tracing.description,
    });
    if (process.env.BACKSTOP_TEST_CLOCK) {
      runtime.logger.warn('BACKSTOP_TEST_CLOCK is set: this process runs on a manual clock moved by POST /v1/test/clock (tests only)');
    }
    if (runtime.authGenerated) {
      runtime.logger.warn('BACKSTOP_TOKENS is not set: generated one bearer token per role for this run', {
        tokens: Object.fromEntries(runtime.auth.principals.map((p) => [p.role, p.token])),
      });
    }
    // Graceful shutdown (Kubernetes sends SIGTERM): stop consuming, finish in-flight work, close
    // the bus and the store; bounded, so a stuck dependency cannot hold the pod forever.
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      runtime.logger.info('shutting down: no new work; finishing in-flight messages', { signal, delayMs });
      setTimeout(() => process.exit(1), SHUTDOWN_TIMEOUT_MS).unref();
      runtime.beginDrain();
      new Promise((r) => setTimeout(r, delayMs))
        .then(() => started.close())
        .then(() => tracing?.shutdown())
        .then(
          () => process.exit(0),
          (err: Error) => {
            runtime.logger.error('shutdown failed', { error: err.message });
            process.exit(1);
          },
        );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  } catch (err) {
    // Exit non-zero with the cause, whatever is still open (a tracer's timer, a half-open socket):
    // a process that neither serves nor exits is the worst start-up failure for an orchestrator.
    const text = err instanceof StartupError ? err.message : `Backstop failed to start: ${describeError(err)}`;
    process.stderr.write(`${text}\n`);
    if (tracing) await withDeadline(tracing.shutdown(), 2_000, 'flushing spans').catch(() => undefined);
    process.exit(1);
  }
}
