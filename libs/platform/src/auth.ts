import { randomBytes } from 'node:crypto';

/** SPEC section 9: bearer tokens with roles. A desk token is bound to its party. */
export type Role = 'desk' | 'provider' | 'compliance' | 'operator';
export const ROLES: readonly Role[] = ['desk', 'provider', 'compliance', 'operator'];

export interface Principal {
  readonly token: string;
  readonly role: Role;
  /** desk / provider tokens: the party they act for. */
  readonly partyId?: string;
}

/**
 * BACKSTOP_TOKENS="tokenA=compliance,tokenB=desk:desk1,tokenC=operator". Without it, one random
 * token per role is generated at start-up and logged, so a newcomer can call every endpoint.
 */
export function tokensFromEnv(env: NodeJS.ProcessEnv = process.env): { principals: Principal[]; generated: boolean } {
  const spec = env.BACKSTOP_TOKENS?.trim();
  if (!spec) {
    return { principals: ROLES.map((role) => ({ token: `dev-${role}-${randomBytes(12).toString('hex')}`, role })), generated: true };
  }
  const principals = spec.split(',').map((entry) => {
    const [token, roleAndParty] = entry.split('=');
    const [role, partyId] = (roleAndParty ?? '').split(':');
    if (!token || token.length < 16) throw new Error(`BACKSTOP_TOKENS: each token must have at least 16 characters (entry "${entry.slice(0, 8)}…")`);
    if (!ROLES.includes(role as Role)) throw new Error(`BACKSTOP_TOKENS: role must be one of ${ROLES.join(', ')} (entry for token ${token.slice(0, 4)}…)`);
    return { token, role: role as Role, ...(partyId ? { partyId } : {}) };
  });
  return { principals, generated: false };
}

export class TokenRegistry {
  private readonly byToken: Map<string, Principal>;
  constructor(readonly principals: readonly Principal[]) {
    this.byToken = new Map(principals.map((p) => [p.token, p]));
  }
  authenticate(authorization: string | undefined): Principal | undefined {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    return match ? this.byToken.get(match[1]) : undefined;
  }
  tokenFor(role: Role): string | undefined {
    return this.principals.find((p) => p.role === role)?.token;
  }
}
