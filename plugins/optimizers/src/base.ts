import * as tf from '@tensorflow/tfjs-core';
import { SegkitError, type NamedParameter, type Optimizer, type OptimizerState, type ParamGroup, type ParamGroupSpec } from '@segkit/core';

/** Hyper-parameters every optimizer has; the subclasses add their own (momentum, betas, ...). */
export interface OptimizerDefaults {
  lr?: number;
  weight_decay: number;
  [hyperParameter: string]: unknown;
}

/** The slots of one parameter (momentum buffer, Adam moments): variables owned by the optimizer. */
export type ParameterSlots = Map<string, tf.Variable>;

/**
 * What all optimizers share: param groups with defaults filled in (torch's `add_param_group`),
 * the duplicate check, per-parameter state kept in tf.Variables by parameter name, and the
 * state dict. A subclass only writes the update of one parameter.
 */
export abstract class BaseOptimizer implements Optimizer {
  readonly paramGroups: ParamGroup[];
  protected readonly slots = new Map<string, ParameterSlots>();
  /** Per-parameter update counts (Adam's bias correction), kept as exact JS numbers. */
  protected readonly parameterSteps = new Map<string, number>();
  private stepCount = 0;

  protected constructor(
    readonly type: string,
    groups: readonly ParamGroupSpec[],
    readonly defaults: OptimizerDefaults,
    /** Config path for messages, e.g. `optimizer`. */
    protected readonly path: string,
  ) {
    if (groups.length === 0) throw new SegkitError(`${path}: ${type} got an empty parameter list (the model has no parameters)`);
    this.paramGroups = groups.map((spec, index) => this.completeGroup(spec, index));
    this.assertNoDuplicates();
  }

  private completeGroup(spec: ParamGroupSpec, index: number): ParamGroup {
    const group = { ...this.defaults, ...spec, params: [...spec.params] } as ParamGroup;
    if (typeof group.lr !== 'number' || !Number.isFinite(group.lr)) {
      throw new SegkitError(`${this.path}.lr: ${this.type} needs a learning rate (param group ${index} has none), got ${String(group.lr)}`);
    }
    if (typeof group.weight_decay !== 'number' || !Number.isFinite(group.weight_decay)) {
      throw new SegkitError(`${this.path}.weight_decay: expected a number for param group ${index}, got ${String(group.weight_decay)}`);
    }
    group.initial_lr = typeof spec.initial_lr === 'number' ? spec.initial_lr : group.lr;
    return group;
  }

  /** torch: "some parameters appear in more than one parameter group". */
  private assertNoDuplicates(): void {
    const seen = new Map<tf.Variable, string>();
    const names = new Set<string>();
    for (const group of this.paramGroups) {
      for (const param of group.params) {
        const first = seen.get(param.variable);
        if (first !== undefined) {
          throw new SegkitError(
            `${this.path}: parameter '${param.name}' is the same tensor as '${first}' and appears in more than one parameter group ` +
              `(a shared sub-module); set ${this.path}.paramwise_cfg.bypass_duplicate = true to skip repeated tensors`,
          );
        }
        if (names.has(param.name)) throw new SegkitError(`${this.path}: two different tensors are both named '${param.name}'`);
        seen.set(param.variable, param.name);
        names.add(param.name);
      }
    }
  }

  /** Updates every parameter that has a gradient; parameters without one (frozen) stay unchanged. */
  step(grads: tf.NamedTensorMap): void {
    this.stepCount += 1;
    for (const group of this.paramGroups) {
      for (const param of group.params) {
        const grad = grads[param.variable.name];
        if (!grad) continue;
        const slots = this.slotsOf(param.name);
        this.parameterSteps.set(param.name, (this.parameterSteps.get(param.name) ?? 0) + 1);
        tf.tidy(() => this.updateParameter(param, grad, group, slots, this.parameterSteps.get(param.name)!));
      }
    }
  }

  /** One update of `param` (inside tf.tidy): assign the new value and the new slot values. */
  protected abstract updateParameter(param: NamedParameter, grad: tf.Tensor, group: ParamGroup, slots: ParameterSlots, step: number): void;

