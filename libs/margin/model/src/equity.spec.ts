import { checkMargin, checkMarginMinor, partyEquity, pnlToMinor, requirementToMinor } from './equity';

describe('equity and margin calls', () => {
  it('adds the positions\' MTM to the collateral', () => {
    expect(partyEquity(1_000, [250, -400])).toBe(850);
    expect(partyEquity(1_000, [])).toBe(1_000);
  });

  it('calls back to INITIAL margin once equity falls below maintenance', () => {
    expect(checkMargin(450, 1_000, 500)).toEqual({
      equity: 450, initialRequirement: 1_000, maintenanceRequirement: 500, shortfall: 50, callAmount: 550,
    });
  });

  it('makes no call at or above maintenance, even below initial', () => {
    expect(checkMargin(500, 1_000, 500).callAmount).toBe(0);
    expect(checkMargin(700, 1_000, 500)).toMatchObject({ shortfall: 0, callAmount: 0 });
  });

  it('rejects a maintenance above initial', () => {
    expect(() => checkMargin(0, 100, 200)).toThrow(/exceeds initial/);
    expect(() => checkMargin(0, Number.NaN, 0)).toThrow(/finite/);
  });

  it('rounds in the pool\'s favour: requirements up, MTM down', () => {
    expect(requirementToMinor(1.0000001, 6)).toBe(1_000_001n);
    expect(pnlToMinor(0.0000019, 6)).toBe(1n);
    expect(pnlToMinor(-0.0000001, 6)).toBe(-1n);
  });

  it('decides on ledger integers, so a sub-minor gap still calls', () => {
    // Float equity 500.0000001 ≥ maintenance 500.0000001 would not call; in minor units
    // equity floors to 500.000000 and maintenance ceils to 500.000001, so it does.
    const check = checkMarginMinor({
      collateralMinor: 0n, pnl: 500.0000001, initialRequirement: 1_000.0000001, maintenanceRequirement: 500.0000001, scale: 6,
    });
    expect(check).toEqual({
      equityMinor: 500_000_000n,
      initialMinor: 1_000_000_001n,
      maintenanceMinor: 500_000_001n,
      shortfallMinor: 1n,
      callAmountMinor: 500_000_001n,
    });
    const healthy = checkMarginMinor({ collateralMinor: 600_000_000n, pnl: -10, initialRequirement: 1_000, maintenanceRequirement: 500, scale: 6 });
    expect(healthy).toMatchObject({ equityMinor: 590_000_000n, shortfallMinor: 0n, callAmountMinor: 0n });
  });
});
