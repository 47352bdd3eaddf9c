// The official Apache Kafka Java client as a desk would run it, for the interop tests: compiles
// tools/kafka/interop/Interop.java with javac against the broker's jars (cached by source hash next
// to the jars) and runs it with a time limit, so no JVM outlives its test.
const { execFileSync, spawn } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { fetchJars } = require('./broker');

const SOURCE = path.join(__dirname, 'interop', 'Interop.java');

/** Compiles once per source version; returns the classpath (kafka libs + compiled driver). */
function interopClasspath() {
  const libs = fetchJars();
  const hash = createHash('sha256').update(fs.readFileSync(SOURCE)).digest('hex').slice(0, 16);
  const classes = path.join(path.dirname(libs), `interop-${hash}`);
  if (!fs.existsSync(path.join(classes, 'Interop.class'))) {
    const tmp = `${classes}.tmp-${process.pid}`;
    fs.mkdirSync(tmp, { recursive: true });
    execFileSync('javac', ['-nowarn', '-d', tmp, '-cp', `${libs}/*`, SOURCE], { stdio: 'pipe' });
    fs.rmSync(classes, { recursive: true, force: true });
    fs.renameSync(tmp, classes);
  }
  return `${libs}/*${path.delimiter}${classes}`;
}

/** Runs `Interop <args>` with stdin; resolves { code, stdout, stderr } (rejects only on time-out). */
function runInterop(args, { input = '', timeoutMs = 60_000, env = {} } = {}) {
  const cp = interopClasspath();
  return new Promise((resolve, reject) => {
    const child = spawn('java', ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', cp, 'Interop', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    // Decode the streams, not each chunk: a chunk can end inside a multi-byte UTF-8 character, which
    // chunk-by-chunk toString() turns into two replacement characters (seen as a 1-byte-longer value).
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Interop ${args[0]} timed out after ${timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.end(input);
  });
}

module.exports = { interopClasspath, runInterop };
