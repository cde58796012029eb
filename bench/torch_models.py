#!/usr/bin/env python3
"""PyTorch reference for bench/train-step.js: one training iteration (forward, losses, backward, SGD step)
of the same models, structured as in /work/shared/SPEC-tricks.md §1f (MMSegmentation 0.x):

  unet:   UNet-S5-D16 (base_channels configurable) + FCNHead decode (in_index 4) and aux (in_index 3),
          each with CE x1.0 + Dice x3.0 (MMSeg 0.x DiceLoss: softmax, smooth 1, exponent 2).
  pspnet: ResNetV1c-50 D8 + PSPHead (pool scales 1, 2, 3, 6) + aux FCNHead on stage 3, CE (aux x0.4).

Logits are resized (bilinear, align_corners False) to the label size before the losses; SGD lr 0.01,
momentum 0.9, weight decay 5e-4. Prints one line `@@RESULT {"medianMs": ..., "samples": [...]}`.
  python3 bench/torch_models.py --model unet --base 16 --batch 4 --size 64 --classes 2 --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_module(cin, cout, kernel=3, stride=1, padding=None, dilation=1):
    """MMCV ConvModule with BN + ReLU: bias-free conv."""
    if padding is None:
        padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


# ----------------------------------------------------------------------------------------------
# UNet-S5-D16

class InterpConv(nn.Module):
    """Bilinear x2 (align_corners False) then a 1x1 ConvModule."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv_module(cin, cout, kernel=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False))


class UpConvBlock(nn.Module):
    def __init__(self, cin, skip, cout):
        super().__init__()
        self.upsample = InterpConv(cin, skip)
        self.convs = nn.Sequential(conv_module(2 * skip, cout), conv_module(cout, cout))

    def forward(self, skip, x):
        return self.convs(torch.cat([skip, self.upsample(x)], dim=1))


class UNet(nn.Module):
    def __init__(self, base, stages=5):
        super().__init__()
        widths = [base * 2 ** i for i in range(stages)]
        self.encoder = nn.ModuleList()
        for i, width in enumerate(widths):
            layers = [nn.MaxPool2d(2)] if i > 0 else []
            cin = 3 if i == 0 else widths[i - 1]
            layers += [conv_module(cin, width), conv_module(width, width)]
            self.encoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(UpConvBlock(widths[i], widths[i - 1], widths[i - 1]) for i in range(stages - 1, 0, -1))

    def forward(self, x):
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        outs = [x]
        for i, block in enumerate(self.decoder):
            x = block(skips[-2 - i], x)
            outs.append(x)
        return outs  # [16·base@1/16, ..., base@1/1]


class FCNHead(nn.Module):
    def __init__(self, cin, channels, classes, in_index):
        super().__init__()
        self.in_index = in_index
        self.convs = conv_module(cin, channels)
        self.dropout = nn.Dropout2d(0.1)
        self.conv_seg = nn.Conv2d(channels, classes, 1)

    def forward(self, features):
        return self.conv_seg(self.dropout(self.convs(features[self.in_index])))


# ----------------------------------------------------------------------------------------------
# PSPNet R50-D8

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, dilation, downsample):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = conv_module(cin, planes, kernel=1)
        self.conv2 = conv_module(planes, planes, kernel=3, stride=stride, dilation=dilation)
        self.conv3 = nn.Sequential(nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out))
        self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out)) if downsample else None

    def forward(self, x):
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


class ResNetV1c50D8(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_module(3, 32, stride=2), conv_module(32, 32), conv_module(32, 64), nn.MaxPool2d(3, 2, 1))
        cin = 64
        self.stages = nn.ModuleList()
        for planes, blocks, stride, dilation in [(64, 3, 1, 1), (128, 4, 2, 1), (256, 6, 1, 2), (512, 3, 1, 4)]:
            layers = []
            for b in range(blocks):
                # contract_dilation: the first block of a dilated stage uses half the dilation.
                d = dilation // 2 if (b == 0 and dilation > 1) else dilation
                layers.append(Bottleneck(cin, planes, stride if b == 0 else 1, d, downsample=(b == 0)))
                cin = planes * 4
            self.stages.append(nn.Sequential(*layers))

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class PSPHead(nn.Module):
    def __init__(self, cin=2048, channels=512, classes=19, scales=(1, 2, 3, 6)):
        super().__init__()
        self.scales = scales
        self.ppm = nn.ModuleList(conv_module(cin, channels, kernel=1) for _ in scales)
        self.bottleneck = conv_module(cin + len(scales) * channels, channels)
        self.dropout = nn.Dropout2d(0.1)
        self.conv_seg = nn.Conv2d(channels, classes, 1)

    def forward(self, features):
        x = features[3]
        size = x.shape[2:]
        pooled = [F.interpolate(conv(F.adaptive_avg_pool2d(x, s)), size=size, mode='bilinear', align_corners=False)
                  for s, conv in zip(self.scales, self.ppm)]
        return self.conv_seg(self.dropout(self.bottleneck(torch.cat([x] + pooled, dim=1))))


# ----------------------------------------------------------------------------------------------
# Losses (MMSeg 0.x)

