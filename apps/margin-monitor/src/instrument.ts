// main.ts's first import: OpenTelemetry's auto-instrumentations patch http, express and kafkajs as
// they load, so tracing starts before Nest or kafkajs is imported (a configuration error is reported
// by runMain, like any other start-up failure).
import { startProcessTracing } from '@backstop/telemetry';

startProcessTracing('backstop-margin-monitor');
