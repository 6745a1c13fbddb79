// A statement sluice gave up waiting for (node-postgres's query_timeout):
// its connection may be silent, and answers nothing more, not even a ROLLBACK.

/** What node-postgres rejects a statement with once its query_timeout passes. */
export const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

export function isGivenUp(err: unknown): boolean {
  return err instanceof Error && err.message === QUERY_TIMEOUT_MESSAGE;
}
