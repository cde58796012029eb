// How the browser test and bench/web-inference.js start Chromium: Debian's package (nothing downloaded),
// headless, a throw-away profile, no network beyond 127.0.0.1, WebGL through SwiftShader (no --disable-gpu,
// which would turn WebGL off).
const CHROMIUM = process.env.SEGKIT_CHROMIUM ?? '/usr/bin/chromium';
const INSTALL_HINT = "install Debian's chromium: `apt-get install -y chromium` (CI runs .ci/apt-chromium.sh), or point SEGKIT_CHROMIUM at a Chromium binary";
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

module.exports = { CHROMIUM, CHROMIUM_ARGS, INSTALL_HINT };
