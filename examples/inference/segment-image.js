#!/usr/bin/env node
// The high-level API in a script (MMSegmentation's init_segmentor / inference_segmentor):
//   node examples/inference/segment-image.js [CONFIG CHECKPOINT IMAGE]
// Defaults: the demo config, `npm run demo`'s checkpoint and the web demo's sample image. Prints each
// class's share of the pixels, then segments the same image given as RGBA pixels and checks the label maps agree.
const path = require('path');
const { initSegmentor, inferenceSegmentor, readImage } = require('@segkit/core');

const root = path.resolve(__dirname, '..', '..');
const [config, checkpoint, image] = process.argv.length >= 5
  ? process.argv.slice(2, 5)
  : [path.join(root, 'configs/demo/unet-s5-d16_tricks_64x64_synthetic-drive.ts'), path.join(root, 'work_dirs/demo/latest.safetensors'), path.join(root, 'examples/web-demo/sample.png')];

async function main() {
  // The checkpoint carries the classes and palette (and its config the test pipeline): no dataset folder needed.
  const segmentor = await initSegmentor(config, checkpoint, { backend: 'auto' });
  try {
    const { labels, probabilities, classes, palette } = await inferenceSegmentor(segmentor, image, { probabilities: true });
    const [height, width] = labels.shape;
    console.log(`${path.basename(image)}: ${width}×${height}, backend ${segmentor.kernel.backend}`);
    const numClasses = palette.length;
    for (let c = 0; c < numClasses; c++) {
      const pixels = labels.data.filter((label) => label === c).length;
      let confidence = 0;
      for (let p = 0; p < labels.data.length; p++) if (labels.data[p] === c) confidence += probabilities.data[p * numClasses + c];
      console.log(`  ${(classes?.[c] ?? `class ${c}`).padEnd(12)} rgb(${palette[c].join(',')})  ${((100 * pixels) / labels.data.length).toFixed(1)} % of pixels, mean probability ${pixels ? (confidence / pixels).toFixed(3) : '-'}`);
    }
    // The same image as pixels in memory (an ImageData-like { data, width, height }, RGB or RGBA).
    const rgb = await readImage(image, { order: 'rgb' });
    const fromPixels = await inferenceSegmentor(segmentor, { data: rgb.data, width, height });
    const same = fromPixels.labels.data.every((label, i) => label === labels.data[i]);
    console.log(`  pixels in memory give the same label map: ${same}`);
  } finally {
    segmentor.dispose();
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
