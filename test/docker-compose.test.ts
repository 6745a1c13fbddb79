// docker-compose.yml, checked against the code without a Docker engine: every
// image, port, environment variable and command it names exists and agrees
// with what the code and the PgBouncer config expect, wired as
// docs/operations.md describes (jobs through PgBouncer in transaction mode,
// LISTEN, migrations and the CLI on direct connections).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { main } from '../packages/sluice/src/cli/main.js';
import * as sluiceExports from '../packages/sluice/src/index.js';
import { ROOT } from './helpers/install.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const pgbouncerIni = read('examples/compose/pgbouncer.ini');
const iniValue = (key: string) => pgbouncerIni.match(new RegExp(`^${key}\\s*=\\s*(.*)$`, 'm'))?.[1]?.trim();
/** Every TypeScript source below a folder, as one text. */
function sources(dir: string): string {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(join(ROOT, dir, f), 'utf8'))
    .join('\n');
}

/** The container port each service listens on, from its published ports. */
function containerPorts(service: Service): number[] {
  return (service.ports ?? []).map((p) => Number(p.split(':').at(-1)));
}

async function help(args: string[]): Promise<string> {
  const out: string[] = [];
  const code = await main([...args, '--help'], (s) => out.push(s), (s) => out.push(s));
  expect(code, `sluice ${args.join(' ')} --help`).toBe(0);
  return out.join('\n');
}

describe('docker-compose.yml', () => {
  it('has PostgreSQL 17 with a named volume and a health check', () => {
    const pg = services.postgres!;
    expect(pg.image).toBe('postgres:17');
    expect(pg.volumes).toEqual(['pgdata:/var/lib/postgresql/data']);
    expect(Object.keys(compose.volumes)).toContain('pgdata');
    expect(pg.healthcheck!.test.join(' ')).toContain(`pg_isready -U ${pg.environment!.POSTGRES_USER} -d ${pg.environment!.POSTGRES_DB}`);
    expect(containerPorts(pg)).toEqual([5432]);
  });

  it('has PgBouncer in transaction mode, in front of that PostgreSQL, with its credentials', () => {
    const pg = services.postgres!.environment!;
    expect(iniValue('pool_mode')).toBe('transaction');
    expect(pgbouncerIni).toMatch(new RegExp(`^${pg.POSTGRES_DB} = host=postgres port=5432 dbname=${pg.POSTGRES_DB}$`, 'm'));
    expect(read('examples/compose/userlist.txt').trim()).toBe(`"${pg.POSTGRES_USER}" "${pg.POSTGRES_PASSWORD}"`);
    expect(containerPorts(services.pgbouncer!)).toEqual([Number(iniValue('listen_port'))]);
    expect(services.pgbouncer!.depends_on?.postgres?.condition).toBe('service_healthy');
  });

  it('builds from Dockerfiles that exist, on images that run sluice (Node >= engines) and Debian\'s PgBouncer', () => {
    const engines = JSON.parse(read('packages/sluice/package.json')).engines.node as string;
    const minimumNode = Number(engines.match(/\d+/)![0]);
    for (const [name, service] of Object.entries(services)) {
      if (!service.build) continue;
      expect(service.build.context, name).toBe('.');
      const dockerfile = read(service.build.dockerfile);
      for (const [, copied] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
        for (const path of copied!.split(' ')) if (path !== '.') expect(existsSync(join(ROOT, path)), `${service.build.dockerfile}: ${path}`).toBe(true);
      }
      for (const [, image, tag] of dockerfile.matchAll(/^FROM (\S+):(\S+)/gm)) {
        if (image === 'node') expect(Number(tag!.match(/^\d+/)![0])).toBeGreaterThanOrEqual(minimumNode);
        else expect(`${image}:${tag}`).toBe('debian:bookworm-slim');
      }
    }
    expect(read('examples/compose/pgbouncer.Dockerfile')).toContain('CMD ["/usr/sbin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]');
  });

  it('connects each service where docs/operations.md says: jobs through PgBouncer, LISTEN and the CLI direct', () => {
    const pg = services.postgres!.environment!;
    const direct = `postgres://${pg.POSTGRES_USER}:${pg.POSTGRES_PASSWORD}@postgres:5432/${pg.POSTGRES_DB}`;
    const pooled = `postgres://${pg.POSTGRES_USER}:${pg.POSTGRES_PASSWORD}@pgbouncer:${iniValue('listen_port')}/${pg.POSTGRES_DB}`;
    expect(services.migrate!.environment!.DATABASE_URL).toBe(direct);
    expect(services.dashboard!.environment!.DATABASE_URL).toBe(direct);
    expect(services.worker!.environment!.DATABASE_URL).toBe(pooled);
    expect(services.worker!.environment!.SLUICE_LISTEN_URL).toBe(direct);
    expect(read('docs/operations.md')).toContain("poolMode: 'transaction', listenConnectionString: DIRECT_URL");
    expect(read('examples/compose/worker.mjs')).toContain("poolMode: 'transaction',\n  listenConnectionString: process.env.SLUICE_LISTEN_URL,");
    expect(services.worker!.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(services.dashboard!.depends_on?.migrate?.condition).toBe('service_completed_successfully');
  });

  it('runs sluice commands that exist, with flags their help lists, and a worker entry that exists', async () => {
    for (const name of ['migrate', 'dashboard']) {
      const [npx, bin, command, ...args] = services[name]!.command!;
      expect([npx, bin]).toEqual(['npx', 'sluice']);
      const text = await help([command!]);
      for (const flag of args.filter((a) => a.startsWith('--'))) expect(text, `sluice ${command} ${flag}`).toContain(flag);
    }
    const dashboard = services.dashboard!.command!;
    expect(containerPorts(services.dashboard!)).toEqual([Number(dashboard[dashboard.indexOf('--port') + 1])]);
    expect(dashboard[dashboard.indexOf('--host') + 1]).toBe('0.0.0.0');

    expect(services.worker!.command).toEqual(['node', 'worker.mjs']);
    expect(read('examples/compose/Dockerfile')).toMatch(/^COPY examples\/compose\/package\.json examples\/compose\/worker\.mjs \.\/$/m);
    const worker = read('examples/compose/worker.mjs');
    const imported = worker.match(/import \{([^}]+)\} from 'sluice'/)![1]!.split(',').map((s) => s.trim());
    for (const name of imported) expect(sluiceExports, name).toHaveProperty(name);
    expect(containerPorts(services.worker!)).toEqual([Number(services.worker!.environment!.SLUICE_METRICS_PORT)]);
  });

  it('sets only environment variables that the code it runs reads', () => {
    const cli = sources('packages/sluice/src');
    const readsEnv = (source: string, key: string) => source.includes(`process.env.${key}`);
    for (const name of ['migrate', 'dashboard']) {
      for (const key of Object.keys(services[name]!.environment!)) expect(readsEnv(cli, key), `${name}: ${key}`).toBe(true);
    }
    const worker = read('examples/compose/worker.mjs');
    for (const key of Object.keys(services.worker!.environment!)) expect(readsEnv(worker, key) || readsEnv(cli, key), `worker: ${key}`).toBe(true);
    expect(services.dashboard!.environment!.SLUICE_DASHBOARD_TOKEN).toBe('${SLUICE_DASHBOARD_TOKEN:-}');
  });
});
