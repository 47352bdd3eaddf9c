/** Exit codes, documented in --help. */
export const EXIT = {
  ok: 0,
  /** verify: a hash link is broken (an event was altered, removed or reordered, or is not readable); any verb: an event cannot be decoded. */
  tampered: 1,
  /** Unknown verb or option, a missing or malformed value. */
  usage: 2,
  /** Nothing to show: no postings for the party / contract, an unknown default. */
  notFound: 3,
  /** The store cannot be read: missing data file, not a database, EventStoreDB unreachable. */
  storeUnavailable: 4,
  /** The ledger cannot book an event (unbalanced, a floored account below zero): names it. */
  ledgerInvariant: 5,
} as const;

/** A failure the CLI reports in one sentence on stderr with its exit code. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usage(message: string): CliError {
  return new CliError(EXIT.usage, `${message} (see --help)`);
}
