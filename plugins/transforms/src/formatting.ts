import { SegkitError, buildPipeline, z, type ComponentOf, type NdArray, type PipelineResults, type RandomSource, type Transform } from '@segkit/core/runtime';
import { scalePair } from './geometric';

function asFloat32(array: NdArray): NdArray<Float32Array> {
  const data = array.data instanceof Float32Array ? array.data : Float32Array.from(array.data);
  return { data, shape: array.shape.length === 2 ? [...array.shape, 1] : [...array.shape] };
}

/** DefaultFormatBundle: image → float32 [H,W,C] (segkit stays NHWC), gt_semantic_seg → int32 [H,W]. */
export const DefaultFormatBundle: ComponentOf<'transforms', Record<string, never>, Transform> = {
  type: 'DefaultFormatBundle',
  schema: z.object({}),
  description: 'image to float32 HWC, labels to int32',
  create() {
    return {
      apply(results: PipelineResults) {
        const out: PipelineResults = { ...results };
        if (results.img) out.img = asFloat32(results.img);
        const seg = results.gt_semantic_seg;
        if (seg) out.gt_semantic_seg = { data: seg.data instanceof Int32Array ? seg.data : Int32Array.from(seg.data), shape: seg.shape.slice(0, 2) };
        return out;
      },
    };
  },
};

const imageToTensorSchema = z.object({ keys: z.array(z.string()).min(1, { error: 'expected at least one key' }) });

/** ImageToTensor(keys): each key → float32 [H,W,C] (a channel axis added to [H,W]). */
export const ImageToTensor: ComponentOf<'transforms', z.infer<typeof imageToTensorSchema>, Transform> = {
  type: 'ImageToTensor',
  schema: imageToTensorSchema,
  description: 'listed images to float32 HWC',
  create(options) {
    return {
      apply(results: PipelineResults) {
        const out: PipelineResults = { ...results };
        for (const key of options.keys) {
          const value = results[key] as NdArray | undefined;
          if (!value || !ArrayBuffer.isView(value.data)) throw new SegkitError(`ImageToTensor: key '${key}' is not an image in the results`);
          out[key] = asFloat32(value);
        }
        return out;
      },
    };
  },
};

export const DEFAULT_META_KEYS = ['filename', 'ori_filename', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip', 'flip_direction', 'img_norm_cfg'];

const collectSchema = z.object({
  keys: z.array(z.string()).min(1, { error: 'expected at least one key' }),
  meta_keys: z.array(z.string()).default(DEFAULT_META_KEYS),
});

/** Collect(keys, meta_keys): keeps `keys` and gathers the meta keys present into `img_metas`. */
export const Collect: ComponentOf<'transforms', z.infer<typeof collectSchema>, Transform> = {
  type: 'Collect',
  schema: collectSchema,
  description: 'keep the listed keys plus img_metas',
  create(options) {
    return {
      apply(results: PipelineResults) {
        const img_metas: Record<string, unknown> = {};
        for (const key of options.meta_keys) if (key in results) img_metas[key] = results[key];
        const out: PipelineResults = { img_metas };
        for (const key of options.keys) {
          if (!(key in results)) {
            const hint = key === 'gt_semantic_seg' ? ' (add LoadAnnotations to the pipeline)' : '';
            throw new SegkitError(`Collect: key '${key}' is not in the results${hint}; present: ${Object.keys(results).join(', ')}`);
          }
          out[key] = results[key];
        }
        // Metadata stays readable at the top level too, for code that reads results.filename.
        for (const key of ['filename', 'ori_shape', 'img_shape'] as const) if (key in results && !(key in out)) out[key] = results[key] as never;
        return out;
      },
    };
  },
};

const multiScaleSchema = z
  .object({
    transforms: z.array(z.record(z.string(), z.unknown())),
    img_scale: z.union([scalePair, z.array(scalePair).min(1)]).nullable().default(null),
    img_ratios: z.union([z.number().positive(), z.array(z.number().positive()).min(1)]).nullable().default(null),
    flip: z.boolean().default(false),
    flip_direction: z.union([z.enum(['horizontal', 'vertical']), z.array(z.enum(['horizontal', 'vertical'])).min(1)]).default('horizontal'),
  })
  .refine((o) => o.img_scale !== null || o.img_ratios !== null, { error: 'set img_scale or img_ratios', path: ['img_scale'] });

/**
 * MultiScaleFlipAug: runs `transforms` once per (scale, flip, direction). With a single combination
 * (the usual `flip: false`, one scale) the result is that run's results; with several, the first run's
 * results carry all of them in `aug` (MMSegmentation returns lists per key).
 */
export const MultiScaleFlipAug: ComponentOf<'transforms', z.infer<typeof multiScaleSchema>, Transform> = {
  type: 'MultiScaleFlipAug',
  schema: multiScaleSchema,
  description: 'test-time scales and flips around inner transforms',
  create(options, ctx) {
    const inner = buildPipeline(ctx, options.transforms, 'transforms');
    const ratios = options.img_ratios === null ? null : Array.isArray(options.img_ratios) ? options.img_ratios : [options.img_ratios];
    const base: [number, number][] | null =
      options.img_scale === null ? null : Array.isArray(options.img_scale[0]) ? (options.img_scale as [number, number][]) : [options.img_scale as [number, number]];
    const fixedScales =
      base && ratios && base.length === 1 ? ratios.map((r) => [Math.trunc(base[0]![0] * r), Math.trunc(base[0]![1] * r)] as [number, number]) : base;
    const directions = Array.isArray(options.flip_direction) ? options.flip_direction : [options.flip_direction];
    const flips = options.flip ? [false, true] : [false];
    return {
      async apply(results: PipelineResults, random: RandomSource) {
        let scales = fixedScales;
        if (!scales) {
          const img = results.img!;
          scales = ratios!.map((r) => [Math.trunc(img.shape[1]! * r), Math.trunc(img.shape[0]! * r)] as [number, number]);
        }
        const runs: PipelineResults[] = [];
        for (const scale of scales) {
          for (const flip of flips) {
            for (const direction of directions) {
              runs.push(await inner.apply({ ...results, scale, flip, flip_direction: direction }, random));
            }
          }
        }
        return runs.length === 1 ? runs[0]! : { ...runs[0]!, aug: runs };
      },
    };
  },
};
