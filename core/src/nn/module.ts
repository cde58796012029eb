import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import { ensureGradientsRegistered } from './gradients';
import type { OnnxExportContext, OnnxValue } from '../export/onnx/types';

/** One parameter as seen by a traversal: its full PyTorch-style name, local name and owning module. */
export interface ParameterEntry {
  /** `backbone.layer1.0.conv1.weight` */
  readonly name: string;
  /** `weight` */
  readonly localName: string;
  /** Full name of the owning module (`backbone.layer1.0.conv1`; '' at the root). */
  readonly modulePath: string;
  readonly module: Module;
  readonly variable: tf.Variable;
}

/**
 * A PyTorch-like module: named parameters (trainable tf.Variables), buffers (non-trainable state such
 * as BatchNorm running statistics) and child modules, each kept in registration order, so that
 * `namedParameters()` lists a module's own parameters first, then each child's — PyTorch's order,
 * which MMSegmentation's `custom_keys` and checkpoints rely on.
 */
export class Module {
  training = true;
  private readonly parameterMap = new Map<string, tf.Variable>();
  private readonly bufferMap = new Map<string, tf.Variable>();
  private readonly childMap = new Map<string, Module>();

  constructor() {
    // Building a model is the first step of training it: make sure tfjs can differentiate.
    ensureGradientsRegistered();
  }

  /** Registers a trainable parameter; the module owns (and disposes) the variable. */
  registerParameter(name: string, initial: tf.Tensor): tf.Variable {
    this.assertFreeName(name);
    const variable = initial instanceof tf.Variable ? initial : tf.variable(initial, true);
    if (variable !== initial) initial.dispose();
    this.parameterMap.set(name, variable);
    return variable;
  }

  /** Registers persistent state that is saved in `stateDict` but never trained. */
  registerBuffer(name: string, initial: tf.Tensor): tf.Variable {
    this.assertFreeName(name);
    const variable = tf.variable(initial, false);
    initial.dispose();
    this.bufferMap.set(name, variable);
    return variable;
  }

  registerModule<M extends Module>(name: string, child: M): M {
    this.assertFreeName(name);
    this.childMap.set(name, child);
    return child;
  }

