/**
 * The HTTP baseline of bench/http-commands.bench.ts: a bare node:http server that parses the JSON
 * body and does one durable insert per request (better-sqlite3, WAL, synchronous=FULL, one
 * transaction each), then answers 202 with a small JSON reply. Started as a child process with
 * PORT and DATA_FILE; listens on 127.0.0.1 only. Not a bench itself.
 */
import Database from 'better-sqlite3';
import { createServer } from 'node:http';

const db = new Database(process.env.DATA_FILE ?? ':memory:');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS commands (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, body TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO commands (id, type, body) VALUES (?, ?, ?)');
const insertOne = db.transaction((id: string, type: string, body: string) => insert.run(id, type, body).lastInsertRowid);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const body = Buffer.concat(chunks).toString('utf8');
      const command = JSON.parse(body) as { id: string; type: string };
      const position = insertOne(command.id, command.type, body);
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ACCEPTED', commandId: command.id, position: String(position) }));
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: (err as Error).message }));
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => server.close(() => {
  db.close();
  process.exit(0);
}));
