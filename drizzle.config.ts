import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './packages/sluice/src/schema.ts',
  out: './drizzle',
  schemaFilter: ['sluice'],
  migrations: { schema: 'sluice', table: '__migrations' },
});
