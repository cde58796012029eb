import { SegkitError, randint, uniform, z, type ComponentOf, type NdArray, type PipelineResults, type RandomSource, type Transform } from '@segkit/core/runtime';
import { cropArray, flipArray, padArray, requireImage, resizeBilinear, resizeNearest, segFields, type PixelArray } from './ndarray';

const positiveInt = z.number().int().positive({ error: 'expected a positive integer' });
/** (w, h) pairs as MMSegmentation writes them, e.g. (2048, 1024); a list of them for multi-scale. */
export const scalePair = z.tuple([positiveInt, positiveInt], { error: 'expected a (long, short) or (w, h) pair of positive integers' });
/** (h, w) sizes: crop_size, Pad's size. */
const sizePair = z.tuple([positiveInt, positiveInt], { error: 'expected an (h, w) pair of positive integers' });
const ratioPair = z.tuple([z.number().positive(), z.number().positive()], { error: 'expected a (min, max) pair of positive ratios' });

type Scale = [number, number];

const resizeSchema = z
  .object({
    img_scale: z.union([scalePair, z.array(scalePair).min(1)]).nullable().default(null),
    multiscale_mode: z.enum(['range', 'value'], { error: "expected 'range' or 'value'" }).default('range'),
    ratio_range: ratioPair.nullable().default(null),
    keep_ratio: z.boolean().default(true),
    min_size: positiveInt.nullable().default(null),
  })
  .refine((o) => !(o.ratio_range && Array.isArray(o.img_scale) && Array.isArray(o.img_scale[0]) && (o.img_scale as Scale[]).length > 1), {
    error: 'ratio_range needs a single img_scale, got a list of several',
    path: ['ratio_range'],
  });
type ResizeOptions = z.infer<typeof resizeSchema>;

/** Scale and its index as MMSegmentation's Resize._random_scale draws them. */
export function randomScale(options: ResizeOptions, imageSize: { h: number; w: number }, random: RandomSource): { scale: Scale; scaleIdx: number | null } {
  const scales: Scale[] | null = options.img_scale === null ? null : Array.isArray(options.img_scale[0]) ? (options.img_scale as Scale[]) : [options.img_scale as Scale];
  if (options.ratio_range) {
    const base = scales ? scales[0]! : ([imageSize.w, imageSize.h] as Scale);
    const ratio = uniform(random, options.ratio_range[0], options.ratio_range[1]);
    return { scale: [Math.trunc(base[0] * ratio), Math.trunc(base[1] * ratio)], scaleIdx: null };
  }
  if (!scales) throw new SegkitError('Resize: img_scale is null and there is no ratio_range or test-time scale (use it inside MultiScaleFlipAug, or set img_scale)');
  if (scales.length === 1) return { scale: scales[0]!, scaleIdx: 0 };
  if (options.multiscale_mode === 'range') {
    const longs = scales.map((s) => Math.max(...s));
    const shorts = scales.map((s) => Math.min(...s));
    const long = randint(random, Math.min(...longs), Math.max(...longs) + 1);
    const short = randint(random, Math.min(...shorts), Math.max(...shorts) + 1);
    return { scale: [long, short], scaleIdx: null };
  }
  const index = randint(random, 0, scales.length);
  return { scale: scales[index]!, scaleIdx: index };
}

/** mmcv.rescale_size: the largest size that fits (long, short) keeping the aspect ratio. */
export function rescaleSize(h: number, w: number, scale: Scale): { newH: number; newW: number } {
  const factor = Math.min(Math.max(...scale) / Math.max(h, w), Math.min(...scale) / Math.min(h, w));
  return { newW: Math.trunc(w * factor + 0.5), newH: Math.trunc(h * factor + 0.5) };
}

