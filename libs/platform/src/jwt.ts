import { createLocalJWKSet, createRemoteJWKSet, importJWK, importSPKI, JWK, JWTPayload, JWTVerifyGetKey, jwtVerify, KeyLike } from 'jose';
import { Principal, Role, ROLES, TokenRegistry } from './auth';

/**
 * Enterprise bearer tokens (SPEC section 9) beside the static tokens: JWTs from the company's
 * identity provider, verified against its JWKS (key rotation handled by jose's remote key set) or a
 * configured public key, with issuer and audience checked and the role and party taken from claims.
 *
 * BACKSTOP_JWT_JWKS_URL     https URL of the issuer's JWKS (or http on loopback), or
 * BACKSTOP_JWT_PUBLIC_KEY   a PEM SPKI public key or a public JWK (JSON)
 * BACKSTOP_JWT_ISSUER       required: the `iss` every token must carry
 * BACKSTOP_JWT_AUDIENCE     required: the `aud` every token must carry (comma-separated: any of them)
 * BACKSTOP_JWT_ALGORITHMS   default RS256,PS256,ES256,EdDSA (asymmetric only: no shared secrets, never `none`)
 * BACKSTOP_JWT_ROLE_CLAIM   default `backstop_role`: a string or an array holding exactly one of desk, provider, compliance, operator
 * BACKSTOP_JWT_PARTY_CLAIM  default `backstop_party`: the party a desk or provider token acts for
 */
export interface JwtConfig {
  readonly keySource: { readonly jwksUrl: URL } | { readonly publicKey: string };
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly roleClaim: string;
  readonly partyClaim: string;
  readonly clockToleranceSeconds: number;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export class JwtConfigError extends Error {}

/** The JWT settings from the environment, validated; undefined when neither a JWKS URL nor a key is set. */
export function jwtConfigFromEnv(env: NodeJS.ProcessEnv = process.env): JwtConfig | undefined {
  const jwksUrl = env.BACKSTOP_JWT_JWKS_URL?.trim();
  const publicKey = env.BACKSTOP_JWT_PUBLIC_KEY?.trim();
  if (!jwksUrl && !publicKey) return undefined;
  if (jwksUrl && publicKey) throw new JwtConfigError('set BACKSTOP_JWT_JWKS_URL or BACKSTOP_JWT_PUBLIC_KEY, not both');
  let keySource: JwtConfig['keySource'];
  if (jwksUrl) {
    let url: URL;
    try {
      url = new URL(jwksUrl);
    } catch {
      throw new JwtConfigError(`BACKSTOP_JWT_JWKS_URL must be a URL, got "${jwksUrl}"`);
    }
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      throw new JwtConfigError(`BACKSTOP_JWT_JWKS_URL must use https (http only on loopback), got "${jwksUrl}"`);
    }
    keySource = { jwksUrl: url };
  } else {
    keySource = { publicKey: publicKey! };
  }
  const issuer = env.BACKSTOP_JWT_ISSUER?.trim();
  if (!issuer) throw new JwtConfigError('BACKSTOP_JWT_ISSUER is required with JWT authentication (the iss of your identity provider)');
  const audience = (env.BACKSTOP_JWT_AUDIENCE ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  if (audience.length === 0) throw new JwtConfigError('BACKSTOP_JWT_AUDIENCE is required with JWT authentication (the aud issued for Backstop)');
  const algorithms = (env.BACKSTOP_JWT_ALGORITHMS ?? 'RS256,PS256,ES256,EdDSA').split(',').map((a) => a.trim()).filter(Boolean);
  const refused = algorithms.filter((a) => !ASYMMETRIC.includes(a));
  if (algorithms.length === 0 || refused.length > 0) {
    throw new JwtConfigError(`BACKSTOP_JWT_ALGORITHMS must list asymmetric algorithms (${ASYMMETRIC.join(', ')}), got "${refused.join(',') || '(none)'}"`);
  }
  return {
    keySource,
    issuer,
    audience,
    algorithms,
    roleClaim: env.BACKSTOP_JWT_ROLE_CLAIM?.trim() || 'backstop_role',
    partyClaim: env.BACKSTOP_JWT_PARTY_CLAIM?.trim() || 'backstop_party',
    clockToleranceSeconds: 30,
  };
}

/** Why a JWT was refused (logged, never sent to the caller beyond 401). */
export type JwtOutcome = { readonly principal: Principal } | { readonly refused: string };

export class JwtVerifier {
  private keyPromise?: Promise<JWTVerifyGetKey | KeyLike | Uint8Array>;

