import * as tf from '@tensorflow/tfjs-core';
import { packGeometry, type ConvEngine, type WindowGeometry } from './engine';
import { runFloat32, type KernelArgs, type ReplacementKernel } from './kernel-registry';

type Shape4D = [number, number, number, number];

/** tfjs's Conv2DInfo (from computeConv2DInfo / computePool2DInfo) as the engines' geometry. */
export function windowGeometry(info: tf.backend_util.Conv2DInfo): WindowGeometry {
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kH: info.filterHeight,
    kW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    dilH: info.dilationHeight,
    dilW: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Conv2DInfo for a conv kernel's attributes; null for NCHW (left to the fallback). */
export function convInfo(inShape: readonly number[], filterShape: readonly number[], attrs: KernelArgs['attrs'], depthwise = false): tf.backend_util.Conv2DInfo | null {
  if (attrs.dataFormat === 'NCHW') return null;
  return tf.backend_util.computeConv2DInfo(inShape as Shape4D, filterShape as Shape4D, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, depthwise);
}

/** The convolution trio (forward, grad-input, grad-filter) on any engine. */
export function convKernels(engine: ConvEngine): Record<string, ReplacementKernel> {
  return {
    [tf.Conv2D]: (args, fallback) => {
      const { x, filter } = args.inputs;
      const info = convInfo(x.shape, filter.shape, args.attrs);
      const geometry = info && packGeometry(windowGeometry(info));
      return (geometry && runFloat32(args, info.outShape, [x, filter], ([xv, fv], out) => engine.conv2d(xv, fv, out, geometry))) ?? fallback();
    },
    [tf.Conv2DBackpropInput]: (args, fallback) => {
      const { dy, filter } = args.inputs;
      const info = convInfo(args.attrs.inputShape, filter.shape, args.attrs);
      const geometry = info && packGeometry(windowGeometry(info));
      return (geometry && runFloat32(args, info.inShape, [dy, filter], ([dyv, fv], dx) => engine.conv2dBackpropInput(dyv, fv, dx, geometry))) ?? fallback();
    },
    [tf.Conv2DBackpropFilter]: (args, fallback) => {
      const { x, dy } = args.inputs;
      const info = convInfo(x.shape, args.attrs.filterShape, args.attrs);
      const geometry = info && packGeometry(windowGeometry(info));
      return (geometry && runFloat32(args, args.attrs.filterShape, [x, dy], ([xv, dyv], dw) => engine.conv2dBackpropFilter(xv, dyv, dw, geometry))) ?? fallback();
    },
  };
}
