import { SegkitError } from '../../errors';
import type { Segmentor } from '../../components';
import { buildOnnxModel, ONNX_OPSET } from './graph';
import type { OnnxExportContext, OnnxExportable, OnnxValue } from './types';

/** The test pipeline's Normalize (MMSegmentation's img_norm_cfg): (x − mean) / std after BGR→RGB when to_rgb. */
export interface ImageNormalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  to_rgb: boolean;
}

export interface SegmentorOnnxOptions {
  /** Static input size; omitted: height and width are dynamic (`height`, `width`). */
  inputSize?: readonly [number, number];
  output: 'logits' | 'labels';
  /** With a normalization the graph takes RGB pixels 0..255 and normalizes them itself. */
  normalization: ImageNormalization | null;
  /** Extra ModelProto.metadata_props. */
  metadata?: Readonly<Record<string, string>>;
  producerVersion?: string;
}

/**
 * The whole-image inference graph of a segmentor as ONNX bytes (no file system: browser-safe). Input
 * `image` [N,3,H,W] float32: RGB 0..255 with the normalization baked in, else the normalized tensor the test
 * pipeline produces (in its channel order). Output `logits` [N,C,H,W] float32 or `labels` [N,H,W] int32.
 */
export async function segmentorOnnxBytes(model: Segmentor, options: SegmentorOnnxOptions): Promise<{ bytes: Uint8Array; operators: Record<string, number> }> {
  if (typeof (model as Partial<OnnxExportable>).exportOnnx !== 'function') {
    throw new SegkitError(`export onnx: the segmentor (${model.constructor.name}) has no ONNX export: give its class an exportOnnx(ctx, image, { output }) method`, 'model');
  }
  if (options.inputSize && !options.inputSize.every((d) => Number.isInteger(d) && d > 0)) {
    throw new SegkitError(`--input-size: expected two positive integers H,W, got ${options.inputSize.join(',')}`);
  }
  const wasTraining = model.training;
  model.eval();
  try {
    const [height, width] = options.inputSize ?? ['height', 'width'];
    const { normalization } = options;
    return await buildOnnxModel(model, {
      inputs: [{ name: 'image', shape: ['batch', 3, height, width] }],
      build: (ctx, image) => ctx.call(model, normalization ? normalizeOnnx(ctx, image, normalization) : image, { output: options.output }),
      outputs: [{ name: options.output, dims: options.output === 'logits' ? ['batch', null, 'height', 'width'] : ['batch', 'height', 'width'] }],
      metadata: {
        'segkit.input': JSON.stringify({
          name: 'image',
          layout: 'NCHW',
          dtype: 'float32',
          values: normalization ? 'RGB pixels 0..255 (normalization baked in)' : 'normalized by the test pipeline (not in the graph)',
        }),
        'segkit.normalization': JSON.stringify(normalization ? { ...normalization, baked: true } : { baked: false }),
        'segkit.output': JSON.stringify(options.output === 'logits' ? { name: 'logits', layout: 'NCHW', dtype: 'float32' } : { name: 'labels', layout: 'NHW', dtype: 'int32' }),
        'segkit.num_classes': String(model.numClasses),
        ...options.metadata,
      },
      producerVersion: options.producerVersion,
      docString: `segkit ${model.constructor.name}: whole-image inference, opset ${ONNX_OPSET}`,
    });
  } finally {
    model.train(wasTraining);
  }
}

/** RGB 0..255 → the model's input: to BGR unless the pipeline converts to RGB, then (x − mean) · (1/std) as Normalize does. */
function normalizeOnnx(ctx: OnnxExportContext, image: OnnxValue, norm: ImageNormalization): OnnxValue {
  const channels = norm.to_rgb ? image : ctx.node('Gather', [image, ctx.constant([2, 1, 0], [3], 'int64')], { attributes: { axis: 1 }, shape: image.shape });
  const centred = ctx.node('Sub', [channels, ctx.constant([...norm.mean], [1, 3, 1, 1])], { shape: image.shape });
  return ctx.node('Mul', [centred, ctx.constant(norm.std.map((s) => 1 / s), [1, 3, 1, 1])], { shape: image.shape });
}
