import { ContainerModule, type ServiceIdentifier } from 'inversify';
import type { Command } from 'commander';
import { z } from 'zod';
import type { ComponentDefinition, ComponentOf, Logger, RegistryName } from './registries';
import type { BackendProvider } from './backend';
import type { EventBus } from '../bus';
import type { Kernel } from './kernel';
import type { LauncherContribution } from '../distributed/communicator';

/** What a plugin package exports as `plugin`. */
export interface SegkitPlugin {
  readonly name: string;
  readonly version: string;
  /** Binds the plugin's contributions (component records, CLI commands) to core's tokens. */
  readonly module: ContainerModule;
}

/** One component as the container holds it: the registry it belongs to, its definition and who provided it. */
export interface ComponentRecord {
  readonly registry: RegistryName;
  readonly definition: ComponentDefinition;
  readonly plugin: { readonly name: string; readonly version: string };
}

/** What a command-line contribution gets besides commander's program: the one way to build a kernel from a config. */
export interface CliServices {
  /** Loads a config file (with `--cfg-options`) and a kernel with the plugins it lists. */
  loadConfigAndKernel(file: string, options?: { cfgOptions?: string[]; backend?: string; logger?: Logger }): Promise<{ config: Record<string, unknown>; kernel: Kernel }>;
}

/** A plugin's `segkit` sub-commands (e.g. @segkit/datasets's `synth` and `convert`). */
export interface CliContribution {
  /** The top-level command names it adds; the package declares the same names in package.json (`segkit.commands`). */
  readonly commands: readonly string[];
  install(program: Command, services: CliServices): void;
}

/**
 * The kernel's inversify tokens: the container is segkit's composition root. Plugins bind component
 * records and contributions (multi-bindings, as Theia's ContributionProvider); core binds its services.
 */
export const TOKENS = {
  /** Multi-binding: every component of every loaded plugin. */
  components: Symbol.for('segkit.components') as ServiceIdentifier<ComponentRecord>,
  /** Multi-binding: command-line contributions. */
  cliCommands: Symbol.for('segkit.cliCommands') as ServiceIdentifier<CliContribution>,
  /** Multi-binding: launchers for data-parallel training (`--launcher mpi|slurm`). */
  launchers: Symbol.for('segkit.launchers') as ServiceIdentifier<LauncherContribution>,
  bus: Symbol.for('segkit.bus') as ServiceIdentifier<EventBus>,
  logger: Symbol.for('segkit.logger') as ServiceIdentifier<Logger>,
} as const;

/** Components per registry, each checked against the registry's contract (instance and parent types). */
export type PluginComponents = {
  readonly [R in Exclude<RegistryName, 'backends'>]?: readonly ComponentOf<R>[];
} & { readonly backends?: readonly BackendProvider[] };

/** Wraps a backend provider as a registry entry, so `segkit list` and selection see it like any component. */
export function backendDefinition(provider: BackendProvider): ComponentOf<'backends', Record<string, never>> {
  return {
    type: provider.name,
    schema: z.strictObject({}),
    create: () => provider,
    description: `tfjs backend '${provider.name}' (priority ${provider.priority})`,
  };
}

/**
 * The plain way to write a plugin: list the components per registry (and any CLI commands); no
 * decorators, no container code.
 */
export function definePlugin(spec: {
  name: string;
  version: string;
  components: PluginComponents;
  cli?: readonly CliContribution[];
  launchers?: readonly LauncherContribution[];
}): SegkitPlugin {
  const identity = { name: spec.name, version: spec.version };
  return {
    name: spec.name,
    version: spec.version,
    module: new ContainerModule(({ bind }) => {
      for (const [registry, definitions] of Object.entries(spec.components) as [RegistryName, readonly unknown[]][]) {
        for (const definition of definitions ?? []) {
          const entry = registry === 'backends' ? backendDefinition(definition as BackendProvider) : (definition as ComponentDefinition);
          bind(TOKENS.components).toConstantValue({ registry, definition: entry, plugin: identity });
        }
      }
      for (const contribution of spec.cli ?? []) bind(TOKENS.cliCommands).toConstantValue(contribution);
      for (const contribution of spec.launchers ?? []) bind(TOKENS.launchers).toConstantValue(contribution);
    }),
  };
}

export function isSegkitPlugin(value: unknown): value is SegkitPlugin {
  const candidate = value as SegkitPlugin | undefined;
  return !!candidate && typeof candidate.name === 'string' && typeof candidate.version === 'string' && candidate.module instanceof ContainerModule;
}
