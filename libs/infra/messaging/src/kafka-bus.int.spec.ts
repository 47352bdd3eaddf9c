import { describeKafka } from '@backstop/testing';
import { messageBusContract } from './contract-suite';
import { KafkaBus } from './kafka-bus';

describeKafka('kafkajs adapter', (brokers) => {
  messageBusContract('kafka', async () => new KafkaBus({ brokers, clientId: 'contract-test', partitions: 3 }), 30_000);
});
