import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv';
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
  const TOKENS = { operator: 'openapi-operator-token-7f3a9e21', desk: 'openapi-desk1-token-9b2c71e05a', provider: 'openapi-provider-token-c41d8e2f', compliance: 'openapi-compliance-token-5e6f7a8b' };
  const savedTokens = process.env.BACKSTOP_TOKENS;
  beforeAll(async () => {
    // The examples are sent as the operator (who may send every command); the bound desk and provider tokens are the documented shape.
    process.env.BACKSTOP_TOKENS = `${TOKENS.operator}=operator,${TOKENS.desk}=desk:desk1,${TOKENS.provider}=provider:lp1,${TOKENS.compliance}=compliance`;
    app = await startTestBackstop({ modules: [IntakeModule, PricingModule, MarginModule, SettlementModule, LedgerModule] });
    doc = (await (await fetch(`${app.url}/docs-json`)).json()) as Doc;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    if (savedTokens === undefined) delete process.env.BACKSTOP_TOKENS;
    else process.env.BACKSTOP_TOKENS = savedTokens;
  });

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

  describe('per-command examples', () => {
    type Schemas = Record<string, unknown>;
    const examplesOf = () => doc.paths['/v1/commands'].post.requestBody!.content['application/json'] as unknown as { examples?: Record<string, { value: Record<string, unknown> }> };
    const validator = (schemas: Schemas) => {
      // OpenAPI 3.0 schemas are JSON Schema plus a few keywords (nullable, discriminator, example) ajv ignores or knows.
      const ajv = new Ajv({ allErrors: true, nullable: true, unknownFormats: 'ignore' });
      return (type: string, value: unknown) => {
        const ok = ajv.validate({ components: { schemas }, $ref: `#/components/schemas/${type}Command` }, value);
        return ok ? [] : (ajv.errors ?? []).map((e) => `${e.dataPath} ${e.message}`);
      };
    };

    it('has one example per command type, in the body and on its schema, each valid against that schema', () => {
      const registered = app.runtime.commands.definitionsFor().map((d) => d.type).sort();
      const examples = examplesOf().examples ?? {};
      expect(Object.keys(examples).sort()).toEqual(registered);
      const check = validator(doc.components.schemas);
      for (const type of registered) {
        const value = examples[type].value;
        expect([type, value.type]).toEqual([type, type]);
        expect((doc.components.schemas[`${type}Command`] as { example?: unknown }).example).toEqual(value);
        expect([type, check(type, value)]).toEqual([type, []]);
      }
      // The check can fail: a payload field broken, an unknown type's enum.
      const broken = structuredClone(examples.RegisterParty.value) as { payload: Record<string, unknown> };
      broken.payload.role = 'BANK';
      expect(check('RegisterParty', broken).join('\n')).toMatch(/role/);
    });

    it('every example, sent as it is to the running app, passes the envelope and payload checks (no 400, no 422 for a field rule)', async () => {
      // The rules of the boundary checks (class-validator and the shared validators): a 422 naming one of
      // them would be the example's fault. A business rejection (unknown party, no capital) is not.
      const FIELD_RULES = new Set(['isEntityId', 'isDecimalString', 'isAmount', 'isDecimalInRange', 'isIsoUtc', 'isCurrency', 'isIn', 'isString', 'isNotEmpty', 'maxLength', 'isDefined', 'isInt', 'min', 'max', 'matches', 'isObject', 'isUuid', 'whitelistValidation', 'nestedValidation', 'supportedVersion', 'unknownCommandType', 'exactlyOne']);
      const examples = examplesOf().examples ?? {};
      // Registration first, so later examples meet a known party where they can.
      const order = ['RegisterParty', ...Object.keys(examples).filter((t) => t !== 'RegisterParty').sort()];
      const outcomes: Record<string, number> = {};
      for (const type of order) {
        const res = await fetch(`${app.url}/v1/commands`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.operator}` },
          body: JSON.stringify(examples[type].value),
        });
        const body = (await res.json()) as { violations?: { field: string; rule: string }[] };
        outcomes[type] = res.status;
        expect([type, res.status]).not.toEqual([type, 400]);
        expect([type, res.status]).not.toEqual([type, 403]);
        const fieldViolations = (body.violations ?? []).filter((v) => FIELD_RULES.has(v.rule));
        expect([type, fieldViolations]).toEqual([type, []]);
      }
      // RegisterParty's example is accepted outright.
      expect(outcomes.RegisterParty).toBe(200);
    });
  });
});
