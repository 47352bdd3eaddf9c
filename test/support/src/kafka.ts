/**
 * Kafka integration specs use describeKafka: they run against the broker that the jest global setup
 * started (or KAFKA_BROKERS). With REQUIRE_KAFKA=1 a missing broker fails the run; otherwise the
 * specs are skipped and the reason is printed.
 */
export function kafkaBrokers(): string[] | undefined {
  const brokers = process.env.KAFKA_BROKERS;
  return brokers ? brokers.split(',').map((b) => b.trim()).filter(Boolean) : undefined;
}

export function describeKafka(name: string, body: (brokers: string[]) => void): void {
  const brokers = kafkaBrokers();
  if (brokers) {
    const version = process.env.KAFKA_TEST_BROKER_VERSION ? `Apache Kafka ${process.env.KAFKA_TEST_BROKER_VERSION}` : 'external broker';
    describe(`${name} [${version} at ${brokers.join(',')}]`, () => body(brokers));
    return;
  }
  const reason = process.env.KAFKA_UNAVAILABLE ?? 'no broker';
  if (process.env.REQUIRE_KAFKA === '1') {
    describe(name, () => {
      it('has a real Kafka broker (REQUIRE_KAFKA=1)', () => {
        throw new Error(`REQUIRE_KAFKA=1 but no Kafka broker: ${reason}`);
      });
    });
    return;
  }
  describe.skip(`${name} (skipped: Kafka unavailable: ${reason})`, () => body([]));
}

/** Topic names unique to one spec file run, so runs never see each other's messages. */
export function uniquePrefix(label: string): string {
  return `t-${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}.`;
}
