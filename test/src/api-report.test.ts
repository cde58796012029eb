import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';

// Every change of @segkit/core's public surface must be deliberate: it shows as a diff of
// core/api-report.md, which `npm run api-report` rewrites after the change.
describe('@segkit/core API report', function () {
  this.timeout(120000);
  it('core/api-report.md matches the compiled entry points (run `npm run api-report` after a deliberate change)', () => {
    const { report, REPORT } = require(path.resolve(__dirname, '..', '..', 'scripts', 'api-report.js')) as { report(): string; REPORT: string };
    const committed = fs.readFileSync(REPORT, 'utf8');
    const current = report();
    if (current !== committed) {
      const a = committed.split('\n');
      const b = current.split('\n');
      const line = a.findIndex((text, i) => text !== b[i]);
      expect.fail(`core/api-report.md is out of date at line ${line + 1}:\n  committed: ${a[line]}\n  now:       ${b[line]}\nReview the API change, then run \`npm run api-report\`.`);
    }
  });
});
