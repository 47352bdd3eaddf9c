// A throw-away PKI for the secured-Kafka test, made with openssl: a CA, a broker certificate for
// 127.0.0.1/localhost (also as a PKCS12 keystore for the broker) and a client certificate for
// mutual TLS. Nothing here is a secret worth keeping: it lives in a temp dir for one test run.
const { execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: 'pipe', timeout: 30_000 });
}

function makeTestPki(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const password = randomBytes(12).toString('hex');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Backstop test CA', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const issue = (name, cn, ext) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`], dir);
  };
  issue('broker', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', 'backstop-client', 'extendedKeyUsage=clientAuth\n');
  openssl(['pkcs12', '-export', '-in', 'broker.pem', '-inkey', 'broker.key', '-certfile', 'ca.pem', '-name', 'broker', '-out', 'broker.p12', '-passout', `pass:${password}`], dir);
  const at = (f) => path.join(dir, f);
  return {
    caFile: at('ca.pem'),
    brokerKeystore: at('broker.p12'),
    keystorePassword: password,
    clientCertFile: at('client.pem'),
    clientKeyFile: at('client.key'),
  };
}

module.exports = { makeTestPki };
