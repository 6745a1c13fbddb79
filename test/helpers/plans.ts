// The plans a session's statements ran with, nested ones (inside sluice's
// functions) included, as auto_explain prints them with their actual row
// counts: for tests that the work of a statement stays in proportion to its
// input whatever the planner believes.
import pg from 'pg';

/** Runs fn on the client with auto_explain on, and returns fn's result with every plan it ran. */
export async function withPlans<T>(c: pg.ClientBase, fn: () => Promise<T>): Promise<{ result: T; plans: string[] }> {
  const plans: string[] = [];
  const onNotice = (n: { message?: string }) => {
    if (n.message?.includes('plan:')) plans.push(n.message);
  };
  await c.query(`LOAD 'auto_explain'`);
  await c.query(`SELECT set_config('auto_explain.log_min_duration', '0', false), set_config('auto_explain.log_nested_statements', 'on', false),
    set_config('auto_explain.log_analyze', 'on', false), set_config('auto_explain.log_timing', 'off', false),
    set_config('auto_explain.log_level', 'notice', false), set_config('client_min_messages', 'notice', false)`);
  c.on('notice', onNotice);
  try {
    return { result: await fn(), plans };
  } finally {
    c.off('notice', onNotice);
    await c.query(`SELECT set_config('auto_explain.log_min_duration', '-1', false)`);
  }
}

/** The rows the plans compared in joins and threw away: a nested loop rescanning its input for each row shows here. */
export function rowsRemovedByJoinFilters(plans: string[]): number {
  let total = 0;
  for (const plan of plans) for (const m of plan.matchAll(/Rows Removed by Join Filter: (\d+)/g)) total += Number(m[1]);
  return total;
}
