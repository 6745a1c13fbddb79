import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'silent' },
  },
});
