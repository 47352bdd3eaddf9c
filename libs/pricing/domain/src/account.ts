import { amountProblem, assertNever, currencyOf, Decider, DomainEvent, fromMinor, isSupportedCurrency, reject, toMinor } from '@backstop/kernel';

/**
 * The protected party's premium account (stream `pricing-account-<partyId>`): money a desk sets
 * aside for premiums, one balance per currency. Charges are debited here first, with the stream's
 * expected revision, so two coverages of one desk can never spend the same money; a balance never
 * goes below zero.
 */
export type AccountEvent =
  | DomainEvent<'PremiumAccountFunded', { partyId: string; amount: string; currency: string; balance: string; at: string }>
  | DomainEvent<'PremiumAccountWithdrawn', { partyId: string; amount: string; currency: string; balance: string; at: string }>
  | DomainEvent<
      'PremiumAccountDebited',
      { partyId: string; coverageId: string; amount: string; currency: string; balance: string; periodStart: string; periodEnd: string; at: string }
    >;

export type AccountCommand =
  | { readonly type: 'FundPremiumAccount'; readonly partyId: string; readonly amount: string; readonly currency: string; readonly partyKnown: boolean; readonly at: string }
  | { readonly type: 'WithdrawPremiumAccount'; readonly partyId: string; readonly amount: string; readonly currency: string; readonly at: string }
  | {
      readonly type: 'DebitPremium';
      readonly partyId: string;
      readonly coverageId: string;
      readonly amountMinor: bigint;
      readonly currency: string;
      readonly periodStart: string;
      readonly periodEnd: string;
      readonly at: string;
    };

export interface AccountState {
  readonly balances: Readonly<Record<string, bigint>>;
}

export const accountDecider: Decider<AccountCommand, AccountState, AccountEvent> = {
  initialState: { balances: {} },

  decide(command, state) {
    switch (command.type) {
      case 'FundPremiumAccount': {
        if (!command.partyKnown) reject('partyId', 'knownParty', `party ${command.partyId} is not registered`);
        const amount = parseAmount(command.amount, command.currency);
        const balance = balanceOf(state, command.currency) + amount;
        return [{ type: 'PremiumAccountFunded', data: { partyId: command.partyId, ...money(amount, balance, command.currency), at: command.at } }];
      }
      case 'WithdrawPremiumAccount': {
        const amount = parseAmount(command.amount, command.currency);
        const balance = balanceOf(state, command.currency) - amount;
        if (balance < 0n) {
          reject('amount', 'insufficientFunds', `the premium account holds ${fromMinor(balanceOf(state, command.currency), scaleOf(command.currency))} ${command.currency}`);
        }
        return [{ type: 'PremiumAccountWithdrawn', data: { partyId: command.partyId, ...money(amount, balance, command.currency), at: command.at } }];
      }
      case 'DebitPremium': {
        if (command.amountMinor <= 0n) reject('amount', 'positive', 'a premium debit must be greater than 0');
        const held = balanceOf(state, command.currency);
        if (held < command.amountMinor) {
          const scale = scaleOf(command.currency);
          reject('amount', 'insufficientFunds', `premium ${fromMinor(command.amountMinor, scale)} ${command.currency} due; the premium account holds ${fromMinor(held, scale)}`);
        }
        return [
          {
            type: 'PremiumAccountDebited',
            data: {
              partyId: command.partyId,
              coverageId: command.coverageId,
              ...money(command.amountMinor, held - command.amountMinor, command.currency),
              periodStart: command.periodStart,
              periodEnd: command.periodEnd,
              at: command.at,
            },
          },
        ];
      }
      default:
        return assertNever(command, 'premium account command');
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'PremiumAccountFunded':
      case 'PremiumAccountWithdrawn':
      case 'PremiumAccountDebited':
        return { balances: { ...state.balances, [event.data.currency]: toMinor(event.data.balance, scaleOf(event.data.currency)) } };
      default:
        return assertNever(event, 'premium account event');
    }
  },
};

export function balanceOf(state: AccountState, currency: string): bigint {
  return state.balances[currency] ?? 0n;
}

function scaleOf(currency: string): number {
  if (!isSupportedCurrency(currency)) return reject('currency', 'isCurrency', `currency ${currency} is not supported`);
  return currencyOf(currency).scale;
}

function parseAmount(text: string, currency: string): bigint {
  const scale = scaleOf(currency);
  const problem = amountProblem(text, scale);
  if (problem) reject('amount', 'currencyScale', `amount ${problem} (${currency})`);
  const amount = toMinor(text, scale);
  if (amount <= 0n) reject('amount', 'positive', 'amount must be greater than 0');
  return amount;
}

function money(amount: bigint, balance: bigint, currency: string) {
  const scale = scaleOf(currency);
  return { amount: fromMinor(amount, scale), currency, balance: fromMinor(balance, scale) };
}
