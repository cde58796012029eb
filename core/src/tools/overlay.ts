import * as path from 'path';
import type { NdArray } from '../components';
import { SegkitError } from '../errors';
import { makeDirectory, writeFileOrExplain } from '../os-errors';

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

/** Minimal view of fast-png's encoder, so that core compiles and runs without it. */
interface FastPng {
  encode(image: { width: number; height: number; data: Uint8Array; channels: number; depth: 8 }): Uint8Array;
}

function loadFastPng(): FastPng {
  try {
    return require('fast-png') as FastPng;
  } catch {
    throw new SegkitError('PNG output needs the fast-png package; npm install fast-png');
  }
}

/**
 * Writes an 8-bit PNG: RGB for [H, W, 3] arrays; grayscale for [H, W] or [H, W, 1] label maps, whose pixel
 * values are the class indices (0..255), as MMSegmentation's `format_results` writes them.
 */
export function writePng(file: string, array: NdArray<Uint8Array | Int32Array>): void {
  const [height, width, channels = 1] = array.shape;
  if (array.shape.length < 2 || array.shape.length > 3 || (channels !== 1 && channels !== 3)) {
    throw new SegkitError(`${file}: expected an image of shape [H, W, 3] or a label map of shape [H, W], got [${array.shape.join(', ')}]`);
  }
  if (array.data.length !== height! * width! * channels) {
    throw new SegkitError(`${file}: shape [${array.shape.join(', ')}] needs ${height! * width! * channels} values, got ${array.data.length}`);
  }
  let data: Uint8Array;
  if (array.data instanceof Uint8Array) {
    data = array.data;
  } else {
    const outOfRange = array.data.find((v) => v < 0 || v > 255);
    if (outOfRange !== undefined) throw new SegkitError(`${file}: an 8-bit PNG holds values 0..255, got ${outOfRange}`);
    data = Uint8Array.from(array.data);
  }
  const png = loadFastPng().encode({ width: width!, height: height!, data, channels, depth: 8 });
  makeDirectory(path.dirname(path.resolve(file)));
  writeFileOrExplain(file, png);
}
