import { nearestName, SegkitError } from '../errors';
import type { TensorData } from './torch-tensors';

/** Where a state dict's 4-D convolution weights are laid out: PyTorch's OIHW or segkit's (tfjs's) HWIO. */
export type WeightLayout = 'torch' | 'segkit';

function permute4d(tensor: TensorData, order: [number, number, number, number]): TensorData {
  const shape = tensor.shape;
  const outShape = order.map((axis) => shape[axis]!) as [number, number, number, number];
  const inStrides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  // For each output axis, the stride of the input axis it reads.
  const [s0, s1, s2, s3] = order.map((axis) => inStrides[axis]!) as [number, number, number, number];
  const [d0, d1, d2, d3] = outShape;
  const source = tensor.data;
  const data = tensor.dtype === 'float32' ? new Float32Array(source.length) : new Int32Array(source.length);
  let out = 0;
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      for (let c = 0; c < d2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < d3; d++) data[out++] = source[base + d * s3]!;
      }
    }
  }
  return { dtype: tensor.dtype, shape: outShape, data };
}

/** PyTorch's conv weight [out, in, kh, kw] → segkit's [kh, kw, in, out]. */
export function oihwToHwio(tensor: TensorData): TensorData {
  if (tensor.shape.length !== 4) throw new Error(`oihwToHwio: expected a 4-D tensor, got shape [${tensor.shape}]`);
  return permute4d(tensor, [2, 3, 1, 0]);
}

/** segkit's conv weight [kh, kw, in, out] → PyTorch's [out, in, kh, kw]. */
export function hwioToOihw(tensor: TensorData): TensorData {
  if (tensor.shape.length !== 4) throw new Error(`hwioToOihw: expected a 4-D tensor, got shape [${tensor.shape}]`);
  return permute4d(tensor, [3, 2, 0, 1]);
}

/** A shape as it reads in the other layout (4-D shapes are conv weights; others are unchanged). */
export function shapeInLayout(shape: readonly number[], from: WeightLayout, to: WeightLayout): number[] {
  if (shape.length !== 4 || from === to) return [...shape];
  return from === 'torch' ? [shape[2]!, shape[3]!, shape[1]!, shape[0]!] : [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
}

/** Converts every 4-D tensor between layouts (segkit's only 4-D parameters are Conv2d weights). */
export function convertLayout(tensors: ReadonlyMap<string, TensorData>, from: WeightLayout, to: WeightLayout): Map<string, TensorData> {
  if (from === to) return new Map(tensors);
  const convert = from === 'torch' ? oihwToHwio : hwioToOihw;
  return new Map([...tensors].map(([key, tensor]) => [key, tensor.shape.length === 4 ? convert(tensor) : tensor]));
}

/**
 * Rewrites keys with (pattern, replacement) pairs, as MMCV's `load_checkpoint(revise_keys=...)`; the
 * default strips DataParallel's `module.` prefix.
 */
export function reviseKeys<T>(tensors: ReadonlyMap<string, T>, revisions: readonly [RegExp, string][] = [[/^module\./, '']]): Map<string, T> {
  const result = new Map<string, T>();
  for (const [key, value] of tensors) result.set(revisions.reduce((name, [pattern, replacement]) => name.replace(pattern, replacement), key), value);
  return result;
}

/**
 * MMCV's `init_cfg: {type: 'Pretrained', checkpoint, prefix}`: keeps the keys under `prefix` with the prefix
 * removed (`backbone.` selects a backbone out of a full segmentor checkpoint). None matching is an error.
 */
export function selectPrefix<T>(tensors: ReadonlyMap<string, T>, prefix: string, source: string): Map<string, T> {
  const normalized = prefix.endsWith('.') ? prefix : `${prefix}.`;
  const result = new Map<string, T>();
  for (const [key, value] of tensors) if (key.startsWith(normalized)) result.set(key.slice(normalized.length), value);
  if (result.size === 0) {
    const topLevel = [...new Set([...tensors.keys()].map((key) => key.split('.')[0]!))];
    const near = nearestName(normalized.slice(0, -1), topLevel);
    throw new SegkitError(`${source}: no key starts with the prefix '${normalized}' (top-level names: ${topLevel.slice(0, 12).join(', ')}${near ? `; did you mean '${near}'?` : ''})`);
  }
  return result;
}

/** Adds `prefix` in front of every key. */
export function addPrefix<T>(tensors: ReadonlyMap<string, T>, prefix: string): Map<string, T> {
  return new Map([...tensors].map(([key, value]) => [`${prefix}${key}`, value]));
}

/** Which kind of checkpoint a state dict's keys show. */
export type StateDictKind = 'imagenet-resnet-v1c' | 'imagenet-resnet' | 'segmentor' | 'other';

/**
 * `imagenet-resnet-v1c`: an MMCV ImageNet backbone with a deep stem (`open-mmlab://resnet50_v1c`: `stem.*`,
 * `layer1.*`, ..., `fc.*`); `imagenet-resnet`: torchvision's / MMCV's plain ResNet (`conv1`, `bn1`, `layer*`,
 * `fc`); `segmentor`: an MMSegmentation model (`backbone.*`, `decode_head.*`).
 */
export function detectStateDictKind(keys: Iterable<string>): StateDictKind {
  const list = [...keys];
  const has = (prefix: string) => list.some((key) => key.startsWith(prefix));
  if (has('backbone.') || has('decode_head.')) return 'segmentor';
  if (has('layer1.') && has('stem.')) return 'imagenet-resnet-v1c';
  if (has('layer1.') && list.includes('conv1.weight')) return 'imagenet-resnet';
  return 'other';
}

/**
 * An ImageNet classification checkpoint as the backbone of a segmentor: every key gets `backbone.` (or
 * `prefix`), the classifier `fc.*` is dropped. Works for MMCV's V1c backbones (`stem.*`) and torchvision's
 * ResNets (`conv1`, `bn1`), whose other keys equal MMSegmentation's ResNet names.
 */
export function mapImageNetBackbone<T>(tensors: ReadonlyMap<string, T>, prefix = 'backbone.'): { tensors: Map<string, T>; dropped: string[] } {
  const result = new Map<string, T>();
  const dropped: string[] = [];
  for (const [key, value] of tensors) {
    if (key.startsWith('fc.')) dropped.push(key);
    else result.set(`${prefix}${key}`, value);
  }
  return { tensors: result, dropped };
}
