/**
 * Bearer tokens that look like placeholders are refused at start-up: a manifest or .env copied
 * without replacing "change-me" would otherwise open every /v1 endpoint to anyone who has read the
 * example. A real token is random: long, many distinct characters, no dictionary placeholder.
 */

/** Words that mark a value someone forgot to replace (compared case-insensitively, separators ignored). */
const PLACEHOLDER_WORDS = ['changeme', 'changeit', 'placeholder', 'replace', 'example', 'yourtoken', 'yoursecret', 'insert', 'fixme', 'dummy', 'sample', 'redacted', 'notset'];

/** Fewer distinct characters than this cannot be a random token ("aaaa…", "abab…", "1234…"). */
export const MIN_DISTINCT_CHARACTERS = 8;

/** Why `token` looks like a placeholder, or undefined when it does not. */
export function placeholderReason(token: string): string | undefined {
  const squashed = token.toLowerCase().replace(/[-_.\s]/g, '');
  const word = PLACEHOLDER_WORDS.find((w) => squashed.includes(w));
  if (word) return `contains the placeholder word "${word}"`;
  if (/x{4,}/i.test(token)) return 'contains "xxxx"';
  if (/[<>{}$]/.test(token)) return 'contains template characters (<, >, {, }, $)';
  const distinct = new Set(token).size;
  if (distinct < MIN_DISTINCT_CHARACTERS) return `has only ${distinct} distinct characters (at least ${MIN_DISTINCT_CHARACTERS})`;
  const longestRun = Math.max(...(token.match(/(.)\1*/g) ?? ['']).map((run) => run.length));
  if (longestRun * 2 >= token.length) return `repeats one character ${longestRun} times in a row (half the token or more)`;
  return undefined;
}
