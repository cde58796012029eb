import { SegkitError, randint, uniform, z, type ComponentOf, type NdArray, type PipelineResults, type RandomSource, type Transform } from '@segkit/core/runtime';
import { bgrToHsv, hsvToBgr } from './hsv';
import { requireImage } from './ndarray';

/** MMSegmentation's `convert`: x·α + β in float32, clipped to [0, 255], truncated to uint8 (every `stride`-th value from `offset`). */
function convert(pixels: Uint8Array, alpha: number, beta: number, offset = 0, stride = 1): void {
  const a = Math.fround(alpha);
  const b = Math.fround(beta);
  for (let i = offset; i < pixels.length; i += stride) {
    const value = Math.fround(Math.fround(pixels[i]! * a) + b);
    pixels[i] = value <= 0 ? 0 : value >= 255 ? 255 : Math.trunc(value);
  }
}

const rangePair = z.tuple([z.number(), z.number()], { error: 'expected a (lower, upper) pair' }).refine(([lo, hi]) => lo <= hi, { error: 'expected lower <= upper' });

const photoSchema = z.object({
  brightness_delta: z.number().int().min(0).default(32),
  contrast_range: rangePair.default([0.5, 1.5]),
  saturation_range: rangePair.default([0.5, 1.5]),
  hue_delta: z.number().int().min(0).max(180).default(18),
});
type PhotoOptions = z.infer<typeof photoSchema>;

/** The distortion steps on uint8 BGR pixels, in MMSegmentation's order and with its random draws. */
export function photoMetricDistortion(pixels: Uint8Array, options: PhotoOptions, random: RandomSource): void {
  const coin = () => randint(random, 0, 2) === 1;
  const contrast = () => {
    if (coin()) convert(pixels, uniform(random, options.contrast_range[0], options.contrast_range[1]), 0);
  };
  if (coin()) convert(pixels, 1, uniform(random, -options.brightness_delta, options.brightness_delta));
  const mode = randint(random, 0, 2);
  if (mode === 1) contrast();
  if (coin()) {
    bgrToHsv(pixels);
    convert(pixels, uniform(random, options.saturation_range[0], options.saturation_range[1]), 0, 1, 3);
    hsvToBgr(pixels);
  }
  if (coin()) {
    bgrToHsv(pixels);
    const delta = randint(random, -options.hue_delta, options.hue_delta);
    for (let i = 0; i < pixels.length; i += 3) pixels[i] = (((pixels[i]! + delta) % 180) + 180) % 180;
    hsvToBgr(pixels);
  }
  if (mode === 0) contrast();
}

/** PhotoMetricDistortion: brightness, contrast (before or after), saturation and hue, each with probability 0.5. */
export const PhotoMetricDistortion: ComponentOf<'transforms', PhotoOptions, Transform> = {
  type: 'PhotoMetricDistortion',
  schema: photoSchema,
  description: 'random brightness, contrast, saturation and hue (uint8 BGR)',
  create(options) {
    return {
      apply(results: PipelineResults, random: RandomSource) {
        const img = requireImage(results, 'PhotoMetricDistortion');
        if (!(img.data instanceof Uint8Array) || img.shape[2] !== 3) {
          throw new SegkitError('PhotoMetricDistortion: expects the uint8 BGR image from LoadImageFromFile; put it before Normalize');
        }
        const pixels = Uint8Array.from(img.data);
        photoMetricDistortion(pixels, options, random);
        return { ...results, img: { data: pixels, shape: [...img.shape] } };
      },
    };
  },
};

const triple = z.tuple([z.number(), z.number(), z.number()], { error: 'expected three numbers (one per channel)' });
const normalizeSchema = z.object({
  mean: triple,
  std: triple.refine((s) => s.every((v) => v !== 0), { error: 'std values must be non-zero' }),
  to_rgb: z.boolean().default(true),
});

/** Normalize: float32 (x − mean)/std per channel, after BGR→RGB when to_rgb. */
export const Normalize: ComponentOf<'transforms', z.infer<typeof normalizeSchema>, Transform> = {
  type: 'Normalize',
  schema: normalizeSchema,
  description: '(x − mean) / std per channel, optionally BGR→RGB first',
  create(options) {
    const inverseStd = options.std.map((s) => 1 / s);
    return {
      apply(results: PipelineResults) {
        const img = requireImage(results, 'Normalize') as NdArray;
        if (img.shape[2] !== 3) throw new SegkitError(`Normalize: expected a 3-channel image, got shape [${img.shape}]`);
        const out = new Float32Array(img.data.length);
        const src = img.data;
        for (let i = 0; i < src.length; i += 3) {
          for (let k = 0; k < 3; k++) {
            const from = options.to_rgb ? 2 - k : k;
            out[i + k] = (src[i + from]! - options.mean[k]!) * inverseStd[k]!;
          }
        }
        return { ...results, img: { data: out, shape: [...img.shape] }, img_norm_cfg: { mean: [...options.mean], std: [...options.std], to_rgb: options.to_rgb } };
      },
    };
  },
};
