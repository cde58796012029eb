#!/usr/bin/env node
const path = require('node:path');
const fs = require('node:fs');

const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
// In a source checkout before the first build (the root `prepare` builds at `npm ci`), one line instead of MODULE_NOT_FOUND.
if (!fs.existsSync(entry)) {
  console.error(`segkit: @segkit/core is not built (${path.relative(process.cwd(), entry) || entry} is missing): run \`npm run build\` at the repository root`);
  process.exit(1);
}
require(entry).main(process.argv).then((code) => {
  process.exitCode = code;
  // Exit even if something (a stuck worker thread, an open handle) would keep Node alive; a normal exit comes first.
  setTimeout(() => process.exit(code), 1000).unref();
});
