/**
 * OpenCV's 8-bit BGR ⇄ HSV conversions (COLOR_BGR2HSV / COLOR_HSV2BGR): H in [0, 180), S and V in [0, 255].
 * The forward conversion uses OpenCV's fixed-point tables so values match it exactly.
 */
const HSV_SHIFT = 12;
const SDIV = new Int32Array(256);
const HDIV = new Int32Array(256);
for (let i = 1; i < 256; i++) {
  SDIV[i] = Math.round((255 << HSV_SHIFT) / i);
  HDIV[i] = Math.round((180 << HSV_SHIFT) / (6 * i));
}
const ROUND = 1 << (HSV_SHIFT - 1);

/** In place on [H,W,3] uint8: BGR → HSV. */
export function bgrToHsv(pixels: Uint8Array): void {
  for (let i = 0; i < pixels.length; i += 3) {
    const b = pixels[i]!, g = pixels[i + 1]!, r = pixels[i + 2]!;
    const v = Math.max(b, g, r);
    const diff = v - Math.min(b, g, r);
    const s = (diff * SDIV[v]! + ROUND) >> HSV_SHIFT;
    let h = v === r ? g - b : v === g ? b - r + 2 * diff : r - g + 4 * diff;
    h = (h * HDIV[diff]! + ROUND) >> HSV_SHIFT;
    if (h < 0) h += 180;
    pixels[i] = h;
    pixels[i + 1] = s;
    pixels[i + 2] = v;
  }
}

const SECTORS = [[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]] as const;

/** In place on [H,W,3] uint8: HSV → BGR (OpenCV's float path, rounded). */
export function hsvToBgr(pixels: Uint8Array): void {
  const tab = new Float32Array(4);
  for (let i = 0; i < pixels.length; i += 3) {
    let h = pixels[i]! * (6 / 180);
    const s = pixels[i + 1]! / 255;
    const v = pixels[i + 2]! / 255;
    let b: number, g: number, r: number;
    if (s === 0) {
      b = g = r = v;
    } else {
      while (h >= 6) h -= 6;
      let sector = Math.floor(h);
      h -= sector;
      if (sector < 0 || sector >= 6) { sector = 0; h = 0; }
      tab[0] = v;
      tab[1] = v * (1 - s);
      tab[2] = v * (1 - s * h);
      tab[3] = v * (1 - s * (1 - h));
      const [bi, gi, ri] = SECTORS[sector]!;
      b = tab[bi]!;
      g = tab[gi]!;
      r = tab[ri]!;
    }
    pixels[i] = Math.min(255, Math.max(0, Math.round(b * 255)));
    pixels[i + 1] = Math.min(255, Math.max(0, Math.round(g * 255)));
    pixels[i + 2] = Math.min(255, Math.max(0, Math.round(r * 255)));
  }
}
