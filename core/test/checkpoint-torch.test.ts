import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn, SegkitError } from '../src';
import { readCheckpoint } from '../src/checkpoint/segkit-checkpoint';
import {
  ALLOWED_TORCH_GLOBALS,
  convertCheckpoint,
  hwioToOihw,
  loadCheckpoint,
  oihwToHwio,
  PyDict,
  readCheckpointFile,
  readTorchCheckpoint,
  saveTorchCheckpoint,
  unpickle,
  writeTorchCheckpoint,
  writeTorchLayoutSafetensors,
  ZipArchive,
  type TensorData,
} from '../src/checkpoint';
import { errorMessage, recordingLogger } from '../src/testing';

const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'torch');
const fixture = (name: string) => path.join(FIXTURES, name);

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: number[];
}

/** The tiny model of make_fixtures.py, built from segkit's modules (keys 0.*, 1.*, 3.*). */
function tinyModel(outChannels = 4): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(3, outChannels, [3, 2], { padding: [1, 0] }),
    new nn.BatchNorm2d(outChannels),
    new nn.ReLU(),
    new nn.Conv2d(outChannels, 2, 1),
  ).eval();
}

const tinyFixture = () =>
  JSON.parse(fs.readFileSync(fixture('tiny_model.json'), 'utf8')) as {
    input_shape_nhwc: number[];
    input_nhwc: number[];
    logits_shape_nhwc: number[];
    logits_nhwc: number[];
    num_batches_tracked: number;
  };

/** Runs the tiny model on the fixture input and returns the logits (NHWC) and their shape. */
function tinyLogits(model: nn.Sequential): { shape: number[]; values: number[] } {
  const expected = tinyFixture();
  return tf.tidy(() => {
    const logits = model.forward(tf.tensor(expected.input_nhwc, expected.input_shape_nhwc));
    return { shape: logits.shape, values: Array.from(logits.dataSync()) };
  });
}

function expectLogitsOfPyTorch(model: nn.Sequential): void {
  const expected = tinyFixture();
  const { shape, values } = tinyLogits(model);
  expect(shape).to.deep.equal(expected.logits_shape_nhwc);
  values.forEach((value, i) => expect(value, `logit ${i}`).to.be.closeTo(expected.logits_nhwc[i]!, 1e-4));
}

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-torch-'));

