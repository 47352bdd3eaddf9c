import { run } from './cli';

// `npm run compliance -- <verb> ...`: see --help. The exit code says what happened (documented there).
run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`error: unexpected failure: ${err.stack ?? err.message}\n`);
    process.exitCode = 70;
  },
);
