import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Controller, Get, Module } from '@nestjs/common';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { Principal } from './auth';
import { jwtConfigFromEnv, JwtConfigError, JwtVerifier } from './jwt';
import { CurrentPrincipal, Roles } from './nest/roles.guard';
import { commandEnvelope, startTestBackstop, TestBackstop } from './testing';

@Controller('v1/test-whoami')
class WhoAmIController {
  @Get()
  @Roles('desk', 'compliance')
  whoami(@CurrentPrincipal() principal: Principal): { role: string; partyId?: string } {
    return { role: principal.role, ...(principal.partyId ? { partyId: principal.partyId } : {}) };
  }
}

@Module({ controllers: [WhoAmIController] })
class WhoAmIModule {}

const ISSUER = 'https://idp.example.test/realms/backstop';
const AUDIENCE = 'backstop-api';
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/**
 * Issue 12 item 6: JWT bearer tokens from an identity provider, keys made here, the JWKS served on
 * 127.0.0.1 by this test. Issuer, audience, expiry, signature and algorithm are enforced; role and
 * party come from claims; static tokens keep working beside them.
 */
describe('JWT bearer tokens (jose, JWKS or configured key)', () => {
  let idp: KeyPair;
  let stranger: KeyPair;
  let jwks: Server;
  let jwksUrl: string;
  let app: TestBackstop;
  const saved = { ...process.env };

  const sign = (claims: Record<string, unknown>, options: { key?: KeyPair; issuer?: string; audience?: string; expiresIn?: string; kid?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'k1' })
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setSubject('alice@desk1')
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign((options.key ?? idp).privateKey);

  beforeAll(async () => {
    idp = await generateKeyPair('RS256');
    stranger = await generateKeyPair('RS256');
    const publicJwk = { ...(await exportJWK(idp.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    Object.assign(process.env, { BACKSTOP_JWT_JWKS_URL: jwksUrl, BACKSTOP_JWT_ISSUER: ISSUER, BACKSTOP_JWT_AUDIENCE: AUDIENCE, BACKSTOP_TOKENS: 'static-compliance-token-0001=compliance' });
    app = await startTestBackstop({ modules: [WhoAmIModule] });
  });
  afterAll(async () => {
    process.env = saved;
    await app?.close();
    await new Promise((r) => jwks.close(r));
  });

  const whoami = (token: string) => app.get<{ role?: string; partyId?: string; message?: string }>('/v1/test-whoami', { token });

  it('takes role and party from the claims of a token the JWKS verifies', async () => {
    const desk = await whoami(await sign({ backstop_role: 'desk', backstop_party: 'desk1' }));
    expect(desk).toEqual({ status: 200, body: { role: 'desk', partyId: 'desk1' } });
    expect((await whoami(await sign({ backstop_role: ['compliance'] }))).body).toEqual({ role: 'compliance' });
    // The role check still applies to JWT principals.
    expect((await whoami(await sign({ backstop_role: 'provider' }))).status).toBe(403);
  });

  it('answers 401 for a wrong issuer, a wrong audience, an expired token, a foreign key, alg none or a missing role', async () => {
    const refused = [
      await sign({ backstop_role: 'desk' }, { issuer: 'https://evil.example.test' }),
      await sign({ backstop_role: 'desk' }, { audience: 'another-api' }),
      await sign({ backstop_role: 'desk' }, { expiresIn: '-2m' }),
      await sign({ backstop_role: 'desk' }, { key: stranger }),
      await sign({ backstop_role: 'desk' }, { key: stranger, kid: 'unknown' }),
      await sign({ backstop_role: 'root' }),
      await sign({ backstop_role: ['desk', 'operator'] }),
      await sign({}),
      `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'x', backstop_role: 'operator' })).toString('base64url')}.`,
    ];
    for (const token of refused) expect((await whoami(token)).status).toBe(401);
  });

  it('keeps the static tokens beside the JWTs, and generates no dev tokens when an identity provider is set', async () => {
    expect((await whoami('static-compliance-token-0001')).body).toEqual({ role: 'compliance' });
    expect(app.runtime.authGenerated).toBe(false);
    expect(app.runtime.auth.principals.map((p) => p.role)).toEqual(['compliance']);
    // A command through the same authenticator: a JWT operator is let in (and the unknown type rejected with 422, not 401).
    const res = await fetch(`${app.url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await sign({ backstop_role: 'operator' })}` },
      body: JSON.stringify(commandEnvelope('NoSuchCommand', { x: 1 })),
    });
    expect([res.status, await res.text()]).toEqual([422, expect.stringContaining('knownCommand')]);
  });

  it('verifies with a configured public key (PEM or JWK) as well', async () => {
    const base = { BACKSTOP_JWT_ISSUER: ISSUER, BACKSTOP_JWT_AUDIENCE: AUDIENCE };
    for (const publicKey of [await exportSPKI(idp.publicKey), JSON.stringify({ ...(await exportJWK(idp.publicKey)), alg: 'RS256' })]) {
      const verifier = new JwtVerifier(jwtConfigFromEnv({ ...base, BACKSTOP_JWT_PUBLIC_KEY: publicKey })!);
      expect(await verifier.verify(await sign({ backstop_role: 'operator' }))).toEqual({ principal: { token: `jwt:${ISSUER}:alice@desk1`, role: 'operator' } });
      expect(await verifier.verify(await sign({ backstop_role: 'operator' }, { key: stranger }))).toEqual({ refused: expect.stringMatching(/signature/) });
    }
  });

  it('refuses an incomplete or unsafe configuration at start, naming the variable', () => {
    expect(jwtConfigFromEnv({})).toBeUndefined();
    const bad: [NodeJS.ProcessEnv, RegExp][] = [
      [{ BACKSTOP_JWT_JWKS_URL: jwksUrl, BACKSTOP_JWT_AUDIENCE: AUDIENCE }, /BACKSTOP_JWT_ISSUER is required/],
      [{ BACKSTOP_JWT_JWKS_URL: jwksUrl, BACKSTOP_JWT_ISSUER: ISSUER }, /BACKSTOP_JWT_AUDIENCE is required/],
      [{ BACKSTOP_JWT_JWKS_URL: 'http://idp.example.test/jwks', BACKSTOP_JWT_ISSUER: ISSUER, BACKSTOP_JWT_AUDIENCE: AUDIENCE }, /must use https/],
      [{ BACKSTOP_JWT_JWKS_URL: jwksUrl, BACKSTOP_JWT_ISSUER: ISSUER, BACKSTOP_JWT_AUDIENCE: AUDIENCE, BACKSTOP_JWT_ALGORITHMS: 'HS256' }, /BACKSTOP_JWT_ALGORITHMS must list asymmetric/],
      [{ BACKSTOP_JWT_JWKS_URL: jwksUrl, BACKSTOP_JWT_PUBLIC_KEY: 'x', BACKSTOP_JWT_ISSUER: ISSUER, BACKSTOP_JWT_AUDIENCE: AUDIENCE }, /not both/],
    ];
    for (const [env, message] of bad) {
      expect(() => jwtConfigFromEnv(env)).toThrow(JwtConfigError);
      expect(() => jwtConfigFromEnv(env)).toThrow(message);
    }
  });
});
