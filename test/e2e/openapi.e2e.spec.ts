import SwaggerParser from '@apidevtools/swagger-parser';
import { IntakeModule } from '@backstop/intake-service';
import { LedgerModule } from '@backstop/ledger-service';
import { MarginModule } from '@backstop/margin-service';
import { PricingModule } from '@backstop/pricing-service';
import { SettlementModule } from '@backstop/settlement-service';
import { startTestBackstop, TestBackstop } from '@backstop/platform';

type Doc = {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { oneOf?: { $ref: string }[] }; example?: unknown }> }; responses: Record<string, { content?: Record<string, { example?: unknown }> }> }>>;
  components: { schemas: Record<string, { properties?: Record<string, { enum?: unknown[]; format?: string; properties?: Record<string, unknown> }> }> };
};

/**
 * Issue 12 item 5: /docs-json is a valid OpenAPI document (checked by swagger-parser, which
 * resolves every $ref and validates against the OpenAPI schema), and POST /v1/commands documents
 * the body of every registered command and every status with an example.
 */
describe('OpenAPI at /docs-json', () => {
  let app: TestBackstop;
  let doc: Doc;
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule, LedgerModule] });
    doc = (await (await fetch(`${app.url}/docs-json`)).json()) as Doc;
  }, 60_000);
  afterAll(() => app?.close());

  it('validates with a real OpenAPI parser', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('documents the body of POST /v1/commands per command type, from the DTOs', () => {
    const post = doc.paths['/v1/commands'].post;
    const oneOf = post.requestBody!.content['application/json'].schema.oneOf!.map((r) => r.$ref.split('/').at(-1));
    const registered = app.runtime.commands.definitionsFor().map((d) => `${d.type}Command`).sort();
    expect(oneOf).toEqual(registered);
    expect(registered.length).toBeGreaterThan(10);
    const register = doc.components.schemas.RegisterPartyCommand.properties!;
    expect(register.type.enum).toEqual(['RegisterParty']);
    expect(register.id.format).toBe('uuid');
    expect(register.time.format).toBe('date-time');
    expect(Object.keys(register.payload.properties!)).toEqual(expect.arrayContaining(['partyId', 'name', 'role', 'credit']));
  });

  it('has a response schema with an example for 200, 400, 401, 403, 409, 413, 422 and 503', () => {
    const responses = doc.paths['/v1/commands'].post.responses;
    for (const status of ['200', '400', '401', '403', '409', '413', '422', '503']) {
      expect(responses[status]?.content?.['application/json']?.example).toBeDefined();
    }
  });
});
