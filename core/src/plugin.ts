import { ContainerModule } from 'inversify';
import { REGISTRY_TOKENS, type ComponentDefinition, type RegistryName } from './registries';
import type { BackendProvider } from './backend';

/** What a plugin package exports as `plugin`. */
export interface SegkitPlugin {
  readonly name: string;
  readonly version: string;
  /** Binds component definitions to core's registry tokens (multi-injection). */
  readonly module: ContainerModule;
}

export type PluginComponents = {
  readonly [K in Exclude<RegistryName, 'backends'>]?: readonly ComponentDefinition[];
} & { readonly backends?: readonly BackendProvider[] };

/** Wraps a backend provider as a registry entry, so `segkit list` and selection see it like any component. */
export function backendDefinition(provider: BackendProvider): ComponentDefinition<Record<string, never>, BackendProvider> {
  return {
    type: provider.name,
    schema: emptyOptionsSchema(),
    create: () => provider,
    description: `tfjs backend '${provider.name}' (priority ${provider.priority})`,
  };
}

function emptyOptionsSchema(): any {
  // Lazy require keeps this module free of a top-level zod import cycle with validation.
  const { z } = require('zod') as typeof import('zod');
  return z.strictObject({});
}

/**
 * The plain way to write a plugin: list the components per registry; no decorators, no container code.
 * (A plugin may also build its own ContainerModule and bind to REGISTRY_TOKENS directly.)
 */
export function definePlugin(spec: { name: string; version: string; components: PluginComponents }): SegkitPlugin {
  return {
    name: spec.name,
    version: spec.version,
    module: new ContainerModule(({ bind }) => {
      for (const [registry, definitions] of Object.entries(spec.components) as [RegistryName, readonly unknown[]][]) {
        for (const definition of definitions ?? []) {
          const entry = registry === 'backends' ? backendDefinition(definition as BackendProvider) : (definition as ComponentDefinition);
          bind(REGISTRY_TOKENS[registry]).toConstantValue(entry);
        }
      }
    }),
  };
}

export function isSegkitPlugin(value: unknown): value is SegkitPlugin {
  const candidate = value as SegkitPlugin | undefined;
  return !!candidate && typeof candidate.name === 'string' && typeof candidate.version === 'string' && candidate.module instanceof ContainerModule;
}
