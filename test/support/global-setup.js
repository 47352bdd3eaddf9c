// Jest global setup: makes a real Kafka broker available to the Kafka integration tests.
// KAFKA_BROKERS set: use that broker. Otherwise start Apache Kafka from the Maven jars (tools/kafka).
// If no broker can be had: with REQUIRE_KAFKA=1 (CI) the run fails here; otherwise the Kafka tests
// are reported as skipped with the reason (KAFKA_UNAVAILABLE) and everything else still runs.
const { startBroker } = require('../../tools/kafka/broker');

module.exports = async () => {
  if (process.env.KAFKA_BROKERS) {
    process.stderr.write(`\nKafka: using KAFKA_BROKERS=${process.env.KAFKA_BROKERS}\n`);
    return;
  }
  if (process.env.BACKSTOP_TEST_KAFKA === 'off' && process.env.REQUIRE_KAFKA !== '1') {
    process.env.KAFKA_UNAVAILABLE = 'BACKSTOP_TEST_KAFKA=off';
    return;
  }
  try {
    const broker = await startBroker({ log: (m) => process.stderr.write(`\n${m}\n`) });
    process.env.KAFKA_BROKERS = broker.brokers;
    process.env.KAFKA_TEST_BROKER_VERSION = broker.version;
    globalThis.__BACKSTOP_KAFKA__ = broker;
  } catch (err) {
    if (process.env.REQUIRE_KAFKA === '1') {
      throw new Error(`REQUIRE_KAFKA=1 but no Kafka broker could be started: ${err.message}`);
    }
    process.env.KAFKA_UNAVAILABLE = err.message.split('\n')[0];
    process.stderr.write(`\nKafka: unavailable, Kafka tests will be skipped: ${process.env.KAFKA_UNAVAILABLE}\n`);
  }
};
