// Starts a real single-node Apache Kafka (KRaft) broker on 127.0.0.1 for tests: fetches the jars
// with Maven (cached), formats a temp storage dir, picks free ports, waits until the broker answers,
// and returns a handle that stops it. A watchdog ends the broker if this process dies or after
// maxLifetimeSec, so no broker outlives its test run.
const { execFileSync, spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const HERE = __dirname;

function kafkaVersion() {
  const pom = fs.readFileSync(path.join(HERE, 'pom.xml'), 'utf8');
  return /<kafka.version>(.*)<\/kafka.version>/.exec(pom)[1];
}

function fetchJars() {
  return execFileSync('bash', [path.join(HERE, 'fetch.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.on('connect', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => { socket.destroy(); resolve(false); });
  });
}

/** A Kafka cluster id: 16 random bytes, base64url without padding (what `kafka-storage random-uuid` prints). */
function clusterId() {
  return randomBytes(16).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function waitUntilReady(brokers, deadlineMs, isAlive) {
  const { Kafka, logLevel } = require('kafkajs');
  let lastError = 'not reachable yet';
  while (Date.now() < deadlineMs) {
    if (!isAlive()) throw new Error(`the broker process exited during start-up (${lastError})`);
    const port = Number(brokers.split(':')[1]);
    if (await canConnect(port)) {
      const admin = new Kafka({ clientId: 'backstop-test-ready', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        await admin.disconnect();
        if (cluster.brokers.length > 0 && cluster.controller !== null) return;
      } catch (err) {
        lastError = err.message;
        await admin.disconnect().catch(() => undefined);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the broker did not become ready in time (${lastError})`);
}

/**
 * Options beyond the plaintext test broker (the secured-Kafka test uses them):
 * - listeners: extra listeners, e.g. [{ name: 'SASL_SSL', protocol: 'SASL_SSL' }]; each gets a free
 *   port and is returned as listeners[name] = '127.0.0.1:port'. The PLAINTEXT listener stays for
 *   the broker's own traffic and the readiness check.
 * - properties: extra server.properties lines (TLS stores, SASL mechanisms, JAAS per listener).
 * - formatArgs: extra `kafka-storage format` arguments, e.g. ['--add-scram', 'SCRAM-SHA-512=[name=u,password=p]'].
 */
async function startBroker({ log = (m) => process.stderr.write(`${m}\n`), maxLifetimeSec = 3600, startTimeoutMs = 120_000, listeners: extra = [], properties = [], formatArgs = [], heap = '768m' } = {}) {
  const version = kafkaVersion();
  const libs = fetchJars();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backstop-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const brokers = `127.0.0.1:${port}`;
  const listeners = {};
  for (const l of extra) listeners[l.name] = `127.0.0.1:${await freePort()}`;
  const extraListeners = extra.map((l) => `,${l.name}://${listeners[l.name]}`).join('');
  const extraMap = extra.map((l) => `,${l.name}:${l.protocol}`).join('');
  const props = path.join(dir, 'server.properties');
  fs.writeFileSync(props, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${extraListeners}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}${extraListeners}`,
    'controller.listener.names=CONTROLLER',
    `listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${extraMap}`,
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${path.join(dir, 'data')}`,
    'num.partitions=3',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'log.flush.interval.messages=1',
    ...properties,
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(dir, 'log4j.properties'), [
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${path.join(dir, 'server.log')}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    '',
  ].join('\n'));
  const cp = `${libs}/*`;
  const jvm = ['-Xms256m', `-Xmx${heap}`, '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`];
  execFileSync('java', [...jvm, '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', props, ...formatArgs], { stdio: 'pipe' });

  const javaCmd = ['java', ...jvm, '-cp', cp, 'kafka.Kafka', props].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  let child;
  let alive = false;
  /** Starts the broker process on the formatted storage (again, after restart's stop: same data, same ports). */
  async function launch() {
    // Watchdog: the broker dies with its parent (the test runner) or after maxLifetimeSec.
    const script = `${javaCmd} >> '${dir}/stdout.log' 2>&1 & j=$!; echo $j > '${dir}/broker.pid'; trap 'kill $j 2>/dev/null; wait $j; exit 0' TERM INT;`
      + ` n=0; while kill -0 ${process.pid} 2>/dev/null && kill -0 $j 2>/dev/null && [ $n -lt ${maxLifetimeSec} ]; do sleep 1; n=$((n+1)); done;`
      + ' kill $j 2>/dev/null; sleep 10; kill -9 $j 2>/dev/null; exit 0';
    child = spawn('bash', ['-c', script], { stdio: 'ignore', detached: true });
    child.unref();
    alive = true;
    child.on('exit', () => { alive = false; });
    await waitUntilReady(brokers, Date.now() + startTimeoutMs, () => alive);
  }
  const started = Date.now();
  try {
    await launch();
  } catch (err) {
    const tail = fs.existsSync(path.join(dir, 'server.log')) ? fs.readFileSync(path.join(dir, 'server.log'), 'utf8').split('\n').slice(-20).join('\n') : '';
    await stop();
    throw new Error(`Apache Kafka ${version} broker on ${brokers} failed to start: ${err.message}\n${tail}`);
  }
  log(`Kafka: started Apache Kafka ${version} (KRaft, single node) at ${brokers} in ${Date.now() - started} ms; dir ${dir}`);

  /** Ends the broker process (SIGTERM, then SIGKILL after 15 s), keeping its data. */
  async function halt() {
    const pidFile = path.join(dir, 'broker.pid');
    const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : undefined;
    try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
    for (let i = 0; i < 150 && pid && isRunning(pid); i += 1) await new Promise((r) => setTimeout(r, 100));
    if (pid && isRunning(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }

  /** A broker restart (chaos): down for `downMs`, then up again on the same data and ports. */
  async function restart({ downMs = 0 } = {}) {
    await halt();
    await new Promise((r) => setTimeout(r, downMs));
    await launch();
  }

  async function stop() {
    await halt();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  return { brokers, listeners, version, dir, stop, restart };
}

function isRunning(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

module.exports = { startBroker, kafkaVersion, fetchJars };

if (require.main === module) {
  // `node tools/kafka/broker.js`: a broker for manual runs; Ctrl-C stops it.
  startBroker({ maxLifetimeSec: 8 * 3600 }).then((b) => {
    process.stdout.write(`KAFKA_BROKERS=${b.brokers}\n`);
    const shutdown = () => b.stop().then(() => process.exit(0));
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
    setInterval(() => undefined, 1 << 30);
  }, (err) => { process.stderr.write(`${err.message}\n`); process.exit(1); });
}
