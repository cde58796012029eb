import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeAddon } from './engine';

interface AddonLocation {
  PACKAGE_ROOT: string;
  addonCandidates(): string[];
  prebuildPath(): string;
}
// Shared with the install script and the pack-time prebuild (plain CommonJS beside them, shipped in `scripts/`).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const location = require('../../scripts/addon-location.js') as AddonLocation;

/**
 * Where the addon is looked for, in order: the prebuilt binary the tarball ships for this platform
 * (`prebuilds/linux-x64/segkit_native.napi.glibc.node`, made by `npm pack`), then node-gyp's source build.
 */
export const DEFAULT_ADDON_PATHS: readonly string[] = location.addonCandidates();

export type AddonLoadResult = { addon: NativeAddon; file: string; reason?: undefined } | { addon?: undefined; file?: undefined; reason: string };

const cache = new Map<string, AddonLoadResult>();

/** Loads the first candidate that loads; never throws: when none does, a one-line reason names why for each. */
export function loadAddon(candidates: readonly string[] = DEFAULT_ADDON_PATHS): AddonLoadResult {
  const key = candidates.join('\0');
  let result = cache.get(key);
  if (!result) {
    result = tryLoad(candidates);
    cache.set(key, result);
  }
  return result;
}

const REBUILD = 'run `npm rebuild @segkit/backend-cpu-native` to build it from source (needs a C++17 compiler, Python 3 and make)';

function tryLoad(candidates: readonly string[]): AddonLoadResult {
  const failures: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) continue;
    try {
      return { addon: require(file) as NativeAddon, file };
    } catch (error) {
      // dlopen's message starts with the file's path, which `describe` already shows
      const message = (error instanceof Error ? error.message.split('\n')[0]! : String(error)).replace(`${file}: `, '');
      failures.push(`${describe(file)}: ${message}`);
    }
  }
  if (failures.length > 0) return { reason: `native addon failed to load (${failures.join('; ')}); ${REBUILD}` };
  const platform = path.basename(path.dirname(location.prebuildPath()));
  return { reason: `native addon not built (no prebuilt binary for ${platform} in the package, no source build: no C++ toolchain at install?); ${REBUILD}` };
}

/** `prebuilt prebuilds/linux-x64/…` or `source build build/Release/…`, relative to the package when inside it. */
function describe(file: string): string {
  const relative = path.relative(location.PACKAGE_ROOT, file);
  const shown = relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
  return `${file.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuilt' : 'source build'} ${shown}`;
}
