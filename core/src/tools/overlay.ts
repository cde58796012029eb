import type { NdArray } from '../components';
import { SegkitError } from '../errors';

/**
 * Blends a colour per class over an RGB image like MMSegmentation's `show_result`:
 * `trunc(img·(1−opacity) + colour·opacity)`. Pixels whose label has no palette entry (255 = ignore,
 * or any out-of-palette value) keep the image's colour (MMSegmentation would blend them with black).
 */
export function renderOverlay(
  imageRgb: NdArray<Uint8Array>,
  labels: Int32Array | Uint8Array,
  palette: readonly (readonly number[])[],
  opacity = 0.5,
): NdArray<Uint8Array> {
  const [height, width, channels] = imageRgb.shape;
  if (imageRgb.shape.length !== 3 || channels !== 3) {
    throw new SegkitError(`overlay: expected an RGB image of shape [H, W, 3], got [${imageRgb.shape.join(', ')}]`);
  }
  if (labels.length !== height! * width!) {
    throw new SegkitError(`overlay: the label map has ${labels.length} pixels but the image is ${height}×${width}; resize the prediction first`);
  }
  if (!(opacity > 0 && opacity <= 1)) throw new SegkitError(`overlay: expected opacity in (0, 1], got ${opacity}`);
  palette.forEach((colour, index) => {
    if (colour.length !== 3 || colour.some((v) => !(v >= 0 && v <= 255))) {
      throw new SegkitError(`palette.${index}: expected [R, G, B] with values in 0..255, got [${colour.join(', ')}]`);
    }
  });

  const out = Uint8Array.from(imageRgb.data);
  const keep = 1 - opacity;
  for (let i = 0; i < labels.length; i++) {
    const colour = palette[labels[i]!];
    if (!colour) continue;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.trunc(out[i * 3 + c]! * keep + colour[c]! * opacity);
  }
  return { data: out, shape: [height!, width!, 3] };
}
