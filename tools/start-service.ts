import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `npm run start:service -- <service>` (or BACKSTOP_SERVICE=<service> npm run start:service): runs
 * one service alone, as its deployment does (apps/<service>/src/main.ts), or the ledger service
 * (apps/ledger, the event topics into its own store). It needs KAFKA_BROKERS (a service alone talks
 * to the others over Kafka); its own store is BACKSTOP_DATA_FILE, BACKSTOP_POSTGRES_URL
 * (+ BACKSTOP_POSTGRES_SCHEMA) or EVENTSTORE_CONNECTION_STRING. Exit 64 (usage) names the services
 * when the name is missing or unknown.
 */
export const STANDALONE_SERVICES = ['contract-intake', 'premium-pricing', 'margin-monitor', 'default-settlement', 'ledger'] as const;

export function entryOf(service: string | undefined, root: string): string | { usage: string } {
  const known = STANDALONE_SERVICES as readonly string[];
  if (!service || !known.includes(service)) {
    return { usage: `usage: npm run start:service -- <service>   (service: ${known.join(', ')}; got ${service ? `"${service}"` : 'none'})` };
  }
  return join(root, 'apps', service, 'src', 'main.ts');
}

if (require.main === module) {
  const entry = entryOf(process.argv[2] ?? process.env.BACKSTOP_SERVICE, join(__dirname, '..'));
  if (typeof entry !== 'string') {
    process.stderr.write(`${entry.usage}\n`);
    process.exit(64);
  }
  if (!existsSync(entry)) {
    process.stderr.write(`start-service: ${entry} is missing\n`);
    process.exit(70);
  }
  require(entry);
}
