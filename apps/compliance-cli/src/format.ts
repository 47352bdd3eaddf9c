import { BalancesReport, DefaultReport, ReportLine } from '@backstop/ledger';

/** Renders reports as aligned text tables, CSV (RFC 4180 quoting) or JSON. */
export type Format = 'table' | 'json' | 'csv';
export const FORMATS: readonly Format[] = ['table', 'json', 'csv'];

export function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[], alignRight: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (alignRight.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function describeScope(scope: BalancesReport['scope']): string {
  const parts = [scope.party !== undefined ? `party ${scope.party}` : '', scope.contract !== undefined ? `contract ${scope.contract}` : ''].filter(Boolean);
  return parts.length ? parts.join(', ') : 'all accounts';
}

export function balancesTable(report: BalancesReport, asOf: string | undefined): string {
  const when = report.recordedAt ? ` (recorded ${report.recordedAt})` : '';
  const head = `Backstop ledger as of position ${report.position}${when}${asOf ? `, asked for ${asOf}` : ''}; ${report.eventsApplied} events; ${describeScope(report.scope)}`;
  const rows = report.balances.map((l) => [l.account, l.class, l.currency, l.balance, l.normal]);
  const body = rows.length ? table(['ACCOUNT', 'CLASS', 'CURRENCY', 'BALANCE', 'SIDE'], rows, new Set([3])) : '(no balances)';
  return `${head}\n\n${body}\n\ndigest ${report.digest}\n`;
}

export function balancesCsv(report: BalancesReport): string {
  const header = 'account,kind,class,normal_side,currency,balance,balance_minor';
  const lines = report.balances.map((l) => [l.account, l.kind, l.class, l.normal, l.currency, l.balance, l.balanceMinor].map(csvCell).join(','));
  return `${[header, ...lines].join('\n')}\n`;
}

function reportLines(title: string, lines: readonly ReportLine[], withPostings = true): string[] {
  if (lines.length === 0) return [];
  const out = [`${title}:`];
  for (const l of lines) {
    out.push(`  ${l.label.padEnd(70)} ${l.amount.padStart(18)}   ${l.eventType} ${l.eventId} @${l.position}`);
    if (withPostings) for (const p of l.postings) out.push(`      Dr ${p.debit} / Cr ${p.credit}  ${p.amount}`);
  }
  return out;
}

export function defaultTable(report: DefaultReport & { position: string }): string {
  const t = report.totals;
  const out = [
    `Default ${report.defaultId}: defaulter ${report.defaulter ?? '?'}, ${report.currency ?? '?'}; replayed to position ${report.position}`,
    ...(report.declared ? [`  ${report.declared.label} (${report.declared.eventType} ${report.declared.eventId} @${report.declared.position}, ${report.declared.at})`] : []),
    '',
    ...reportLines('Margin cover the pool advanced before the default', report.marginCoverBefore),
    ...reportLines('Close-outs', report.closeOuts, false),
    ...reportLines('Losses owed after close-out netting', report.assessed),
    'Waterfall, layer by layer:',
    ...(report.layers.length === 0 ? ['  (no layer has paid yet)'] : []),
    ...report.layers.flatMap((l) => [
      `  ${String(l.step).padStart(2)}. ${l.layer.padEnd(66)} ${l.amount.padStart(18)}   ${l.eventType} ${l.eventId} @${l.position}`,
      ...Object.entries(l.split).map(([who, amount]) => `        ${who}: ${amount}`),
      ...l.postings.map((p) => `      Dr ${p.debit} / Cr ${p.credit}  ${p.amount}`),
    ]),
    ...reportLines('Defaulter money the layers left unused', report.moneyBack),
    ...reportLines('Payouts', report.payouts),
    ...reportLines('Claims left on the estate', report.claims),
    ...reportLines('Recoveries', report.recoveries),
    ...(report.settled ? [`Settled: ${report.settled.eventType} ${report.settled.eventId} @${report.settled.position} (${report.settled.at})`] : ['Not settled yet.']),
    '',
    'Totals:',
    `  loss owed ${t.lossOwed}; paid by the defaulter ${t.paidByDefaulter}, by the pool ${t.paidByPool}; paid out ${t.paidOut}`,
    `  unpaid claims ${t.unpaidClaims}; the pool's claim (recoverable in the ledger) ${t.poolClaim}; recovered ${t.recovered}, passed back ${t.recoveryAllocated}`,
    `Checks: layers took what was paid out: ${t.layersMatchPayouts ? 'yes' : 'NO'}; paid out + unpaid = loss owed: ${t.lossAccountedFor ? 'yes' : 'NO'}`,
  ];
  return `${out.join('\n')}\n`;
}
