import { runCli } from './cli';

// `npm run market-replay -- --file ../shared/data/btc-usd-daily.csv --http http://127.0.0.1:3000 --speed 86400`
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());
void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stop.signal }).then((code) => {
  process.exitCode = code;
});
