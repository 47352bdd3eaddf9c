import { CanActivate, ExecutionContext, ForbiddenException, Inject, Injectable, SetMetadata, UnauthorizedException, applyDecorators, createParamDecorator, UseGuards } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { Principal, Role } from '../auth';
import { Runtime } from '../runtime';
import { RUNTIME } from './tokens';

const ROLES_KEY = 'backstop:roles';

@Injectable()
export class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector, @Inject(RUNTIME) private readonly runtime: Runtime) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [context.getHandler(), context.getClass()]);
    if (!roles || roles.length === 0) return true;
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; principal?: Principal }>();
    const principal = await this.runtime.authenticator.authenticate(request.headers.authorization);
    if (!principal) throw new UnauthorizedException('a bearer token is required (Authorization: Bearer <token>)');
    if (!roles.includes(principal.role)) throw new ForbiddenException(`this endpoint needs the role ${roles.join(' or ')}; the token has ${principal.role}`);
    request.principal = principal;
    return true;
  }
}

/** Only these roles may call the endpoint (bearer token, SPEC section 9). */
export function Roles(...roles: Role[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(ROLES_KEY, roles),
    UseGuards(RolesGuard),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'no or unknown bearer token' }),
    ApiForbiddenResponse({ description: `needs role ${roles.join(' or ')}` }),
  );
}

/** The caller a @Roles guard let in (undefined on an endpoint without @Roles). */
export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext): Principal | undefined =>
  context.switchToHttp().getRequest<{ principal?: Principal }>().principal,
);

/**
 * SPEC section 9: a desk sees only its own contracts. A desk or provider token bound to a party may
 * read what concerns one of `parties`; operator, compliance and unbound tokens read everything.
 * Answers 403 naming the token's party otherwise.
 */
export function assertMayRead(principal: Principal | undefined, parties: readonly (string | undefined)[], what: string): void {
  if (!principal) throw new UnauthorizedException('a bearer token is required (Authorization: Bearer <token>)');
  if (principal.role === 'operator' || principal.role === 'compliance' || !principal.partyId) return;
  if (parties.includes(principal.partyId)) return;
  throw new ForbiddenException(`this ${principal.role} token is bound to ${principal.partyId} and may not read ${what}`);
}
