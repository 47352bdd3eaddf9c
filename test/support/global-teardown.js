module.exports = async () => {
  const broker = globalThis.__BACKSTOP_KAFKA__;
  if (broker) await broker.stop();
};