def dice_loss(logits, labels, classes, ignore_index=255, smooth=1.0, exponent=2):
    probs = F.softmax(logits, dim=1)
    valid = (labels != ignore_index).float()
    one_hot = F.one_hot(labels.clamp(0, classes - 1), classes).permute(0, 3, 1, 2).float()
    total = 0.0
    for c in range(classes):
        p = probs[:, c].reshape(probs.shape[0], -1)
        t = one_hot[:, c].reshape(probs.shape[0], -1)
        v = valid.reshape(probs.shape[0], -1)
        num = torch.sum(p * t * v, dim=1) * 2 + smooth
        den = torch.sum(p.pow(exponent) + t.pow(exponent), dim=1) + smooth
        total = total + (1 - num / den)
    return (total / classes).mean()


def head_losses(logits, labels, classes, ce_weight, dice_weight):
    logits = F.interpolate(logits, size=labels.shape[1:], mode='bilinear', align_corners=False)
    loss = ce_weight * F.cross_entropy(logits, labels, ignore_index=255)
    if dice_weight:
        loss = loss + dice_weight * dice_loss(logits, labels, classes)
    return loss


class Segmentor(nn.Module):
    def __init__(self, backbone, decode, aux, classes, weights):
        super().__init__()
        self.backbone, self.decode, self.aux = backbone, decode, aux
        self.classes, self.weights = classes, weights

    def forward(self, images, labels):
        features = self.backbone(images)
        (dce, ddice), (ace, adice) = self.weights
        return (head_losses(self.decode(features), labels, self.classes, dce, ddice)
                + head_losses(self.aux(features), labels, self.classes, ace, adice))


def build(model, base, classes):
    if model == 'unet':
        return Segmentor(UNet(base), FCNHead(base, base, classes, 4), FCNHead(2 * base, base, classes, 3), classes,
                         ((1.0, 3.0), (1.0, 3.0)))
    if model == 'pspnet':
        return Segmentor(ResNetV1c50D8(), PSPHead(classes=classes), FCNHead(1024, 256, classes, 2), classes,
                         ((1.0, 0.0), (0.4, 0.0)))
    raise SystemExit(f'unknown model {model}')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--model', choices=['unet', 'pspnet'], required=True)
    parser.add_argument('--base', type=int, default=64)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--classes', type=int, default=2)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--task', choices=['train', 'slide', 'whole'], default='train',
                        help='train: one training iteration; slide / whole: inference (eval, no grad) of one image '
                             '--height x --width, slide with --crop / --stride windows batched --window-batch at a time')
    parser.add_argument('--height', type=int, default=584)
    parser.add_argument('--width', type=int, default=565)
    parser.add_argument('--crop', type=int, default=64)
    parser.add_argument('--stride', type=int, default=42)
    parser.add_argument('--window-batch', type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.task != 'train':
        return inference(args)
    model = build(args.model, args.base, args.classes).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1
    labels = torch.randint(0, args.classes, (args.batch, args.size, args.size))

    def step():
        optimizer.zero_grad()
        loss = model(images, labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(max(2, args.warmup)):  # the first two iterations allocate
        step()
    samples = []
    for _ in range(args.runs):
        start = time.perf_counter()
        step()
        samples.append((time.perf_counter() - start) * 1000)
    print('@@RESULT ' + json.dumps({'medianMs': statistics.median(samples), 'samples': samples, 'peakRssMb': peak_rss_mb()}))


def peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def slide_windows(height, width, crop, stride):
    """MMSegmentation's slide_inference windows (as core/src/models/inference.ts)."""
    grids_h = max(height - crop + stride - 1, 0) // stride + 1
    grids_w = max(width - crop + stride - 1, 0) // stride + 1
    windows = []
    for i in range(grids_h):
        for j in range(grids_w):
            y2, x2 = min(i * stride + crop, height), min(j * stride + crop, width)
            windows.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return windows


def inference(args):
    """Eval-mode logits of one image: whole, or summed over sliding windows (batched) and averaged."""
    model = build(args.model, args.base, args.classes).eval()
    image = torch.rand(1, 3, args.height, args.width) * 2 - 1

    def decode(x):
        features = model.backbone(x)
        logits = model.decode(features)
        return F.interpolate(logits, size=x.shape[2:], mode='bilinear', align_corners=False)

    def run():
        with torch.no_grad():
            if args.task == 'whole':
                return decode(image)
            windows = slide_windows(args.height, args.width, args.crop, args.stride)
            total = torch.zeros(1, args.classes, args.height, args.width)
            count = torch.zeros(1, 1, args.height, args.width)
            for start in range(0, len(windows), args.window_batch):
                chunk = windows[start:start + args.window_batch]
                logits = decode(torch.cat([image[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk]))
                for k, (y1, y2, x1, x2) in enumerate(chunk):
                    total[:, :, y1:y2, x1:x2] += logits[k:k + 1]
                    count[:, :, y1:y2, x1:x2] += 1
            return total / count

    for _ in range(max(1, args.warmup)):
        run()
    samples = []
    for _ in range(args.runs):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    print('@@RESULT ' + json.dumps({'medianMs': statistics.median(samples), 'samples': samples, 'peakRssMb': peak_rss_mb()}))


if __name__ == '__main__':
    main()
