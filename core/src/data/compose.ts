import { SegkitError, joinPath } from '../errors';
import type { BuildContext } from '../plugin-system/registries';
import type { PipelineResults, RandomSource, Transform } from '../components';
import { describeValue } from '../config/validation';

/** MMSegmentation's `Compose`: runs the pipeline's transforms in order on one results dict. */
export class Compose implements Transform {
  constructor(readonly transforms: readonly Transform[]) {}

  async apply(results: PipelineResults, random: RandomSource): Promise<PipelineResults> {
    let current = results;
    for (const transform of this.transforms) current = await transform.apply(current, random);
    return current;
  }
}

/** Builds `cfgs` (a list of transform configs) found at `<ctx.path>.<key>` into a Compose. */
export function buildPipeline(ctx: BuildContext, cfgs: unknown, key: string): Compose {
  if (cfgs === undefined || cfgs === null) return new Compose([]);
  if (!Array.isArray(cfgs)) {
    throw new SegkitError(`${joinPath(ctx.path, key)}: expected a list of transform configs, got ${describeValue(cfgs)}`, joinPath(ctx.path, key));
  }
  return new Compose(cfgs.map((cfg, index) => ctx.build('transforms', cfg, `${key}.${index}`)));
}
