// A broker with the listeners a production cluster exposes, for the secured-Kafka test:
//   SASL_SSL: TLS (certificate from a test CA) + SASL SCRAM-SHA-256/512, PLAIN and OAUTHBEARER
//             (Kafka's unsecured-JWT validator: it checks the token's form and expiry, not a signature)
//   SSL:      mutual TLS (a client certificate from the same CA is required)
// SCRAM users are created at format time (kafka-storage format --add-scram), as KRaft wants.
const { startBroker } = require('./broker');
const { makeTestPki } = require('./test-pki');

async function startSecuredBroker({ dir, users, log } = {}) {
  const pki = makeTestPki(dir);
  const plainUsers = users.map((u) => `user_${u.name}="${u.password}"`).join(' ');
  const broker = await startBroker({
    log,
    heap: '512m',
    listeners: [{ name: 'SASL_SSL', protocol: 'SASL_SSL' }, { name: 'SSL', protocol: 'SSL' }],
    properties: [
      'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER',
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
      'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;',
      'ssl.keystore.type=PKCS12',
      `ssl.keystore.location=${pki.brokerKeystore}`,
      `ssl.keystore.password=${pki.keystorePassword}`,
      `ssl.key.password=${pki.keystorePassword}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${pki.caFile}`,
      'listener.name.ssl.ssl.client.auth=required',
    ],
    formatArgs: users.flatMap((u) => ['--add-scram', `${u.mechanism}=[name=${u.name},password=${u.password}]`]),
  });
  return { ...broker, pki, saslSsl: broker.listeners.SASL_SSL, mtls: broker.listeners.SSL };
}

module.exports = { startSecuredBroker };
