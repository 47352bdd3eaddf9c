import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { TOPICS } from '@backstop/messaging';
import { ASYNCAPI_FILE, commandDefinitions, eventSchemas, generateAsyncApi } from '@backstop/asyncapi';
import { WORKSPACE_ROOT } from '@backstop/testing';

/** docs/asyncapi.yaml is generated from the code; this fails the build when they drift apart. */
describe('docs/asyncapi.yaml', () => {
  it('is exactly what the code generates (run `npm run asyncapi` after changing a command or event)', async () => {
    const committed = readFileSync(ASYNCAPI_FILE, 'utf8');
    expect(committed).toBe(await generateAsyncApi());
  }, 60_000);

  it('documents every topic, every registered command and every domain event', async () => {
    const doc = parse(readFileSync(ASYNCAPI_FILE, 'utf8')) as { channels: Record<string, { address: string; messages: Record<string, unknown> }>; components: { messages: Record<string, unknown> } };
    const addresses = Object.values(doc.channels).map((c) => c.address);
    expect(addresses.sort()).toEqual(Object.values(TOPICS).sort());
    const documented = Object.keys(doc.components.messages);
    for (const command of await commandDefinitions()) expect(documented).toContain(command.type);
    for (const event of eventSchemas(WORKSPACE_ROOT)) expect(documented).toContain(event.type);
    expect(documented).toEqual(expect.arrayContaining(['MarkPrice', 'CreditScore', 'CommandAccepted', 'CommandRejected', 'DeadLetter']));
  }, 60_000);
});
