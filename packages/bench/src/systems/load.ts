// Loads one adapter by key, so a child imports only the library it runs.
import type { SystemAdapter, SystemKey } from './types.js';

export async function loadSystem(key: SystemKey): Promise<SystemAdapter> {
  switch (key) {
    case 'sluice':
      return (await import('./sluice.js')).sluiceAdapter;
    case 'graphile':
      return (await import('./graphile.js')).graphileAdapter;
    case 'pgboss':
      return (await import('./pgboss.js')).pgbossAdapter;
    case 'bare':
      return (await import('./bare.js')).bareAdapter;
  }
}
