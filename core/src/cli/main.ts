import * as path from 'path';
import { Command, CommanderError } from 'commander';
import { SegkitError, isSegkitError } from '../errors';
import { loadConfig, type LoadedConfig } from '../config';
import { createKernel, discoverInstalledPlugins, type Kernel } from '../kernel';
import { REGISTRY_NAMES } from '../registries';
import type { Logger } from '../registries';

/** Collects repeated option values (`--cfg-options a=1 b=2` or repeated flags). */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const quietLogger: Logger = { info: () => undefined, warn: (m) => console.warn(`warning: ${m}`) };

/** Loads a config file and the kernel with the plugins it lists (resolved from the config's folder). */
export async function loadConfigAndKernel(
  file: string,
  options: { cfgOptions?: string[]; backend?: string; logger?: Logger } = {},
): Promise<{ config: LoadedConfig; kernel: Kernel }> {
  const config = await loadConfig(file, options.cfgOptions ?? []);
  const plugins = config.plugins ?? [];
  if (!Array.isArray(plugins) || plugins.some((p) => typeof p !== 'string')) {
    throw new SegkitError(`plugins: expected a list of package names or file paths, got ${JSON.stringify(plugins)}`);
  }
  const kernel = await createKernel({
    plugins: plugins as string[],
    backend: options.backend ?? (config.backend as string | undefined) ?? 'auto',
    configDir: path.dirname(path.resolve(file)),
    logger: options.logger,
  });
  return { config, kernel };
}

/** Extra commands contributed by other modules of core (train, test, info, ...), registered at start-up. */
export type CommandInstaller = (program: Command) => void;
const installers: CommandInstaller[] = [];
export function addCommands(installer: CommandInstaller): void {
  installers.push(installer);
}

function buildProgram(): Command {
  const program = new Command('segkit')
    .description('segkit: config-driven semantic segmentation training on TensorFlow.js')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  program
    .command('list')
    .description('print every registered component type by registry, with the plugin and version that provides it')
    .option('--plugins <names...>', 'load only these plugins (default: every installed @segkit/* plugin)')
    .option('--config <file>', 'load only the plugins a config lists')
    .action(async (options: { plugins?: string[]; config?: string }) => {
      const kernel = options.config
        ? (await loadConfigAndKernel(options.config, { logger: quietLogger, backend: 'cpu' })).kernel
        : await createKernel({ plugins: options.plugins ?? discoverInstalledPlugins(process.cwd()), backend: 'cpu', logger: quietLogger });
      console.log(formatRegistryListing(kernel));
    });

  program
    .command('print-config <config>')
    .description('print the merged config (bases and --cfg-options applied)')
    .option('--cfg-options <key=value...>', 'override config values (dotted paths, JSON values)', collect, [])
    .action(async (file: string, options: { cfgOptions: string[] }) => {
      const config = await loadConfig(file, options.cfgOptions);
      console.log(JSON.stringify(config, null, 2));
    });

  for (const install of installers) install(program);
  return program;
}

/** `segkit list` output: registries in DESIGN order, types with their plugin@version. */
export function formatRegistryListing(kernel: Kernel): string {
  const lines: string[] = [];
  for (const name of REGISTRY_NAMES) {
    const entries = kernel.registries[name].describe();
    lines.push(`${name} (${entries.length})`);
    const width = Math.max(0, ...entries.map((e) => e.type.length));
    for (const entry of entries) lines.push(`  ${entry.type.padEnd(width)}  ${entry.plugin}@${entry.version}${entry.description ? `  ${entry.description}` : ''}`);
  }
  return lines.join('\n');
}

/** Runs the CLI; returns the exit code. User errors print one line, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  await import('./commands');
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (isSegkitError(error)) {
      console.error(`segkit: ${error.message}`);
      return 1;
    }
    const err = error as Error;
    console.error(`segkit: internal error: ${err.message}`);
    if (process.env.SEGKIT_DEBUG) console.error(err.stack);
    else console.error('(set SEGKIT_DEBUG=1 for the stack trace)');
    return 70;
  }
}