  private assertFreeName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`invalid module attribute name '${name}'`);
    if (this.parameterMap.has(name) || this.bufferMap.has(name) || this.childMap.has(name)) {
      throw new Error(`${this.constructor.name}: attribute '${name}' is already registered`);
    }
  }

  /** The module's computation; subclasses override it with their own signature. */
  forward(..._inputs: unknown[]): unknown {
    throw new Error(`${this.constructor.name} does not implement forward()`);
  }

  /**
   * Optional: this module's ONNX nodes, for `segkit export --format onnx`. It mirrors `forward` with graph
   * values (NCHW) for tensors: emits its own computation through `ctx` and exports its children with
   * `ctx.call(child, ...)`. A module without it is reported by path and class when a model using it is exported.
   */
  exportOnnx?(ctx: OnnxExportContext, ...inputs: unknown[]): unknown;

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.childMap.entries()];
  }

  child<M extends Module = Module>(name: string): M {
    const found = this.childMap.get(name);
    if (!found) throw new Error(`${this.constructor.name} has no child module '${name}'`);
    return found as M;
  }

  /** This module and every descendant, depth first, with their full names ('' for this module). */
  namedModules(prefix = ''): [string, Module][] {
    const result: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.childMap) result.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return result;
  }

  /** Own parameters (without recursion), in registration order. */
  ownParameters(): [string, tf.Variable][] {
    return [...this.parameterMap.entries()];
  }

  ownBuffers(): [string, tf.Variable][] {
    return [...this.bufferMap.entries()];
  }

  /** Every parameter with its owning module: own parameters first, then each child's (PyTorch's order). */
  parameterEntries(prefix = ''): ParameterEntry[] {
    const entries: ParameterEntry[] = [];
    for (const [modulePath, module] of this.namedModules(prefix)) {
      for (const [localName, variable] of module.parameterMap) {
        entries.push({ name: modulePath ? `${modulePath}.${localName}` : localName, localName, modulePath, module, variable });
      }
    }
    return entries;
  }

  namedParameters(prefix = ''): [string, tf.Variable][] {
    return this.parameterEntries(prefix).map((entry) => [entry.name, entry.variable]);
  }

  parameters(): tf.Variable[] {
    return this.parameterEntries().map((entry) => entry.variable);
  }

  /** Parameters that the optimizer updates (`requires_grad`). */
  trainableParameters(): [string, tf.Variable][] {
    return this.namedParameters().filter(([, variable]) => variable.trainable);
  }

  namedBuffers(prefix = ''): [string, tf.Variable][] {
    const result: [string, tf.Variable][] = [];
    for (const [modulePath, module] of this.namedModules(prefix)) {
      for (const [name, variable] of module.bufferMap) result.push([modulePath ? `${modulePath}.${name}` : name, variable]);
    }
    return result;
  }

  /** Freezes or unfreezes every parameter of this module (`requires_grad_`). */
  requiresGrad(flag: boolean): this {
    for (const variable of this.parameters()) variable.trainable = flag;
    return this;
  }

  /** Sets train/eval mode recursively through each child's own `train`, so overrides (e.g. `norm_eval`) apply. */
  train(mode = true): this {
    this.training = mode;
    for (const [, child] of this.childMap) child.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Parameters and buffers by full name, in traversal order (own parameters, own buffers, then children). */
  stateDict(): Map<string, tf.Variable> {
    const state = new Map<string, tf.Variable>();
    for (const [modulePath, module] of this.namedModules()) {
      const qualify = (name: string) => (modulePath ? `${modulePath}.${name}` : name);
      for (const [name, variable] of module.parameterMap) state.set(qualify(name), variable);
      for (const [name, variable] of module.bufferMap) state.set(qualify(name), variable);
    }
    return state;
  }

  /**
   * Copies tensors into the parameters and buffers of the same name. With `strict`, missing and
   * unexpected keys are errors; a shape mismatch is always an error. Returns what did not match.
   */
  loadStateDict(
    state: Map<string, tf.Tensor> | Record<string, tf.Tensor>,
    options: { strict?: boolean; source?: string } = {},
  ): { missingKeys: string[]; unexpectedKeys: string[] } {
    const strict = options.strict ?? true;
    const incoming = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((key) => !incoming.has(key));
    const unexpectedKeys = [...incoming.keys()].filter((key) => !own.has(key));
    const where = options.source ? `${options.source}: ` : '';
    const mismatched: string[] = [];
    for (const [key, variable] of own) {
      const tensor = incoming.get(key);
      if (tensor && !tf.util.arraysEqual(tensor.shape, variable.shape)) {
        mismatched.push(`${key} (checkpoint [${tensor.shape.join(',')}], model [${variable.shape.join(',')}])`);
      }
    }
    const problems: string[] = [];
    if (mismatched.length) problems.push(`shape mismatch for ${mismatched.join(', ')}`);
    if (strict && missingKeys.length) problems.push(`missing keys: ${listKeys(missingKeys)}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected keys: ${listKeys(unexpectedKeys)}`);
    if (problems.length) throw new SegkitError(`${where}cannot load state dict: ${problems.join('; ')}`);
    for (const [key, variable] of own) {
      const tensor = incoming.get(key);
      // Loading a model's own state dict must be a no-op (tfjs cannot assign a variable to itself).
      if (tensor && tensor !== variable) variable.assign(tensor.dtype === variable.dtype ? tensor : tf.cast(tensor, variable.dtype));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Number of scalars in all parameters. */
  numParameters(trainableOnly = false): number {
    return this.parameters()
      .filter((variable) => !trainableOnly || variable.trainable)
      .reduce((sum, variable) => sum + variable.size, 0);
  }

  /** Frees every parameter and buffer of this module and its descendants. */
  dispose(): void {
    for (const [, module] of this.namedModules()) {
      for (const variable of module.parameterMap.values()) variable.dispose();
      for (const variable of module.bufferMap.values()) variable.dispose();
    }
  }
}

function listKeys(keys: string[]): string {
  return keys.length <= 10 ? keys.join(', ') : `${keys.slice(0, 10).join(', ')} and ${keys.length - 10} more`;
}

/** Children named '0', '1', ...; forward chains them. */
export class Sequential extends Module {
  constructor(...layers: Module[]) {
    super();
    layers.forEach((layer, index) => this.registerModule(String(index), layer));
  }

  get length(): number {
    return this.namedChildren().length;
  }

  at<M extends Module = Module>(index: number): M {
    return this.child<M>(String(index));
  }

  override forward(input: tf.Tensor): tf.Tensor {
    return this.namedChildren().reduce<tf.Tensor>((x, [, layer]) => layer.forward(x) as tf.Tensor, input);
  }

  override exportOnnx(ctx: OnnxExportContext, input: OnnxValue): OnnxValue {
    return this.namedChildren().reduce<OnnxValue>((x, [, layer]) => ctx.call(layer, x), input);
  }
}

/** Children named '0', '1', ... without a forward of its own (PyTorch's ModuleList). */
export class ModuleList extends Module {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((module) => this.push(module));
  }

  push(module: Module): void {
    this.registerModule(String(this.length), module);
  }

  get length(): number {
    return this.namedChildren().length;
  }

  at<M extends Module = Module>(index: number): M {
    return this.child<M>(String(index));
  }

  items<M extends Module = Module>(): M[] {
    return this.namedChildren().map(([, module]) => module as M);
  }
}
