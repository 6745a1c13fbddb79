// The code blocks of README.md and docs/*.md, and the TypeScript module a
// document's ```ts blocks become for the compiler: imports hoisted and merged,
// each block in its own scope, the names the blocks assume taken from
// test/doc-examples/context.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CodeBlock {
  doc: string;
  /** Line of the opening fence, 1-based. */
  line: number;
  lang: 'ts' | 'sql';
  code: string;
}

export function docFiles(): string[] {
  return ['README.md', ...readdirSync(`${ROOT}docs`).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
}

export function codeBlocks(doc: string): CodeBlock[] {
  const lines = readFileSync(`${ROOT}${doc}`, 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|typescript|sql)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    blocks.push({ doc, line: start + 1, lang: open[1] === 'sql' ? 'sql' : 'ts', code: body.join('\n') });
  }
  return blocks;
}

const IMPORT = /^import\s+(type\s+)?(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s+'([^']+)';?\s*$/;

/**
 * One module for a document's TypeScript blocks. `contextNames` are imported
 * from the context module unless a block imports the same name itself.
 */
export function moduleFor(blocks: CodeBlock[], contextPath: string, contextNames: string[]): { source: string; lineOf: (n: number) => string } {
  const named = new Map<string, Set<string>>();
  const defaults = new Map<string, string>();
  const bodies: { block: CodeBlock; code: string }[] = [];
  for (const block of blocks) {
    const kept: string[] = [];
    for (const line of block.code.split('\n')) {
      const m = IMPORT.exec(line);
      if (!m) {
        kept.push(line.replace(/^export\s+(const|function|async function|class)\b/, '$1'));
        continue;
      }
      const [, , def, names, from] = m;
      if (def) defaults.set(def, from!);
      for (const n of (names ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!named.has(from!)) named.set(from!, new Set());
        named.get(from!)!.add(n);
      }
      kept.push('');
    }
    bodies.push({ block, code: kept.join('\n') });
  }
  const imported = new Set([...defaults.keys(), ...[...named.values()].flatMap((s) => [...s].map((n) => n.split(/\s+as\s+/).pop()!))]);
  const head = [
    ...[...defaults].map(([name, from]) => `import ${name} from '${from}';`),
    ...[...named].map(([from, names]) => `import { ${[...names].join(', ')} } from '${from}';`),
    `import { ${contextNames.filter((n) => !imported.has(n)).join(', ')} } from '${contextPath}';`,
  ];
  const out = [...head];
  const origin: string[] = head.map(() => '(imports)');
  for (const { block, code } of bodies) {
    out.push('{');
    origin.push(`${block.doc}:${block.line}`);
    code.split('\n').forEach((l, k) => {
      out.push(l);
      origin.push(`${block.doc}:${block.line + 1 + k}`);
    });
    out.push('}');
    origin.push(`${block.doc}:${block.line}`);
  }
  return { source: out.join('\n') + '\n', lineOf: (n) => origin[n - 1] ?? '?' };
}