  constructor(readonly config: JwtConfig) {}

  async verify(token: string): Promise<JwtOutcome> {
    let payload: JWTPayload;
    try {
      const key = await this.key();
      const options = { issuer: this.config.issuer, audience: [...this.config.audience], algorithms: [...this.config.algorithms], clockTolerance: this.config.clockToleranceSeconds };
      ({ payload } =
        typeof key === 'function' ? await jwtVerify(token, key as JWTVerifyGetKey, options) : await jwtVerify(token, key as KeyLike, options));
    } catch (err) {
      return { refused: `${(err as { code?: string }).code ?? 'ERR_JWT'}: ${(err as Error).message}` };
    }
    const claimed = payload[this.config.roleClaim];
    const roles = (Array.isArray(claimed) ? claimed : [claimed]).filter((r): r is Role => typeof r === 'string' && (ROLES as readonly string[]).includes(r));
    if (roles.length !== 1) return { refused: `claim ${this.config.roleClaim} must hold exactly one of ${ROLES.join(', ')}; got ${JSON.stringify(claimed ?? null)}` };
    const party = payload[this.config.partyClaim];
    if (party !== undefined && (typeof party !== 'string' || party.length === 0)) return { refused: `claim ${this.config.partyClaim} must be a party id string` };
    if (!payload.sub) return { refused: 'claim sub is required (recorded as the actor)' };
    // The actor fingerprint (actorOf) hashes `token`: the issuer and subject, stable across token renewals.
    return { principal: { token: `jwt:${payload.iss}:${payload.sub}`, role: roles[0], ...(typeof party === 'string' ? { partyId: party } : {}) } };
  }

  private key(): Promise<JWTVerifyGetKey | KeyLike | Uint8Array> {
    this.keyPromise ??= (async () => {
      const source = this.config.keySource;
      if ('jwksUrl' in source) return createRemoteJWKSet(source.jwksUrl, { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
      if (source.publicKey.startsWith('{')) {
        const jwk = JSON.parse(source.publicKey) as JWK & { keys?: JWK[] };
        if (jwk.keys) return createLocalJWKSet(jwk as { keys: JWK[] });
        if (jwk.d) throw new JwtConfigError('BACKSTOP_JWT_PUBLIC_KEY holds a private key: give the public key only');
        return importJWK(jwk, jwk.alg ?? this.config.algorithms[0]) as Promise<KeyLike | Uint8Array>;
      }
      return importSPKI(source.publicKey, this.config.algorithms[0]);
    })();
    // A bad key fails every request the same way; let a later call retry the import instead of caching the failure.
    this.keyPromise.catch(() => (this.keyPromise = undefined));
    return this.keyPromise;
  }
}

/**
 * Bearer authentication for HTTP: a static token (BACKSTOP_TOKENS, or the generated dev tokens of the
 * embedded default) first, then a JWT when one is configured. Undefined means 401.
 */
export class BearerAuthenticator {
  constructor(
    readonly tokens: TokenRegistry,
    readonly jwt?: JwtVerifier,
    private readonly onRefused?: (reason: string) => void,
  ) {}

  async authenticate(authorization: string | undefined): Promise<Principal | undefined> {
    const known = this.tokens.authenticate(authorization);
    if (known || !this.jwt) return known;
    const match = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/i.exec(authorization ?? '');
    if (!match) return undefined;
    const outcome = await this.jwt.verify(match[1]);
    if ('principal' in outcome) return outcome.principal;
    this.onRefused?.(outcome.refused);
    return undefined;
  }
}
