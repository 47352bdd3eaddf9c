/** Injection token of the Runtime (store, bus, clock, telemetry, command pipeline). */
export const RUNTIME = Symbol('backstop.runtime');
