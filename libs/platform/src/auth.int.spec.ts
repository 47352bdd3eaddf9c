import { Controller, Get, Module } from '@nestjs/common';
import { tokensFromEnv } from './auth';
import { Roles } from './nest/roles.guard';
import { startTestBackstop, TestBackstop } from './testing';

@Controller('v1/test-secret')
class SecretController {
  @Get()
  @Roles('compliance')
  secret(): { ok: boolean } {
    return { ok: true };
  }
}

@Module({ controllers: [SecretController] })
class SecretModule {}

describe('bearer tokens with roles', () => {
  let app: TestBackstop;
  beforeAll(async () => {
    app = await startTestBackstop({ modules: [SecretModule] });
  });
  afterAll(() => app.close());

  it('lets the role in, and answers 401 without a token and 403 with another role', async () => {
    expect((await app.get('/v1/test-secret', { role: 'compliance' })).status).toBe(200);
    const none = await app.get<{ message: string }>('/v1/test-secret', { token: null });
    expect(none.status).toBe(401);
    expect(none.body.message).toMatch(/bearer token is required/);
    const desk = await app.get<{ message: string }>('/v1/test-secret', { role: 'desk' });
    expect(desk.status).toBe(403);
    expect(desk.body.message).toMatch(/needs the role compliance; the token has desk/);
    expect((await app.get('/v1/test-secret', { token: 'made-up-token-000000' })).status).toBe(401);
  });

  it('reads BACKSTOP_TOKENS and refuses short tokens or unknown roles', () => {
    const { principals, generated } = tokensFromEnv({ BACKSTOP_TOKENS: 'c0mpl1ance-7f3a9e21b4=compliance,d3sk-9b2c71e05aa4=desk:desk1' });
    expect(generated).toBe(false);
    expect(principals).toEqual([
      { token: 'c0mpl1ance-7f3a9e21b4', role: 'compliance' },
      { token: 'd3sk-9b2c71e05aa4', role: 'desk', partyId: 'desk1' },
    ]);
    expect(() => tokensFromEnv({ BACKSTOP_TOKENS: 'short=compliance' })).toThrow(/at least 16 characters/);
    expect(() => tokensFromEnv({ BACKSTOP_TOKENS: 'a8f3c91e0d7b2645=admin' })).toThrow(/role must be one of/);
    expect(tokensFromEnv({}).generated).toBe(true);
  });
});