  private slotsOf(name: string): ParameterSlots {
    let slots = this.slots.get(name);
    if (!slots) {
      slots = new Map();
      this.slots.set(name, slots);
    }
    return slots;
  }

  /** Writes a slot, creating its variable on first use (torch creates state lazily too). */
  protected setSlot(slots: ParameterSlots, slot: string, value: tf.Tensor): void {
    const existing = slots.get(slot);
    if (existing) existing.assign(value);
    else slots.set(slot, tf.keep(tf.variable(value, false)));
  }

  /** A copy of the state; the caller owns the tensors (dispose them after saving). */
  stateDict(): OptimizerState {
    const slots: Record<string, Record<string, tf.Tensor>> = {};
    for (const [name, parameterSlots] of this.slots) {
      const entry: Record<string, tf.Tensor> = {};
      for (const [slot, variable] of parameterSlots) entry[slot] = tf.clone(variable);
      const steps = this.parameterSteps.get(name);
      if (steps !== undefined && this.usesParameterSteps) entry.step = tf.scalar(steps, 'int32');
      slots[name] = entry;
    }
    return {
      type: this.type,
      slots,
      step: this.stepCount,
      groups: this.paramGroups.map((group) => ({ lr: group.lr, initial_lr: group.initial_lr })),
    };
  }

  /** Whether `step` slots are part of the state (Adam's per-parameter step counts). */
  protected get usesParameterSteps(): boolean {
    return false;
  }

  /** Restores a state from `stateDict()` (copies the tensors; the caller still owns `state`). */
  async loadStateDict(state: OptimizerState): Promise<void> {
    const where = `${this.path}: cannot load optimizer state`;
    if (state.type !== this.type) throw new SegkitError(`${where}: it was saved by ${state.type}, this optimizer is ${this.type}`);
    if (state.groups.length !== this.paramGroups.length) {
      throw new SegkitError(`${where}: it has ${state.groups.length} param groups, this optimizer has ${this.paramGroups.length} (was paramwise_cfg changed?)`);
    }
    const parameters = new Map(this.paramGroups.flatMap((group) => group.params.map((param) => [param.name, param.variable] as const)));
    for (const [name, entry] of Object.entries(state.slots)) {
      const variable = parameters.get(name);
      if (!variable) throw new SegkitError(`${where}: it has state for '${name}', which is not a parameter of this optimizer`);
      for (const [slot, tensor] of Object.entries(entry)) {
        if (slot !== 'step' && !tf.util.arraysEqual(tensor.shape, variable.shape)) {
          throw new SegkitError(`${where}: '${name}' slot '${slot}' has shape [${tensor.shape.join(',')}], the parameter [${variable.shape.join(',')}]`);
        }
      }
    }
    // Per-parameter step counts (Adam's int32 'step' slots) are read before anything changes; GPU backends read only asynchronously.
    const counted = Object.entries(state.slots).filter(([, entry]) => entry.step !== undefined);
    const counts = await Promise.all(counted.map(([, entry]) => entry.step!.data()));
    this.disposeSlots();
    counted.forEach(([name], index) => this.parameterSteps.set(name, counts[index]![0]!));
    for (const [name, entry] of Object.entries(state.slots)) {
      const parameterSlots = this.slotsOf(name);
      for (const [slot, tensor] of Object.entries(entry)) if (slot !== 'step') this.setSlot(parameterSlots, slot, tensor);
    }
    this.stepCount = state.step;
    state.groups.forEach((saved, index) => {
      this.paramGroups[index]!.lr = saved.lr;
      this.paramGroups[index]!.initial_lr = saved.initial_lr;
    });
  }

  private disposeSlots(): void {
    for (const parameterSlots of this.slots.values()) for (const variable of parameterSlots.values()) variable.dispose();
    this.slots.clear();
    this.parameterSteps.clear();
  }

  /** Frees the optimizer's state (never the parameters: the model owns them). */
  dispose(): void {
    this.disposeSlots();
  }
}
