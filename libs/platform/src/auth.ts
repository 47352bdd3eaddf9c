import { createHash, randomBytes } from 'node:crypto';
import { placeholderReason } from './token-policy';

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
    const placeholder = placeholderReason(token);
    if (placeholder) {
      throw new Error(`BACKSTOP_TOKENS: the ${role} token ${token.slice(0, 4)}… looks like a placeholder (it ${placeholder}); set long random tokens, e.g. \`openssl rand -hex 24\``);
    }
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


/**
 * Who sent a command, as recorded in its events' metadata (audit): role, bound party and a short
 * fingerprint of the token (sha-256), so an auditor can tell tokens apart without learning them.
 */
export function actorOf(principal: Principal): string {
  const fingerprint = createHash('sha256').update(principal.token).digest('hex').slice(0, 12);
  return `${principal.role}${principal.partyId ? `:${principal.partyId}` : ''}#${fingerprint}`;
}

/**
 * Who may send a command over HTTP (SPEC section 9). The operator may send every command; a desk
 * or provider token bound to a party may only send commands that act for that party.
 */
export interface CommandAuthorization<P> {
  /** Roles besides the operator that may send it. */
  readonly roles: readonly Exclude<Role, 'operator'>[];
  /** The parties the command acts for (it is enough to be one of them); omitted: any party. */
  readonly actsFor?: (payload: P) => readonly (string | undefined)[] | Promise<readonly (string | undefined)[]>;
}

/** One line for docs (AsyncAPI, OpenAPI): who may send a command over HTTP. */
export function describeAuthorization(auth: CommandAuthorization<never>): string {
  if (auth.roles.length === 0) return 'Over HTTP: operator only.';
  return `Over HTTP: operator or ${auth.roles.join(' or ')}${auth.actsFor ? ' (a token bound to a party: for that party only)' : ''}.`;
}

/** For commands only the operator may send (onboarding, credit updates, manual default, recoveries). */
export const OPERATOR_ONLY: { readonly roles: readonly [] } = { roles: [] };
