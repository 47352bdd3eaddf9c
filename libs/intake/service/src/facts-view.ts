import type { MarkRecordedData } from '@backstop/contracts';
import { MarginStanding } from '@backstop/intake';
import { TOPICS } from '@backstop/messaging';
import { KeptFact, ReadModelOptions } from '@backstop/platform';

/**
 * What contract-intake keeps of margin-monitor's facts (its read model, SPEC section 1): each
 * party's margin standing (open calls, default) and the accepted marks, which a withdrawal is
 * checked against (mark-to-market).
 */
export const INTAKE_FACTS: Omit<ReadModelOptions, 'service'> = {
  name: 'intake-facts',
  topics: [TOPICS.marginEvents],
  types: ['MarginCallIssued', 'MarginCallCured', 'MarginCallMissed', 'DefaultTriggered', 'MarkRecorded'],
};

type CallStatus = 'ISSUED' | 'CURED' | 'MISSED' | 'DEFAULTED';

export interface KnownStanding {
  readonly calls: Readonly<Record<string, { readonly callId: string; readonly status: CallStatus; readonly amount: string; readonly currency: string }>>;
  readonly defaulted: boolean;
}

export const NO_STANDING: KnownStanding = { calls: {}, defaulted: false };

export function evolveStanding(state: KnownStanding, fact: KeptFact): KnownStanding {
  const d = fact.data as { callId?: string; amount?: string; currency?: string };
  const setStatus = (status: CallStatus): KnownStanding => {
    const call = d.callId ? state.calls[d.callId] : undefined;
    return call ? { ...state, calls: { ...state.calls, [call.callId]: { ...call, status } } } : state;
  };
  switch (fact.type) {
    case 'MarginCallIssued':
      return d.callId ? { ...state, calls: { ...state.calls, [d.callId]: { callId: d.callId, status: 'ISSUED', amount: String(d.amount), currency: String(d.currency) } } } : state;
    case 'MarginCallCured':
      return setStatus('CURED');
    case 'MarginCallMissed':
      return setStatus('MISSED');
    case 'DefaultTriggered':
      return { ...setStatus('DEFAULTED'), defaulted: true };
    default:
      return state;
  }
}

/** A call still to be cured: issued, or missed (and covered by the backstop), as margin-monitor counts it. */
export function standingOf(state: KnownStanding): MarginStanding {
  const openCalls = Object.values(state.calls).filter((c) => c.status === 'ISSUED' || c.status === 'MISSED');
  return { defaulted: state.defaulted, openCalls };
}

export interface KnownMark {
  readonly price?: string;
  readonly atMs?: number;
  /** The last real (positive) vol: a zero vol is the feed's "unknown". */
  readonly volAnnual?: string;
}

export function evolveMark(state: KnownMark, fact: KeptFact): KnownMark {
  if (fact.type !== 'MarkRecorded') return state;
  const d = fact.data as unknown as MarkRecordedData;
  if (d.sane !== true) return state;
  const vol = Number(d.volAnnual);
  const realVol = d.volAnnual !== undefined && Number.isFinite(vol) && vol > 0;
  return { price: d.price, atMs: Date.parse(d.at), volAnnual: realVol ? d.volAnnual : state.volAnnual };
}