function resizeResults(results: PipelineResults, scale: Scale, keepRatio: boolean): PipelineResults {
  const img = requireImage(results, 'Resize');
  const [h, w] = img.shape as [number, number];
  const { newH, newW } = keepRatio ? rescaleSize(h, w, scale) : { newW: scale[0], newH: scale[1] };
  const out: PipelineResults = { ...results };
  out.img = resizeBilinear(img, newH, newW);
  const wScale = newW / w;
  const hScale = newH / h;
  out.img_shape = [...out.img.shape];
  out.pad_shape = [...out.img.shape];
  out.scale_factor = [wScale, hScale, wScale, hScale];
  out.keep_ratio = keepRatio;
  for (const key of segFields(results)) out[key] = resizeNearest(results[key] as NdArray, newH, newW);
  return out;
}

/** Resize: image bilinear, label maps nearest; scale from img_scale / ratio_range / multiscale_mode, or a test-time `scale`. */
export const Resize: ComponentOf<'transforms', ResizeOptions, Transform> = {
  type: 'Resize',
  schema: resizeSchema,
  description: 'resize image (bilinear) and labels (nearest) to a fixed, random-ratio or multi-scale size',
  create(options) {
    return {
      apply(results: PipelineResults, random: RandomSource) {
        let scale = results.scale as Scale | undefined;
        const out: PipelineResults = { ...results };
        if (!scale) {
          const img = requireImage(results, 'Resize');
          const drawn = randomScale(options, { h: img.shape[0]!, w: img.shape[1]! }, random);
          scale = drawn.scale;
          out.scale = scale;
          out.scale_idx = drawn.scaleIdx;
        }
        if (options.keep_ratio && options.min_size !== null && Math.min(...scale) < options.min_size) {
          // MMSegmentation's min_size: grow the short side of the target to min_size.
          const img = requireImage(results, 'Resize');
          const [h, w] = img.shape as [number, number];
          const short = options.min_size;
          scale = h > w ? [Math.trunc((short * h) / w), short] : [short, Math.trunc((short * w) / h)];
          out.scale = scale;
        }
        return resizeResults(out, scale, options.keep_ratio);
      },
    };
  },
};

const randomCropSchema = z.object({
  crop_size: sizePair,
  cat_max_ratio: z.number().gt(0, { error: 'expected a ratio in (0, 1]' }).lte(1, { error: 'expected a ratio in (0, 1]' }).default(1),
  ignore_index: z.number().int().default(255),
});

/** [y1, y2, x1, x2] of a random crop: offsets uniform in [0, max(H−h,0)] × [0, max(W−w,0)]. */
export function randomCropBox(height: number, width: number, cropSize: Scale, random: RandomSource): [number, number, number, number] {
  const offsetH = randint(random, 0, Math.max(height - cropSize[0], 0) + 1);
  const offsetW = randint(random, 0, Math.max(width - cropSize[1], 0) + 1);
  return [offsetH, offsetH + cropSize[0], offsetW, offsetW + cropSize[1]];
}

/** Whether a crop of the label map holds more than one class and no class above `catMaxRatio` (ignore excluded). */
export function cropIsBalanced(seg: NdArray, box: [number, number, number, number], catMaxRatio: number, ignoreIndex: number): boolean {
  const crop = cropArray(seg as NdArray<PixelArray>, ...box);
  const counts = new Map<number, number>();
  for (const v of crop.data) if (v !== ignoreIndex) counts.set(v, (counts.get(v) ?? 0) + 1);
  if (counts.size <= 1) return false;
  let total = 0;
  let largest = 0;
  for (const c of counts.values()) {
    total += c;
    largest = Math.max(largest, c);
  }
  return largest / total < catMaxRatio;
}

