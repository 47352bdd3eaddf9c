import { runCli } from './cli';

// `npm run backtest -- --file ../shared/data/btc-usd-daily.csv`
process.exitCode = runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
