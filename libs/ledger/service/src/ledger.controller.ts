import { BadRequestException, Controller, Get, HttpException, HttpStatus, Inject, NotFoundException, Param, Query, ServiceUnavailableException } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import {
  accountHistory,
  AS_OF_FORMAT,
  balancesReport,
  emptyScopeReason,
  explainDefault,
  HISTORY_LIMIT_MAX,
  LedgerInvariantViolation,
  LedgerProjection,
  parseAsOf,
  replay,
  Scope,
  Until,
} from '@backstop/ledger';
import { Roles, Runtime, RUNTIME } from '@backstop/platform';
import { AccountHistoryDto, BalancesDto, DigestDto, LedgerStatusDto } from './dto';
import { LiveLedger, storeReader } from './live-ledger';

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const REPLAYS_IN_FLIGHT_MAX = 4;

/** Compliance reads of the ledger (SPEC §7): balances now or as of any instant, an account's history, the digest. */
@ApiTags('ledger')
@Roles('compliance')
@Controller('v1/ledger')
export class LedgerController {
  private replaysInFlight = 0;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(LiveLedger) private readonly live: LiveLedger,
  ) {}

  @Get('balances')
  @ApiOperation({
    summary: 'Balances of every account, one party or one contract, now or as of a position or an instant',
    description:
      'Without asOf: the live projection. With asOf: replayed from the start of the store up to that global position, or up to the last event recorded at or before that instant (ISO-8601 UTC). The digest makes "replay equals live" one comparison.',
  })
  @ApiQuery({ name: 'asOf', required: false, description: AS_OF_FORMAT })
  @ApiQuery({ name: 'party', required: false, description: "A party id: its accounts (holder, provider, creditor or defaulter) and its coverages' premiums" })
  @ApiQuery({ name: 'contract', required: false, description: "A contract id: its collateral accounts and its coverages' premiums" })
  @ApiOkResponse({ type: BalancesDto })
  @ApiBadRequestResponse({ description: 'asOf, party or contract malformed' })
  @ApiNotFoundResponse({ description: 'no postings for that party / contract (says whether it is registered)' })
  @ApiServiceUnavailableResponse({ description: 'the live ledger halted on an event it cannot book (named), or too many replays' })
  async balances(@Query('asOf') asOf?: string, @Query('party') party?: string, @Query('contract') contract?: string): Promise<BalancesDto> {
    const scope = scopeOf(party, contract);
    const until = untilOf('asOf', asOf);
    const projection = until ? await this.replayTo(until) : this.liveProjection();
    const empty = scope.party !== undefined || scope.contract !== undefined ? emptyScopeReason(projection, scope) : undefined;
    if (empty) throw new NotFoundException(empty);
    return { source: until ? 'replay' : 'live', ...(asOf ? { asOf } : {}), ...balancesReport(projection, scope) } as BalancesDto;
  }

  @Get('digest')
  @ApiOperation({ summary: 'The digest of the balance sheet (all, or one party / contract) now or at a position / instant' })
  @ApiQuery({ name: 'position', required: false, description: 'A global position: replay up to it' })
  @ApiQuery({ name: 'asOf', required: false, description: AS_OF_FORMAT })
  @ApiQuery({ name: 'party', required: false })
  @ApiQuery({ name: 'contract', required: false })
  @ApiOkResponse({ type: DigestDto })
  @ApiBadRequestResponse({ description: 'position / asOf malformed, or both given' })
  async digest(@Query('position') position?: string, @Query('asOf') asOf?: string, @Query('party') party?: string, @Query('contract') contract?: string): Promise<DigestDto> {
    if (position !== undefined && asOf !== undefined) throw new BadRequestException('give position or asOf, not both');
    if (position !== undefined && !/^\d{1,19}$/.test(position)) throw new BadRequestException(`position must be a global position: an integer such as 1234 (got "${position}")`);
    const scope = scopeOf(party, contract);
    const until = position !== undefined ? ({ kind: 'position', position: BigInt(position) } as const) : untilOf('asOf', asOf);
    const projection = until ? await this.replayTo(until) : this.liveProjection();
    return {
      source: until ? 'replay' : 'live',
      position: projection.position.toString(),
      ...(projection.recordedAt ? { recordedAt: projection.recordedAt } : {}),
      scope,
      digest: projection.digest(scope),
    };
  }

  @Get('accounts/:account')
  @ApiOperation({ summary: "One account's postings with the events behind them and the running balance (replayed from the store)" })
  @ApiParam({ name: 'account', example: 'collateral:cp1:c1' })
  @ApiQuery({ name: 'asOf', required: false, description: AS_OF_FORMAT })
  @ApiQuery({ name: 'after', required: false, description: 'Only postings after this global position (paging: pass nextAfter)' })
  @ApiQuery({ name: 'limit', required: false, description: `Postings per page, 1..${HISTORY_LIMIT_MAX} (default 100)` })
  @ApiOkResponse({ type: AccountHistoryDto })
  @ApiNotFoundResponse({ description: 'no postings to that account (up to asOf)' })
  async account(@Param('account') account: string, @Query('asOf') asOf?: string, @Query('after') after?: string, @Query('limit') limit?: string): Promise<AccountHistoryDto> {
    if (account.length > 300) throw new BadRequestException('account name too long (at most 300 characters)');
    if (after !== undefined && !/^\d{1,19}$/.test(after)) throw new BadRequestException(`after must be a global position: an integer such as 1234 (got "${after}")`);
    const pageLimit = limit === undefined ? undefined : Number(limit);
    if (pageLimit !== undefined && !(Number.isInteger(pageLimit) && pageLimit >= 1 && pageLimit <= HISTORY_LIMIT_MAX)) {
      throw new BadRequestException(`limit must be an integer from 1 to ${HISTORY_LIMIT_MAX} (got "${limit}")`);
    }
    const until = untilOf('asOf', asOf);
    const history = await this.bounded(() =>
      accountHistory(storeReader(this.runtime.store), account, { until, after: after === undefined ? undefined : BigInt(after), limit: pageLimit }),
    );
    if (!history) throw new NotFoundException(`no postings to account ${account}${asOf ? ` as of ${asOf}` : ''} (names: docs/ledger.md, e.g. collateral:<party>:<contract>)`);
    return history as AccountHistoryDto;
  }

  @Get('defaults/:defaultId')
  @ApiOperation({ summary: 'The waterfall of one default, layer by layer, with the event ids behind each line and the totals' })
  @ApiQuery({ name: 'asOf', required: false, description: AS_OF_FORMAT })
  @ApiNotFoundResponse({ description: 'no DefaultDeclared with that id (up to asOf)' })
  async explain(@Param('defaultId') defaultId: string, @Query('asOf') asOf?: string): Promise<unknown> {
    if (!ID.test(defaultId)) throw new BadRequestException('defaultId must be an id of 1-64 letters, digits, _ . : -');
    const report = await this.bounded(() => explainDefault(storeReader(this.runtime.store), defaultId, { until: untilOf('asOf', asOf) }));
    if (!report) throw new NotFoundException(`default ${defaultId} was never declared${asOf ? ` as of ${asOf}` : ''}`);
    return report;
  }

  @Get('status')
  @ApiOperation({ summary: 'Where the live ledger is: position, digest, and whether it halted on an event (named)' })
  @ApiOkResponse({ type: LedgerStatusDto })
  status(): LedgerStatusDto {
    const p = this.live.current();
    const halted = this.live.halted();
    const readError = this.live.lastReadError();
    return {
      position: p.position.toString(),
      ...(p.recordedAt ? { recordedAt: p.recordedAt } : {}),
      eventsApplied: p.eventsApplied,
      postingsMade: p.postingsMade,
      digest: p.digest(),
      ...(halted ? { halted } : {}),
      ...(readError ? { readError } : {}),
      unmappedTypes: p.unmappedTypes,
    };
  }

  private liveProjection(): LedgerProjection {
    const halted = this.live.halted();
    if (halted) {
      throw new ServiceUnavailableException(
        `the live ledger halted at ${halted.eventType} ${halted.eventId} (position ${halted.position}, stream ${halted.stream}): ${halted.reason}; replays up to position ${BigInt(halted.position) - 1n} still work (asOf)`,
      );
    }
    return this.live.current();
  }

  private replayTo(until: Until): Promise<LedgerProjection> {
    return this.bounded(() => replay(storeReader(this.runtime.store), { until }));
  }

  /** At most REPLAYS_IN_FLIGHT_MAX replays at once; a refused event is named, never hidden. */
  private async bounded<T>(work: () => Promise<T>): Promise<T> {
    if (this.replaysInFlight >= REPLAYS_IN_FLIGHT_MAX) {
      throw new ServiceUnavailableException(`${REPLAYS_IN_FLIGHT_MAX} ledger replays are already running; retry shortly`);
    }
    this.replaysInFlight += 1;
    try {
      return await work();
    } catch (err) {
      if (err instanceof LedgerInvariantViolation) {
        throw new HttpException({ statusCode: 500, message: `the ledger cannot book ${err.detail}`, event: { ...err.event, position: err.event.position.toString() } }, HttpStatus.INTERNAL_SERVER_ERROR);
      }
      throw err;
    } finally {
      this.replaysInFlight -= 1;
    }
  }
}

function scopeOf(party: string | undefined, contract: string | undefined): Scope {
  if (party !== undefined && !ID.test(party)) throw new BadRequestException('party must be an id of 1-64 letters, digits, _ . : - (starting with a letter or digit)');
  if (contract !== undefined && !ID.test(contract)) throw new BadRequestException('contract must be an id of 1-64 letters, digits, _ . : - (starting with a letter or digit)');
  return { ...(party !== undefined ? { party } : {}), ...(contract !== undefined ? { contract } : {}) };
}

function untilOf(name: string, text: string | undefined): Until | undefined {
  if (text === undefined) return undefined;
  const until = parseAsOf(text);
  if (!until) throw new BadRequestException(`${name} "${text}" must be ${AS_OF_FORMAT}`);
  return until;
}
