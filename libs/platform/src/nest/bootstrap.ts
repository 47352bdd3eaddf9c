import 'reflect-metadata';
import { INestApplication, LoggerService, Type } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Clock, ManualClock } from '@backstop/kernel';
import type { MessageBus } from '@backstop/messaging';
import { createLogger, Logger, startTracing, TracingHandle } from '@backstop/telemetry';
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
  const app = await NestFactory.create<NestExpressApplication>(
    {
      module: class BackstopAppModule {},
      imports: [PlatformModule.forRuntime(runtime), ...options.modules],
      controllers: testClockStart && !options.clock ? [TestClockController] : [],
    },
    { logger: nestLogger(runtime.logger), bodyParser: true, abortOnError: false },
  );
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
  await app.init();
  // Bind HTTP first: liveness answers while the consumer groups join (a slow rebalance must not get
  // the pod killed); /health/ready stays 503 until they have joined and caught up.
  await app.listen(config.port, config.host);
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
    const traced = options.name ?? (options.services.length === 1 ? options.services[0] : undefined);
    tracing = startTracing({ serviceName: traced ? `backstop-${traced}` : 'backstop' });
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
    process.stderr.write(`Backstop failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
