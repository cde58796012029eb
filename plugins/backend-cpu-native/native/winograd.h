// Winograd minimal filtering F(m x m, 3 x 3) for stride-1, undilated 3x3 convolutions (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016): per output tile of m x m pixels, the
// (m+2)^2 transformed input values times the transformed filter replace 9 m^2 multiply-adds with
// (m+2)^2 (F(2,3): 2.25x fewer, F(4,3): 4x fewer). The products run as one GEMM per tile position
// ([tiles x inC] x [inC x outC]) on the dispatched micro-kernels.
#pragma once

#include "ops.h"

namespace segkit {

/** How conv2d / stride-1 conv2dBackpropInput compute a window (Winograd: 3x3 only). */
enum class ConvAlgorithm { Auto = 0, Im2col = 1, WinogradF2 = 2, WinogradF4 = 3, Direct = 4, PaddedGemm = 5 };

/** True for the windows Winograd computes: 3x3, stride 1, dilation 1 (any padding). */
bool winogradApplies(const WindowGeometry& g);

/** The algorithm for this convolution: the forced one (selectConvAlgorithm) or the measured heuristic. */
ConvAlgorithm chooseConvAlgorithm(const WindowGeometry& g);

/**
 * out = conv(x, filter) by Winograd F(tile x tile, 3 x 3), tile 2 or 4; winogradApplies(g) must hold.
 * With flippedSwappedFilter the filter is read as the spatially flipped, in/out-swapped filter of
 * grad-input (filter laid out [3, 3, g.outC, g.inC]).
 */
void winogradConv2d(const float* x, const float* filter, float* out, const WindowGeometry& g, int tile,
                    bool flippedSwappedFilter);

/**
 * The algorithm for this convolution's filter gradient (forced as for the forward pass): Direct (conv.cc's
 * directFilterGradient) where directFilterGradientApplies, and under auto also PaddedGemm (conv.cc's
 * paddedFilterGradient), for any stride-1 window where paddedFilterGradientPays.
 */
ConvAlgorithm chooseFilterGradientAlgorithm(const WindowGeometry& g);

/** Defined in conv.cc: whether g's filter gradient is faster as one GEMM over padded copies (auto only). */
bool paddedFilterGradientPays(const WindowGeometry& g);

/** Defined in conv.cc: whether conv.cc's direct convolution on the padded grid can compute g's forward pass. */
bool directConvolutionApplies(const WindowGeometry& g);

/** Defined in conv.cc: whether conv.cc's direct filter gradient (read from the image, padding skipped) can compute g's. */
bool directFilterGradientApplies(const WindowGeometry& g);

/** dFilter of conv(x, filter) = y from dy by Winograd F(tile x tile, 3 x 3) run backwards; winogradApplies(g) must hold. */
void winogradConv2dBackpropFilter(const float* x, const float* dy, float* dFilter, const WindowGeometry& g, int tile);

/** "auto", "im2col", "winograd2", "winograd4" or "direct": the algorithm forced for applicable convolutions. */
const char* convAlgorithmName();
bool selectConvAlgorithm(const char* name);

}  // namespace segkit
