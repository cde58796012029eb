import type { Command } from 'commander';
import { SegkitError } from '../errors';
import type { Logger } from '../plugin-system/registries';

/** Collects repeated option values (`--cfg-options a=1 b=2` or repeated flags). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A parser for an integer option that names the option in its error. */
export function integerOption(name: string): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed)) throw new SegkitError(`${name}: expected an integer, got '${value}'`);
    return parsed;
  };
}

export interface CommonOptions {
  cfgOptions: string[];
  backend?: string;
}

/** `--cfg-options` and `--backend`, which every command that loads a config takes. */
export function withCommon(command: Command): Command {
  return command
    .option('--cfg-options <key=value...>', 'override config values (dotted paths, JSON values)', collect, [])
    .option('--backend <name>', "tfjs backend: 'auto' or a backend name (overrides the config's backend)")
    .option('--offline', 'never download checkpoints: model-zoo names and URLs must be in $SEGKIT_HOME/checkpoints already');
}

/** Prints warnings only (for commands whose output is a listing). */
export const quietLogger: Logger = { info: () => undefined, warn: (m) => console.warn(`warning: ${m}`) };
