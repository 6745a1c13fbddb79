// A real pool whose connections note what they send, for tests that count
// statements of a kind (a follower's duties, claims).
import pg from 'pg';
import { SluiceClient } from '../../packages/sluice/src/connection.js';

/** A real pool whose connections note the name (or text) of every statement they send. */
export function recordingPool(url: string): { pool: pg.Pool; sent: string[] } {
  const sent: string[] = [];
  class RecordingClient extends SluiceClient {
    override query(...args: unknown[]): never {
      const config = args[0] as string | { name?: string; text?: string };
      sent.push(typeof config === 'string' ? config : (config.name ?? config.text ?? ''));
      return (super.query as (...a: unknown[]) => never)(...args);
    }
  }
  const pool = new pg.Pool({ connectionString: url, max: 4, Client: RecordingClient });
  pool.on('error', () => {});
  return { pool, sent };
}
