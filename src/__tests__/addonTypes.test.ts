/**
 * The addon ships its TypeScript declarations: a client that loads bigmaac.node by path
 * from the Python package's _bundled folder type-checks against bigmaac.node.d.ts there,
 * and a wrong call is a type error (the types are real, not `any`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import * as ts from 'typescript';

import { BUNDLE } from './helpers';

const SHIPPED = join(dirname(BUNDLE), 'bigmaac.node.d.ts');

const client = (body: string) => `
import addon = require(${JSON.stringify(SHIPPED.replace(/\.d\.ts$/, ''))});
${body}
`;

/** Type errors per client, all checked in one program (creating one is the slow part). */
function typeErrors(clients: Record<string, string>): Record<string, string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bigmaac-types-'));
  try {
    const files = Object.entries(clients).map(([name, body]) => {
      const file = join(dir, `${name}.ts`);
      writeFileSync(file, client(body));
      return file;
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      skipLibCheck: true, // the clients' use of the declarations is still checked
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      types: ['node'],
      typeRoots: [join(__dirname, '..', '..', 'node_modules', '@types')]
    });
    const errors: Record<string, string[]> = {};
    for (const [name] of Object.entries(clients)) {
      const file = program.getSourceFile(join(dir, `${name}.ts`));
      errors[name] = ts
        .getPreEmitDiagnostics(program, file)
        .map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    }
    return errors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the shipped addon declarations', () => {
  const errors = typeErrors({
    good: `
const dir: string = addon.segmentDir();
const pids: number[] = addon.listProcesses(dir).map(p => p.pid);
const details = addon.readProcess(pids[0]);
const largest: number = details.allocations[0].size;
const job = addon.pageout(pids[0], p => console.log(p.bytesDone, p.bytesTotal));
job.promise.then(r => console.log(r.bytesWritten, largest));
job.cancel();
addon.residency(pids[0]).then(r => console.log(r.resident, r.dirty));
const version: number = addon.segmentVersion;
`,
    wrong: `addon.readProcess('1234');\naddon.pageOut(1);`
  });

  it('type-check a client that lists, reads, pages out and measures', () => {
    expect(errors.good).toEqual([]);
  });

  it('reject a call the addon does not take', () => {
    expect(errors.wrong).toHaveLength(2);
    expect(errors.wrong[0]).toMatch(/'string' is not assignable to parameter of type 'number'/);
    expect(errors.wrong[1]).toMatch(/Property 'pageOut' does not exist/);
  });
});
