import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeAddon } from './engine';

/** Where node-gyp leaves the addon, relative to this file (dist/src/). */
export const DEFAULT_ADDON_PATHS: readonly string[] = [
  path.resolve(__dirname, '../../build/Release/segkit_native.node'),
  path.resolve(__dirname, '../../build/Debug/segkit_native.node'),
];

export type AddonLoadResult = { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string };

const cache = new Map<string, AddonLoadResult>();

/** Loads the compiled addon; never throws: a missing or broken build yields a one-line reason. */
export function loadAddon(candidates: readonly string[] = DEFAULT_ADDON_PATHS): AddonLoadResult {
  const key = candidates.join('\0');
  let result = cache.get(key);
  if (!result) {
    result = tryLoad(candidates);
    cache.set(key, result);
  }
  return result;
}

function tryLoad(candidates: readonly string[]): AddonLoadResult {
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) {
    return { reason: 'native addon not built (no C++ toolchain at install?); run `npm rebuild @segkit/backend-cpu-native` to build it' };
  }
  try {
    return { addon: require(found) as NativeAddon };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { reason: `native addon failed to load (${message}); rebuild it with \`npm rebuild @segkit/backend-cpu-native\`` };
  }
}
