/** Polygon filling for label maps: interior and boundary pixels (like PIL's ImageDraw.polygon with a fill). */
export type Point = readonly [number, number];

function plot(target: Uint8Array, width: number, height: number, x: number, y: number, value: number): void {
  if (x >= 0 && y >= 0 && x < width && y < height) target[y * width + x] = value;
}

/** Bresenham line between two points (rounded to pixels), both ends included. */
function drawLine(target: Uint8Array, width: number, height: number, a: Point, b: Point, value: number): void {
  let x0 = Math.round(a[0]), y0 = Math.round(a[1]);
  const x1 = Math.round(b[0]), y1 = Math.round(b[1]);
  const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
  const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  let error = dx + dy;
  for (;;) {
    plot(target, width, height, x0, y0, value);
    if (x0 === x1 && y0 === y1) return;
    const e2 = 2 * error;
    if (e2 >= dy) { error += dy; x0 += sx; }
    if (e2 <= dx) { error += dx; y0 += sy; }
  }
}

/** Fills a polygon (vertices in pixel coordinates) with `value` in a [height, width] uint8 map, in place. */
export function fillPolygon(target: Uint8Array, width: number, height: number, polygon: readonly Point[], value: number): void {
  if (polygon.length === 0) return;
  const n = polygon.length;
  const ys = polygon.map((p) => p[1]);
  const top = Math.max(0, Math.ceil(Math.min(...ys)));
  const bottom = Math.min(height - 1, Math.floor(Math.max(...ys)));
  for (let y = top; y <= bottom; y++) {
    const crossings: number[] = [];
    for (let i = 0; i < n; i++) {
      const [x0, y0] = polygon[i]!;
      const [x1, y1] = polygon[(i + 1) % n]!;
      if (y0 === y1) continue;
      const [lowY, highY] = y0 < y1 ? [y0, y1] : [y1, y0];
      // Half-open [low, high) so a shared vertex counts once; the outline below covers the rest.
      if (y < lowY || y >= highY) continue;
      crossings.push(x0 + ((y - y0) * (x1 - x0)) / (y1 - y0));
    }
    crossings.sort((a, b) => a - b);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const from = Math.max(0, Math.ceil(crossings[k]!));
      const to = Math.min(width - 1, Math.floor(crossings[k + 1]!));
      if (to >= from) target.fill(value, y * width + from, y * width + to + 1);
    }
  }
  for (let i = 0; i < n; i++) drawLine(target, width, height, polygon[i]!, polygon[(i + 1) % n]!, value);
}
