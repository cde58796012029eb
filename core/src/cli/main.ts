import { Command, CommanderError } from 'commander';
import { isSegkitError } from '../errors';
import { loadConfig } from '../config/loader';
import { createKernel, discoverInstalledPlugins, installedPluginManifests, type Kernel } from '../plugin-system/kernel';
import { REGISTRY_NAMES } from '../plugin-system/registries';
import { describedName } from '../plugin-system/backend';
import { TOKENS, type CliServices } from '../plugin-system/plugin';
import { loadConfigAndKernel } from '../apis/segmentor';
import { collect, quietLogger } from './options';
import { installConvertCommands, installTrainingCommands } from './training-commands';
import { installAnalysisCommands } from './analysis-commands';
import { installPublishCommand } from './publish-command';
import { installExportCommand } from './export-command';

/**
 * Commands that installed plugins contribute: a plugin declares their names in its package.json
 * (`"segkit": { "commands": [...] }`) and binds a CliContribution; it is loaded only when one of its
 * commands is run (or for help).
 */
async function installPluginCommands(program: Command, requested: string | undefined): Promise<void> {
  const wantsHelp = requested === undefined || requested === 'help' || requested.startsWith('-');
  const providers = installedPluginManifests(process.cwd()).filter(
    (manifest) => manifest.commands.length > 0 && (wantsHelp || (requested !== undefined && manifest.commands.includes(requested))),
  );
  if (providers.length === 0) return;
  const kernel = await createKernel({ plugins: providers.map((p) => p.name), backend: 'cpu', logger: quietLogger });
  const services: CliServices = { loadConfigAndKernel };
  for (const contribution of kernel.contributions(TOKENS.cliCommands)) contribution.install(program, services);
}

function buildProgram(): Command {
  const program = new Command('segkit')
    .description('segkit: config-driven semantic segmentation training on TensorFlow.js')
    // Handled in main() (it loads the installed plugins); declared here so that --help lists it.
    .option('-V, --version', 'print the versions of core, the backend and every installed plugin')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
    // --offline reaches every checkpoint download (pretrained, load_from, ...) through the environment.
    .hook('preAction', (_program, action) => {
      if (action.opts().offline) process.env.SEGKIT_OFFLINE = '1';
    });

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
      // JSON has no Infinity or NaN: print them as written rather than as null.
      console.log(JSON.stringify(config, (_key, value) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value), 2));
    });

  installTrainingCommands(program);
  installAnalysisCommands(program);
  installConvertCommands(program);
  installPublishCommand(program);
  installExportCommand(program);
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

/**
 * `segkit --version`: core's version, the backend `auto` picks here, and every installed plugin with its
 * version (what a bug report needs).
 */
async function versionReport(): Promise<string> {
  const plugins = discoverInstalledPlugins(process.cwd());
  const kernel = await createKernel({ plugins, backend: 'auto', logger: quietLogger });
  const core = (require('../../../package.json') as { version: string }).version;
  const loaded = kernel.plugins.filter((p) => p.name !== '@segkit/core');
  const width = Math.max(0, ...loaded.map((p) => p.name.length));
  return [
    `@segkit/core ${core} (node ${process.version}, ${process.platform}-${process.arch})`,
    `backend: ${backendLine(kernel)}`,
    `plugins (${loaded.length}):`,
    ...loaded.map((p) => `  ${p.name.padEnd(width)}  ${p.version}`),
  ].join('\n');
}

/** The active backend, with how it runs here when its provider says (e.g. `native [ISA avx512; 2 thread(s)]`). */
function backendLine(kernel: Kernel): string {
  const provider = kernel.backendProviders().find((p) => p.name === kernel.backend);
  return provider ? describedName(provider) : kernel.backend;
}

/** Runs the CLI; returns the exit code. User errors print one line, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    if (argv[2] === '--version' || argv[2] === '-V') {
      console.log(await versionReport());
      return 0;
    }
    await installPluginCommands(program, argv[2]);
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