/** RandomCrop with crop_size (h, w); with cat_max_ratio < 1, up to 10 redraws of unbalanced crops. */
export const RandomCrop: ComponentOf<'transforms', z.infer<typeof randomCropSchema>, Transform> = {
  type: 'RandomCrop',
  schema: randomCropSchema,
  description: 'random crop of crop_size (h, w), rejecting crops dominated by one class (cat_max_ratio)',
  create(options) {
    const cropSize = options.crop_size as Scale;
    return {
      apply(results: PipelineResults, random: RandomSource) {
        const img = requireImage(results, 'RandomCrop');
        const [h, w] = img.shape as [number, number];
        let box = randomCropBox(h, w, cropSize, random);
        const seg = results.gt_semantic_seg;
        if (options.cat_max_ratio < 1) {
          if (!seg) throw new SegkitError('RandomCrop: cat_max_ratio < 1 needs gt_semantic_seg; put LoadAnnotations before RandomCrop');
          for (let attempt = 0; attempt < 10; attempt++) {
            if (cropIsBalanced(seg, box, options.cat_max_ratio, options.ignore_index)) break;
            box = randomCropBox(h, w, cropSize, random);
          }
        }
        const out: PipelineResults = { ...results, img: cropArray(img as NdArray<PixelArray>, ...box) };
        out.img_shape = [...out.img!.shape];
        for (const key of segFields(results)) out[key] = cropArray(results[key] as NdArray<PixelArray>, ...box);
        return out;
      },
    };
  },
};

const randomFlipSchema = z.object({
  prob: z.number().min(0, { error: 'expected a probability in [0, 1]' }).max(1, { error: 'expected a probability in [0, 1]' }).nullable().default(null),
  direction: z.enum(['horizontal', 'vertical'], { error: "expected 'horizontal' or 'vertical'" }).default('horizontal'),
});

/** RandomFlip(prob, direction): flips image and label maps together; honours a `flip` set by MultiScaleFlipAug. */
export const RandomFlip: ComponentOf<'transforms', z.infer<typeof randomFlipSchema>, Transform> = {
  type: 'RandomFlip',
  schema: randomFlipSchema,
  description: 'flip image and labels with probability prob',
  create(options) {
    return {
      apply(results: PipelineResults, random: RandomSource) {
        const out: PipelineResults = { ...results };
        if (out.flip === undefined) out.flip = options.prob !== null && random.random() < options.prob;
        if (out.flip_direction === undefined) out.flip_direction = options.direction;
        if (out.flip) {
          const direction = out.flip_direction as 'horizontal' | 'vertical';
          out.img = flipArray(requireImage(results, 'RandomFlip') as NdArray<PixelArray>, direction);
          for (const key of segFields(results)) out[key] = flipArray(results[key] as NdArray<PixelArray>, direction);
        }
        return out;
      },
    };
  },
};

const padSchema = z
  .object({
    size: sizePair.nullable().default(null),
    size_divisor: positiveInt.nullable().default(null),
    pad_val: z.number().default(0),
    seg_pad_val: z.number().int().min(0).max(255).default(255),
  })
  .refine((o) => (o.size === null) !== (o.size_divisor === null), { error: 'set exactly one of size (h, w) and size_divisor' });

/** Pad at the bottom/right: image with pad_val to `size` (h, w) or a multiple of size_divisor; label maps with seg_pad_val. */
export const Pad: ComponentOf<'transforms', z.infer<typeof padSchema>, Transform> = {
  type: 'Pad',
  schema: padSchema,
  description: 'pad bottom/right to a fixed size or a multiple of size_divisor',
  create(options) {
    return {
      apply(results: PipelineResults) {
        const img = requireImage(results, 'Pad') as NdArray<PixelArray>;
        const [h, w] = img.shape as [number, number];
        const [height, width] = options.size
          ? options.size
          : [Math.ceil(h / options.size_divisor!) * options.size_divisor!, Math.ceil(w / options.size_divisor!) * options.size_divisor!];
        const out: PipelineResults = { ...results, img: padArray(img, height, width, options.pad_val, `image ${String(results.filename ?? '')}`.trim()) };
        out.pad_shape = [...out.img!.shape];
        out.pad_fixed_size = options.size;
        out.pad_size_divisor = options.size_divisor;
        for (const key of segFields(results)) out[key] = padArray(results[key] as NdArray<PixelArray>, height, width, options.seg_pad_val, key);
        return out;
      },
    };
  },
};
