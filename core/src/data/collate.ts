import * as tf from '@tensorflow/tfjs-core';
import { SegkitError } from '../errors';
import type { NdArray, PipelineResults } from '../components';
import { describeValue } from '../config/validation';

/** A collated batch: NHWC float32 images and [N,H,W] int32 labels as typed arrays, plus per-sample metadata. */
export interface Batch {
  img: NdArray<Float32Array>;
  gt_semantic_seg?: NdArray<Int32Array>;
  img_metas: Record<string, unknown>[];
  /** Dataset indices of the samples, in batch order. */
  indices: number[];
  /** Seconds the caller waited for this batch (MMSegmentation's `data_time`). */
  dataTime: number;
}

export function isNdArray(value: unknown): value is NdArray {
  return !!value && typeof value === 'object' && ArrayBuffer.isView((value as NdArray).data) && Array.isArray((value as NdArray).shape);
}

/** Everything in a results dict that is not a pixel array: what MMSegmentation calls `img_metas`. */
function metasOf(sample: PipelineResults): Record<string, unknown> {
  if (sample.img_metas && typeof sample.img_metas === 'object') return sample.img_metas as Record<string, unknown>;
  const metas: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(sample)) if (!isNdArray(value) && key !== 'aug') metas[key] = value;
  return metas;
}

function describe(sample: PipelineResults, index: number): string {
  return typeof sample.filename === 'string' ? sample.filename : `sample ${index}`;
}

/** Stacks pipeline results into a batch: images [N,H,W,C] float32, labels [N,H,W] int32 (all samples the same size). */
export function collate(samples: readonly PipelineResults[], indices: readonly number[] = samples.map((_, i) => i), dataTime = 0): Batch {
  if (samples.length === 0) throw new SegkitError('data: cannot collate an empty batch');
  const first = samples[0]!.img;
  if (!isNdArray(first) || first.shape.length !== 3) {
    throw new SegkitError(`data: ${describe(samples[0]!, 0)}: the pipeline must end with an 'img' of shape [H,W,C] (e.g. Collect(keys=['img', ...])), got ${first ? describeValue(first.shape) : 'none'}`);
  }
  const [height, width, channels] = first.shape as [number, number, number];
  const pixels = height * width * channels;
  const images = new Float32Array(samples.length * pixels);
  const hasLabels = samples.every((s) => isNdArray(s.gt_semantic_seg));
  const labels = hasLabels ? new Int32Array(samples.length * height * width) : undefined;
  samples.forEach((sample, n) => {
    const img = sample.img!;
    if (img.shape.join() !== first.shape.join()) {
      throw new SegkitError(`data: cannot batch ${describe(sample, n)} of shape [${img.shape}] with shape [${first.shape}]: every sample of a batch needs the same size (add Pad(size=crop_size) to the pipeline, or use batch size 1)`);
    }
    images.set(img.data, n * pixels);
    if (labels) {
      const seg = sample.gt_semantic_seg!;
      if (seg.shape[0] !== height || seg.shape[1] !== width) {
        throw new SegkitError(`data: ${describe(sample, n)}: label map shape [${seg.shape}] does not match image shape [${img.shape}]`);
      }
      labels.set(seg.data, n * height * width);
    }
  });
  return {
    img: { data: images, shape: [samples.length, height, width, channels] },
    ...(labels ? { gt_semantic_seg: { data: labels, shape: [samples.length, height, width] } } : {}),
    img_metas: samples.map(metasOf),
    indices: [...indices],
    dataTime,
  };
}

/** The batch as tensors (the caller disposes them): images [N,H,W,C] float32, labels [N,H,W] int32. */
export function batchToTensors(batch: Batch): { images: tf.Tensor4D; labels?: tf.Tensor3D } {
  const images = tf.tensor4d(batch.img.data, batch.img.shape as [number, number, number, number], 'float32');
  if (!batch.gt_semantic_seg) return { images };
  return { images, labels: tf.tensor3d(batch.gt_semantic_seg.data, batch.gt_semantic_seg.shape as [number, number, number], 'int32') };
}