describe('checkpoint: reading PyTorch .pth files', () => {
  it('reads every storage type torch.save writes, converting to float32 / int32', async () => {
    const expected = JSON.parse(fs.readFileSync(fixture('tensors.json'), 'utf8')) as Record<string, ExpectedTensor>;
    const checkpoint = await readTorchCheckpoint(fixture('tensors.pth'));
    expect([...checkpoint.tensors.keys()]).to.deep.equal(Object.keys(expected));
    expect(checkpoint.weightsKey).to.equal('');
    expect(checkpoint.meta).to.equal(null);
    for (const [name, want] of Object.entries(expected)) {
      const tensor = checkpoint.tensors.get(name)!;
      expect(tensor.shape, name).to.deep.equal(want.shape);
      expect(tensor.dtype, name).to.equal(want.dtype.startsWith('float') || want.dtype === 'bfloat16' ? 'float32' : 'int32');
      expect(Array.from(tensor.data), name).to.deep.equal(want.values);
    }
  });

  it('decodes float16 and bfloat16 exactly, subnormals and signed zero included', async () => {
    const { tensors } = await readTorchCheckpoint(fixture('tensors.pth'));
    // 6.1035156e-05 is float16's smallest normal (2^-14), 5.9604645e-08 its smallest subnormal (2^-24).
    expect(Array.from(tensors.get('f16')!.data)).to.deep.equal([0.5, -1.25, 65504, 2 ** -14, 2 ** -24, -0]);
    expect(Array.from(tensors.get('bf16')!.data).slice(0, 2)).to.deep.equal([1, -3.140625]);
    expect(Array.from(tensors.get('i64')!.data)).to.deep.equal([0, -1, 2147483647, -2147483648]);
    expect(Array.from(tensors.get('flags')!.data)).to.deep.equal([1, 0, 1]);
    expect(tensors.get('scalar')!.shape).to.deep.equal([]);
    expect(Array.from(tensors.get('scalar')!.data)).to.deep.equal([42]);
  });

  it('materialises non-contiguous views (transpose, offset slice) and tensors sharing a storage', async () => {
    const { tensors } = await readTorchCheckpoint(fixture('tensors.pth'));
    // base = arange(12).reshape(3, 4); base.t() has strides (1, 4); base[1:, 1:3] starts at offset 5.
    expect(tensors.get('transposed')!.shape).to.deep.equal([4, 3]);
    expect(Array.from(tensors.get('transposed')!.data)).to.deep.equal([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(Array.from(tensors.get('sliced')!.data)).to.deep.equal([5, 6, 9, 10]);
    // shared = arange(10) * 0.5; shared[:6].view(2, 3) and shared[4:] read the same storage.
    expect(Array.from(tensors.get('shared_a')!.data)).to.deep.equal([0, 0.5, 1, 1.5, 2, 2.5]);
    expect(Array.from(tensors.get('shared_b')!.data)).to.deep.equal([2, 2.5, 3, 3.5, 4, 4.5]);
    // 17 tensors, 14 storages: the transpose and the slice share `base`, shared_a and shared_b share `shared`.
    const archive = await ZipArchive.open(fixture('tensors.pth'));
    const records = archive.names().filter((name) => name.includes('/data/'));
    await archive.close();
    expect(records).to.have.length(14);
  });

  it('reads an MMCV checkpoint dict: weights under state_dict, meta as JSON, the optimizer noted and skipped', async () => {
    const checkpoint = await readTorchCheckpoint(fixture('mmcv_checkpoint.pth'));
    expect(checkpoint.weightsKey).to.equal('state_dict');
    expect(checkpoint.meta).to.deep.equal({
      CLASSES: ['road', 'car'],
      PALETTE: [
        [128, 64, 128],
        [0, 0, 142],
      ],
      iter: 40000,
      mmcv_version: '1.7.0',
      lr: 0.01,
      seed: null,
    });
    expect(checkpoint.notes).to.deep.equal(['optimizer state ignored (only the weights are loaded)']);
    expect([...checkpoint.tensors.keys()]).to.include('module.1.num_batches_tracked');
    expect([...checkpoint.tensors.keys()].every((key) => key.startsWith('module.'))).to.equal(true);
  });

  it("takes the weights from a checkpoint's `model` entry when there is no state_dict", async () => {
    const checkpoint = await readTorchCheckpoint(fixture('model_key.pth'));
    expect(checkpoint.weightsKey).to.equal('model');
    expect(Array.from(checkpoint.tensors.get('w')!.data)).to.deep.equal([3, 3]);
  });

  it('refuses an int64 value outside the int32 range, naming the file and the tensor', async () => {
    const message = await errorMessage(() => readTorchCheckpoint(fixture('int64_overflow.pth')));
    expect(message).to.contain(fixture('int64_overflow.pth')).and.to.contain("tensor 'big'").and.to.contain('1099511627776');
  });

  it('refuses a pickle that names os.system, without running it', async () => {
    const marker = path.resolve('segkit-pwned-marker');
    const message = await errorMessage(() => readTorchCheckpoint(fixture('forbidden_global.pth')));
    expect(message).to.contain(fixture('forbidden_global.pth')).and.to.contain("'os.system'").and.to.contain('refusing');
    expect(fs.existsSync(marker)).to.equal(false);
    expect(ALLOWED_TORCH_GLOBALS.has('os.system')).to.equal(false);
  });

  it('rejects files that are not checkpoints, and missing files, with the path', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'notes.pth'), 'just text');
    expect(await errorMessage(() => readTorchCheckpoint(path.join(dir, 'notes.pth')))).to.contain('not a PyTorch checkpoint');
    expect(await errorMessage(() => readTorchCheckpoint(path.join(dir, 'absent.pth')))).to.contain(`checkpoint not found: ${path.join(dir, 'absent.pth')}`);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('checkpoint: the restricted unpickler', () => {
  const fromHex = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
  const options = {
    source: 'test.pkl',
    allowedGlobals: ALLOWED_TORCH_GLOBALS,
    call: () => {
      throw new Error('no call expected');
    },
    persistentLoad: () => null,
  };

  it("reads Python's protocol-4 output (FRAME, MEMOIZE, SHORT_BINUNICODE, LONG1, negative BININT)", () => {
    // pickle.dumps({'a': [1, 2.5, None, True], 'b': (1, 'é'), 'c': 2**70, 'd': -300}, protocol=4)
    const value = unpickle(
      fromHex('8004953f000000000000007d94288c0161945d94284b014740040000000000004e88658c0162944b018c02c3a99486948c0163948a090000000000000000408c0164944ad4feffff752e'),
      options,
    ) as PyDict;
    expect(value).to.be.instanceOf(PyDict);
    expect(value.get('a')).to.deep.equal([1, 2.5, null, true]);
    expect(value.get('b')).to.deep.equal([1, 'é']);
    expect(value.get('c')).to.equal(2n ** 70n);
    expect(value.get('d')).to.equal(-300);
  });

  it('refuses STACK_GLOBAL builtins.eval before resolving it', () => {
    // pickle.dumps(eval, protocol=4)
    expect(() => unpickle(fromHex('80049515000000000000008c086275696c74696e73948c046576616c9493942e'), options)).to.throw(SegkitError, "test.pkl: refusing to unpickle the global 'builtins.eval'");
  });

  it('reports truncated data and unsupported opcodes with the byte position', () => {
    expect(() => unpickle(fromHex('80027d'), options)).to.throw(SegkitError, 'pickle data ends unexpectedly at byte 3');
    // INST ('i') builds arbitrary objects in protocol 0: never supported.
    expect(() => unpickle(Buffer.from('\x80\x02i', 'latin1'), options)).to.throw(SegkitError, "unsupported pickle opcode 0x69 ('i') at byte 2");
  });
});

describe('checkpoint: layout and loading into segkit modules', () => {
  it('transposes conv weights OIHW ⇄ HWIO', () => {
    // OIHW [2, 3, 2, 1] holding o·6 + i·2 + kh: HWIO [2, 1, 3, 2] at [kh, 0, i, o] holds the same value.
    const oihw: TensorData = { dtype: 'float32', shape: [2, 3, 2, 1], data: Float32Array.from({ length: 12 }, (_, v) => v) };
    const hwio = oihwToHwio(oihw);
    expect(hwio.shape).to.deep.equal([2, 1, 3, 2]);
    const expected: number[] = [];
    for (let kh = 0; kh < 2; kh++) for (let i = 0; i < 3; i++) for (let o = 0; o < 2; o++) expected.push(o * 6 + i * 2 + kh);
    expect(Array.from(hwio.data)).to.deep.equal(expected);
    const back = hwioToOihw(hwio);
    expect(back.shape).to.deep.equal([2, 3, 2, 1]);
    expect(Array.from(back.data)).to.deep.equal(Array.from(oihw.data));
  });

  it("loads PyTorch's tiny model and reproduces PyTorch's logits within 1e-4", async () => {
    const before = tf.memory().numTensors;
    const model = tinyModel();
    const report = await loadCheckpoint(model, fixture('tiny_model.pth'), { strict: true });
    expect(report.missingKeys).to.deep.equal([]);
    expect(report.unexpectedKeys).to.deep.equal([]);
    expect(report.message).to.equal('');
    expect(report.loadedKeys).to.have.length(9);
    expectLogitsOfPyTorch(model);
    const bn = model.at<nn.BatchNorm2d>(1);
    expect(bn.numBatchesTracked!.dataSync()[0]).to.equal(tinyFixture().num_batches_tracked);
    model.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it("loads an MMCV checkpoint of a DataParallel model: `module.` stripped, optimizer skipped, same logits", async () => {
    const before = tf.memory().numTensors;
    const model = tinyModel();
    const logger = recordingLogger();
    const report = await loadCheckpoint(model, fixture('mmcv_checkpoint.pth'), { strict: true, logger });
    expect(report.meta!.CLASSES).to.deep.equal(['road', 'car']);
    expect(report.notes).to.deep.equal(['optimizer state ignored (only the weights are loaded)']);
    expect(logger.infos[0]).to.equal(`load checkpoint from local path: ${fixture('mmcv_checkpoint.pth')}`);
    expect(logger.warnings).to.deep.equal([]);
    expectLogitsOfPyTorch(model);
    model.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it("reports missing and unexpected keys as MMCV does (a warning with a table), and refuses them when strict", async () => {
    const before = tf.memory().numTensors;
    // One layer more than the checkpoint (4.*) and, with prefix '0', only the first conv's keys are kept.
    const model = new nn.Sequential(new nn.Conv2d(3, 4, [3, 2], { padding: [1, 0] }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Conv2d(4, 2, 1), new nn.Conv2d(2, 2, 1)).eval();
    const logger = recordingLogger();
    const report = await loadCheckpoint(model, fixture('tiny_model.pth'), { logger });
    expect(report.missingKeys).to.deep.equal(['4.weight', '4.bias']);
    expect(report.unexpectedKeys).to.deep.equal([]);
    expect(report.message).to.equal(
      [
        'The model and loaded state dict do not match exactly',
        '',
        'missing keys in source state_dict: 4.weight, 4.bias',
        '',
        'status   key       checkpoint shape  model shape',
        'missing  4.weight  -                 [2,2,1,1]',
        'missing  4.bias    -                 [2]',
      ].join('\n'),
    );
    expect(logger.warnings).to.deep.equal([`${fixture('tiny_model.pth')}: ${report.message}`]);
    const strict = await errorMessage(() => loadCheckpoint(model, fixture('tiny_model.pth'), { strict: true }));
    expect(strict).to.contain('missing keys in source state_dict: 4.weight, 4.bias');

    const bnOnly = new nn.Sequential(new nn.Conv2d(3, 4, [3, 2], { padding: [1, 0] }), new nn.BatchNorm2d(4)).eval();
    const partial = await loadCheckpoint(bnOnly, fixture('tiny_model.pth'), {});
    expect(partial.unexpectedKeys).to.deep.equal(['3.weight', '3.bias']);
    expect(partial.message).to.contain('unexpected key in source state_dict: 3.weight, 3.bias').and.to.contain('unexpected  3.weight  [2,4,1,1]');
    model.dispose();
    bnOnly.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('refuses a shape mismatch, naming the key and both shapes, and leaves the model untouched', async () => {
    const before = tf.memory().numTensors;
    const model = tinyModel(5);
    const weightBefore = Array.from(model.at<nn.Conv2d>(0).weight.dataSync());
    const message = await errorMessage(() => loadCheckpoint(model, fixture('tiny_model.pth')));
    expect(message).to.contain(fixture('tiny_model.pth')).and.to.contain("shape mismatch (shapes in PyTorch's layout)");
    expect(message).to.contain('0.weight: checkpoint [4,3,3,2], model [5,3,3,2]');
    expect(message).to.contain('1.running_mean: checkpoint [4], model [5]');
    expect(Array.from(model.at<nn.Conv2d>(0).weight.dataSync())).to.deep.equal(weightBefore);
    model.dispose();
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });
});

describe('checkpoint: writing .pth and PyTorch-layout safetensors', () => {
  it('round-trips float32 and int32 tensors (stored as int64) with MMCV meta', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'out.pth');
    const tensors = new Map<string, TensorData>([
      ['conv.weight', { dtype: 'float32', shape: [2, 1, 1, 2], data: Float32Array.from([1.5, -2, 1e-7, 3e8]) }],
      ['bn.num_batches_tracked', { dtype: 'int32', shape: [], data: Int32Array.from([-7]) }],
      ['empty', { dtype: 'float32', shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const meta = { CLASSES: ['road', 'car'], PALETTE: [[128, 64, 128], [0, 0, 142]], iter: 40000, nested: { lr: 0.01, flag: true, none: null } };
    writeTorchCheckpoint(file, tensors, { meta });
    expect(fs.readdirSync(dir)).to.deep.equal(['out.pth']);
    const back = await readTorchCheckpoint(file);
    expect(back.weightsKey).to.equal('state_dict');
    expect(back.meta).to.deep.equal(meta);
    expect([...back.tensors.keys()]).to.deep.equal([...tensors.keys()]);
    for (const [key, tensor] of tensors) {
      expect(back.tensors.get(key)!.shape, key).to.deep.equal(tensor.shape);
      expect(back.tensors.get(key)!.dtype, key).to.equal(tensor.dtype);
      expect(Array.from(back.tensors.get(key)!.data), key).to.deep.equal(Array.from(tensor.data));
    }
    // The int buffer went to disk as 8-byte int64 (LongStorage), as PyTorch stores num_batches_tracked.
    const archive = await ZipArchive.open(file);
    expect(archive.names()).to.deep.equal(['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/data/1', 'archive/data/2', 'archive/version']);
    expect(archive.size('archive/data/1')).to.equal(8);
    expect(Buffer.from(await archive.read('archive/version')).toString()).to.equal('3\n');
    await archive.close();
    fs.rmSync(dir, { recursive: true });
  });

  it('saves a segkit model as a .pth in PyTorch layout that loads back to the same logits', async () => {
    const before = tf.memory().numTensors;
    const dir = tempDir();
    const model = tinyModel();
    await loadCheckpoint(model, fixture('tiny_model.pth'), { strict: true });
    await saveTorchCheckpoint(path.join(dir, 'segkit.pth'), model, { CLASSES: ['road', 'car'], iter: 12 });
    // Same keys, shapes and values as the file PyTorch wrote.
    const original = await readTorchCheckpoint(fixture('tiny_model.pth'));
    const written = await readTorchCheckpoint(path.join(dir, 'segkit.pth'));
    expect(written.meta).to.deep.equal({ CLASSES: ['road', 'car'], iter: 12 });
    expect([...written.tensors.keys()]).to.deep.equal([...original.tensors.keys()]);
    for (const [key, tensor] of original.tensors) {
      expect(written.tensors.get(key)!.shape, key).to.deep.equal(tensor.shape);
      expect(Array.from(written.tensors.get(key)!.data), key).to.deep.equal(Array.from(tensor.data));
    }
    const reloaded = tinyModel();
    await loadCheckpoint(reloaded, path.join(dir, 'segkit.pth'), { strict: true });
    expectLogitsOfPyTorch(reloaded);
    model.dispose();
    reloaded.dispose();
    fs.rmSync(dir, { recursive: true });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('converts .pth → segkit safetensors → PyTorch-layout safetensors → .pth without changing a value', async () => {
    const before = tf.memory().numTensors;
    const dir = tempDir();
    const segkitFile = path.join(dir, 'model.safetensors');
    const torchLayoutFile = path.join(dir, 'model-torch.safetensors');
    const backFile = path.join(dir, 'back.pth');
    const converted = await convertCheckpoint(fixture('mmcv_checkpoint.pth'), segkitFile);
    expect(converted.tensors).to.equal(9);
    // segkit's own reader sees HWIO weights and the MMCV meta.
    const segkit = readCheckpoint(segkitFile);
    expect(segkit.weights.get('module.0.weight')!.shape).to.deep.equal([3, 2, 3, 4]);
    expect((segkit.meta as unknown as { CLASSES: string[] }).CLASSES).to.deep.equal(['road', 'car']);
    segkit.dispose();
    await convertCheckpoint(segkitFile, torchLayoutFile, { layout: 'torch' });
    const torchLayout = await readCheckpointFile(torchLayoutFile);
    expect(torchLayout.layout).to.equal('torch');
    expect(torchLayout.tensors.get('module.0.weight')!.shape).to.deep.equal([4, 3, 3, 2]);
    await convertCheckpoint(torchLayoutFile, backFile);
    const original = await readTorchCheckpoint(fixture('mmcv_checkpoint.pth'));
    const back = await readTorchCheckpoint(backFile);
    for (const [key, tensor] of original.tensors) expect(Array.from(back.tensors.get(key)!.data), key).to.deep.equal(Array.from(tensor.data));
    expect(back.meta!.iter).to.equal(40000);
    // A PyTorch-layout safetensors loads into a segkit model like the .pth.
    const model = tinyModel();
    await loadCheckpoint(model, torchLayoutFile, { strict: true });
    expectLogitsOfPyTorch(model);
    model.dispose();
    expect(await errorMessage(() => convertCheckpoint(fixture('tiny_model.pth'), path.join(dir, 'x.onnx')))).to.contain('expected a .pth or .safetensors destination');
    fs.rmSync(dir, { recursive: true });
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('writeTorchLayoutSafetensors marks the file format pt with OIHW weights', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'w.safetensors');
    writeTorchLayoutSafetensors(file, new Map([['w', oihwToHwio({ dtype: 'float32', shape: [1, 2, 1, 1], data: Float32Array.from([5, 6]) })]]), 'segkit');
    const contents = await readCheckpointFile(file);
    expect(contents.layout).to.equal('torch');
    expect(contents.tensors.get('w')!.shape).to.deep.equal([1, 2, 1, 1]);
    expect(Array.from(contents.tensors.get('w')!.data)).to.deep.equal([5, 6]);
    fs.rmSync(dir, { recursive: true });
  });
});
