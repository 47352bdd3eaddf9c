import { fundingLongGainMinor, payerAndReceiver, settlementLongGainMinor } from './cash-flows';

const perp = { kind: 'PERPETUAL' as const, size: '2', entryPrice: '60000' };

describe('contract cash flows (exact decimals)', () => {
  it('funding: rate × size × mark, the long pays when the rate is positive', () => {
    // 0.0001 × 2 × 61000 = 12.2
    expect(fundingLongGainMinor(perp, '0.0001', '61000', 6)).toBe(-12_200_000n);
    expect(fundingLongGainMinor(perp, '-0.0001', '61000', 6)).toBe(12_200_000n);
    expect(fundingLongGainMinor(perp, '0', '61000', 6)).toBe(0n);
    expect(() => fundingLongGainMinor({ ...perp, kind: 'FUTURE' }, '0.0001', '1', 6)).toThrow(/perpetuals/);
  });

  it('rounds a flow toward zero, so the payer never pays a fraction it does not owe', () => {
    // 0.000000333333 × 1 × 1 = 0.000000333333 → 0 in 6 digits; −(…) → 0 as well
    expect(fundingLongGainMinor({ ...perp, size: '1' }, '0.000000333333', '1', 6)).toBe(0n);
    expect(settlementLongGainMinor({ ...perp, size: '0.333333333333' }, 'CLOSE', '60000.01', 2)).toBe(0n);
    expect(settlementLongGainMinor({ ...perp, size: '0.333333333333' }, 'CLOSE', '59999.99', 2)).toBe(0n);
    expect(settlementLongGainMinor({ ...perp, size: '3' }, 'CLOSE', '59999.999999', 2)).toBe(0n);
  });

  it('settles a linear contract at the price: (price − entry) × size to the long', () => {
    expect(settlementLongGainMinor(perp, 'CLOSE', '61000.5', 6)).toBe(2_001_000_000n);
    expect(settlementLongGainMinor({ ...perp, kind: 'FUTURE' }, 'EXPIRY', '59000', 2)).toBe(-200_000n);
  });

  it('settles an option at expiry on intrinsic value less the premium, and on close at the agreed option value', () => {
    const call = { kind: 'OPTION' as const, size: '2', entryPrice: '3500', optionType: 'CALL' as const, strike: '65000' };
    expect(settlementLongGainMinor(call, 'EXPIRY', '70000', 6)).toBe(3_000_000_000n); // (5000 − 3500) × 2
    expect(settlementLongGainMinor(call, 'EXPIRY', '60000', 6)).toBe(-7_000_000_000n); // out of the money: premium lost
    const put = { ...call, optionType: 'PUT' as const };
    expect(settlementLongGainMinor(put, 'EXPIRY', '60000', 6)).toBe(3_000_000_000n);
    expect(settlementLongGainMinor(call, 'CLOSE', '4000', 6)).toBe(1_000_000_000n);
    expect(() => settlementLongGainMinor({ ...call, strike: undefined }, 'EXPIRY', '1', 6)).toThrow(/strike/);
  });

  it('names payer and receiver from the sign; a zero flow is booked long → short', () => {
    expect(payerAndReceiver(5n, 'L', 'S')).toEqual({ payer: 'S', receiver: 'L', amountMinor: 5n });
    expect(payerAndReceiver(-5n, 'L', 'S')).toEqual({ payer: 'L', receiver: 'S', amountMinor: 5n });
    expect(payerAndReceiver(0n, 'L', 'S')).toEqual({ payer: 'L', receiver: 'S', amountMinor: 0n });
  });
});
