#!/usr/bin/env node
require('../dist/src/cli/main.js').main(process.argv).then((code) => {
  process.exitCode = code;
  // Exit even if something (a stuck worker thread, an open handle) would keep Node alive; a normal exit comes first.
  setTimeout(() => process.exit(code), 1000).unref();
});
