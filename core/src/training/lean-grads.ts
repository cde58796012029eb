import * as tf from '@tensorflow/tfjs-core';

// tfjs's backward pass (engine.gradients → backpropagateGradients in tfjs-core 4.x) keeps every tape
// node's saved tensors and every intermediate gradient alive until the whole backward pass ends, so a
// training step's peak holds the forward activations *and* all their gradients at once. PyTorch frees
// a node's saved tensors and the gradient flowing into it as soon as the node's backward has run.
// `leanVariableGrads` runs tfjs's own tape and gradient functions with that lifetime: the values are
// the same as tf.variableGrads's (same nodes, same order, same accumulation), only freed earlier.

/** tfjs's (internal) tape node, as engine.addTapeNode records it. */
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

/** The engine internals used here; checked at run time (a different tfjs falls back to tf.variableGrads). */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
}

function engineInternals(): EngineInternals | null {
  const engine = tf.engine() as unknown as Partial<EngineInternals>;
  // (state.activeTape is only created by the first startTape, so it is not part of the check.)
  const ok = engine.state && typeof engine.state.gradientDepth === 'number'
    && typeof engine.scopedRun === 'function' && typeof engine.startTape === 'function' && typeof engine.endTape === 'function';
  return ok ? (engine as EngineInternals) : null;
}

/**
 * `tf.variableGrads(f, variables)` with PyTorch's tensor lifetime in the backward pass: the same
 * `{ value, grads }` (gradients keyed by variable name, trainable variables only), with a lower peak
 * memory. Inside another gradient computation (higher-order gradients need the whole tape) it is
 * tf.variableGrads itself.
 */
export function leanVariableGrads(f: () => tf.Scalar, variables: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = engineInternals();
  if (!engine || engine.state.gradientDepth !== 0) return tf.variableGrads(f, variables);
  const trainable = variables.filter((variable) => variable.trainable);
  if (trainable.length === 0) throw new Error(`leanVariableGrads: none of the ${variables.length} variables is trainable`);
  const value = engine.scopedRun(() => engine.startTape(), () => engine.endTape(), () => tf.tidy('forward', f));
  const tape = engine.state.activeTape ?? [];
  try {
    if (!(value instanceof tf.Tensor) || value.rank !== 0) throw new Error(`leanVariableGrads: f must return a scalar tensor, got ${value instanceof tf.Tensor ? `rank ${value.rank}` : typeof value}`);
    const named = tf.tidy('backward', () => {
      const gradients = backpropagate(nodesBetween(tape, trainable, value), value);
      const result: tf.NamedTensorMap = {};
      for (const variable of trainable) {
        const grad = gradients.get(variable.id);
        if (grad) result[variable.name] = grad;
      }
      return result;
    });
    if (Object.keys(named).length === 0) throw new Error('leanVariableGrads: the result does not depend on any of the variables');
    return { value, grads: named };
  } catch (error) {
    value.dispose();
    throw error;
  } finally {
    for (const node of tape) for (const tensor of node.saved ?? []) tensor.dispose();
    engine.state.activeTape = null;
  }
}

/**
 * The nodes on a path from one of `xs` to `y`, in tape order, each with only the inputs that depend
 * on `xs` (tfjs's getFilteredNodesXToY).
 */
function nodesBetween(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const output of node.outputs) fromX.add(output.id);
      nodesFromX.add(node.id);
    }
  }
  const leadsToY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((output) => leadsToY.has(output.id))) {
      for (const input of Object.values(node.inputs)) leadsToY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((node) => nodesFromX.has(node.id) && nodesToY.has(node.id))
    .map((node) => ({ ...node, inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id))) }));
}

/**
 * Walks the nodes backward from dy/dy = 1 (tfjs's backpropagateGradients); after each node, disposes
 * its saved tensors, the gradients of its outputs and the addends of accumulated gradients. Returns
 * the gradients left: those of the leaves (the variables among them), keyed by tensor id.
 */
function backpropagate(nodes: TapeNode[], y: tf.Tensor): Map<number, tf.Tensor> {
  const gradients = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
  // How many gradient-map entries hold each tensor: a tensor still held is never disposed here.
  const holders = new Map<tf.Tensor, number>([[gradients.get(y.id)!, 1]]);
  const hold = (tensor: tf.Tensor, delta: number) => {
    const count = (holders.get(tensor) ?? 0) + delta;
    if (count > 0) holders.set(tensor, count);
    else holders.delete(tensor);
  };
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const dys = node.outputs.map((output) => gradients.get(output.id) ?? null);
    const closures = node.gradient(dys);
    const released: tf.Tensor[] = [...(node.saved ?? [])];
    for (const [name, input] of Object.entries(node.inputs)) {
      const closure = closures[name];
      if (!closure) throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(closures)}.`);
      const dx = tf.tidy(closure);
      if (dx.dtype !== 'float32') throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`);
      if (!tf.util.arraysEqual(dx.shape, input.shape)) {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${input.shape}'`);
      }
      const current = gradients.get(input.id);
      const next = current ? tf.add(current, dx) : dx;
      if (current) {
        hold(current, -1);
        released.push(current, dx);
      }
      gradients.set(input.id, next);
      hold(next, 1);
    }
    for (const output of node.outputs) {
      const dy = gradients.get(output.id);
      if (!dy) continue;
      gradients.delete(output.id);
      hold(dy, -1);
      released.push(dy);
    }
    // After all of the node's closures ran: a closure may return (or read) another input's dy or a saved tensor.
    for (const tensor of released) if (!holders.has(tensor)) tensor.dispose();
  }
  return gradients;
}
