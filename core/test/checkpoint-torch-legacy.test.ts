import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { nn } from '../src';
import { ALLOWED_TORCH_GLOBALS, loadCheckpoint, readCheckpointFile, readTorchCheckpoint, readTorchCheckpointMeta, unpickleAt } from '../src/checkpoint';
import { errorMessage } from '../src/testing';

const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'torch');
const fixture = (name: string) => path.join(FIXTURES, name);
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-legacy-'));

interface ExpectedTensor {
  dtype?: string;
  shape: number[];
  values: number[];
}
const expectedOf = (name: string) => JSON.parse(fs.readFileSync(fixture(name), 'utf8')) as Record<string, ExpectedTensor>;

/** torch.save's legacy head as hand-written pickles: magic number (LONG1), protocol version 1001, an empty sys_info. */
const LEGACY_HEAD = Buffer.from('80028a0a6cfc9c46f9206aa850192e' + '80024de9032e' + '80027d2e', 'hex');

describe('checkpoint: reading legacy (pre-1.6) torch.save files', () => {
  it('reads every storage type, views and a shared storage exactly as the zip format gives them', async () => {
    const expected = expectedOf('tensors.json');
    const legacy = await readTorchCheckpoint(fixture('legacy_tensors.pth'));
    expect([...legacy.tensors.keys()]).to.deep.equal(Object.keys(expected));
    for (const [name, want] of Object.entries(expected)) {
      const tensor = legacy.tensors.get(name)!;
      expect(tensor.shape, name).to.deep.equal(want.shape);
      expect(tensor.dtype, name).to.equal(want.dtype!.startsWith('float') || want.dtype === 'bfloat16' ? 'float32' : 'int32');
      expect(Array.from(tensor.data), name).to.deep.equal(want.values);
    }
    // base = arange(12).reshape(3, 4): its transpose and an offset slice; shared = arange(10) * 0.5 read by two tensors.
    expect(Array.from(legacy.tensors.get('transposed')!.data)).to.deep.equal([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(Array.from(legacy.tensors.get('sliced')!.data)).to.deep.equal([5, 6, 9, 10]);
    expect(Array.from(legacy.tensors.get('shared_b')!.data)).to.deep.equal([2, 2.5, 3, 3.5, 4, 4.5]);
    expect(Array.from(legacy.tensors.get('f16')!.data)).to.deep.equal([0.5, -1.25, 65504, 2 ** -14, 2 ** -24, -0]);
    const zip = await readTorchCheckpoint(fixture('tensors.pth'));
    for (const [name, tensor] of zip.tensors) expect(Array.from(legacy.tensors.get(name)!.data), name).to.deep.equal(Array.from(tensor.data));
  });

  it('reads storage views (view_metadata of PyTorch < 0.4) as torch.load does', async () => {
    const expected = expectedOf('legacy_storage_views.json');
    const { tensors } = await readTorchCheckpoint(fixture('legacy_storage_views.pth'));
    // root = arange(10) * 1.5 - 3; a = view root[2:7] strided (1, 2) from offset 1; b, b_row over view root[6:10].
    expect(Array.from(tensors.get('a')!.data)).to.deep.equal([1.5, 4.5, 3, 6]);
    expect(Array.from(tensors.get('b')!.data)).to.deep.equal([6, 7.5, 9, 10.5]);
    for (const [name, want] of Object.entries(expected)) {
      expect(tensors.get(name)!.shape, name).to.deep.equal(want.shape);
      expect(Array.from(tensors.get(name)!.data), name).to.deep.equal(want.values);
    }
  });

  it('reads a small legacy state dict', async () => {
    const { tensors, weightsKey, notes } = await readTorchCheckpoint(fixture('legacy.pth'));
    expect(weightsKey).to.equal('');
    expect(notes).to.deep.equal([]);
    expect([...tensors.keys()]).to.deep.equal(['w']);
    expect(Array.from(tensors.get('w')!.data)).to.deep.equal([1, 1]);
  });

  it("loads an MMCV-style legacy checkpoint ({meta, state_dict, optimizer}) and reproduces PyTorch's logits", async () => {
    const before = tf.memory().numTensors;
    const checkpoint = await readTorchCheckpoint(fixture('legacy_mmcv_checkpoint.pth'));
    expect(checkpoint.weightsKey).to.equal('state_dict');
    expect(checkpoint.meta).to.deep.equal({ CLASSES: ['road', 'car'], PALETTE: [[128, 64, 128], [0, 0, 142]], iter: 40000, mmcv_version: '1.7.0', lr: 0.01, seed: null });
    expect(checkpoint.notes).to.deep.equal(['optimizer state ignored (only the weights are loaded)']);
    expect(await readTorchCheckpointMeta(fixture('legacy_mmcv_checkpoint.pth'))).to.deep.equal(checkpoint.meta);
    // The same weights as the zip-format MMCV checkpoint written from the same model.
    const zip = await readTorchCheckpoint(fixture('mmcv_checkpoint.pth'));
    expect([...checkpoint.tensors.keys()]).to.deep.equal([...zip.tensors.keys()]);
    for (const [key, tensor] of zip.tensors) expect(Array.from(checkpoint.tensors.get(key)!.data), key).to.deep.equal(Array.from(tensor.data));

    const model = new nn.Sequential(new nn.Conv2d(3, 4, [3, 2], { padding: [1, 0] }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Conv2d(4, 2, 1)).eval();
    const report = await loadCheckpoint(model, fixture('legacy_mmcv_checkpoint.pth'), { strict: true });
    expect(report.loadedKeys).to.have.length(9);
    const tiny = JSON.parse(fs.readFileSync(fixture('tiny_model.json'), 'utf8')) as { input_nhwc: number[]; input_shape_nhwc: number[]; logits_nhwc: number[]; num_batches_tracked: number };
    const logits = tf.tidy(() => model.forward(tf.tensor(tiny.input_nhwc, tiny.input_shape_nhwc)));
    const values = Array.from(await logits.data());
    logits.dispose();
    values.forEach((value, i) => expect(value, `logit ${i}`).to.be.closeTo(tiny.logits_nhwc[i]!, 1e-4));
    expect(Array.from(await model.at<nn.BatchNorm2d>(1).numBatchesTracked!.data())).to.deep.equal([tiny.num_batches_tracked]);
    model.dispose();
    // readCheckpointFile (what load_from and `segkit convert checkpoint` use) takes the legacy format too.
    const contents = await readCheckpointFile(fixture('legacy_mmcv_checkpoint.pth'));
    expect(contents.format).to.equal('pth');
    expect(contents.tensors.get('module.0.weight')!.shape).to.deep.equal([4, 3, 3, 2]);
    expect(tf.memory().numTensors, 'tensors left behind').to.equal(before);
  });

  it('reads pickles larger than the first 1 MiB it looks at (the prefix grows until they fit)', async () => {
    const dir = tempDir();
    const bytes = fs.readFileSync(fixture('legacy.pth'));
    // Find the object pickle's STOP with the unpickler itself, then add `'note': <3 MB string>` to the dict before it.
    const permissive = { source: 'legacy.pth', allowedGlobals: ALLOWED_TORCH_GLOBALS, call: () => null, persistentLoad: () => null };
    let end = 0;
    for (let i = 0; i < 4; i++) end = unpickleAt(bytes, end, permissive).end;
    const note = 'x'.repeat(3 << 20);
    const length = (n: number) => {
      const out = Buffer.alloc(4);
      out.writeUInt32LE(n);
      return out;
    };
    const entry = Buffer.concat([Buffer.from('X'), length(4), Buffer.from('note'), Buffer.from('X'), length(note.length), Buffer.from(note), Buffer.from('s')]);
    const file = path.join(dir, 'big-pickle.pth');
    fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, end - 1), entry, bytes.subarray(end - 1)]));
    const checkpoint = await readTorchCheckpoint(file);
    expect(Array.from(checkpoint.tensors.get('w')!.data)).to.deep.equal([1, 1]);
    expect(checkpoint.notes).to.deep.equal(["entry 'note' is not a tensor and was ignored"]);
    fs.rmSync(dir, { recursive: true });
  });

  it('a file cut off in its storage data or in its pickles is an error naming the file and what is missing', async () => {
    const dir = tempDir();
    const whole = fs.readFileSync(fixture('legacy_tensors.pth'));
    const cut = path.join(dir, 'cut.pth');
    fs.writeFileSync(cut, whole.subarray(0, whole.length - 3));
    const message = await errorMessage(() => readTorchCheckpoint(cut));
    expect(message).to.match(new RegExp(`^${cut.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the legacy checkpoint is cut off: the storage '\\d+' needs bytes \\d+\\.\\.${whole.length}, the file has ${whole.length - 3}$`));
    fs.writeFileSync(cut, whole.subarray(0, 200));
    expect(await errorMessage(() => readTorchCheckpoint(cut))).to.contain(cut).and.to.match(/pickle data ends unexpectedly at byte \d+$/);
    fs.rmSync(dir, { recursive: true });
  });

  it("a storage whose on-disk element count disagrees with the pickle is an error naming the storage", async () => {
    const dir = tempDir();
    const bytes = Buffer.from(fs.readFileSync(fixture('legacy.pth')));
    // legacy.pth ends with its one storage: int64 element count 2, then two float32 ones.
    expect(bytes.readBigInt64LE(bytes.length - 16)).to.equal(2n);
    bytes.writeBigInt64LE(3n, bytes.length - 16);
    const file = path.join(dir, 'miscounted.pth');
    fs.writeFileSync(file, bytes);
    expect(await errorMessage(() => readTorchCheckpoint(file))).to.match(/miscounted\.pth: the storage '\d+' holds 3 elements on disk, but the pickle says 2$/);
    fs.rmSync(dir, { recursive: true });
  });

  it('refuses a global outside the allow-list in a legacy object pickle, without running it', async () => {
    const dir = tempDir();
    const command = Buffer.from('touch segkit-legacy-pwned');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(command.length);
    const object = Buffer.concat([Buffer.from('\x80\x02cos\nsystem\nX', 'latin1'), length, command, Buffer.from('\x85R.', 'latin1')]);
    const file = path.join(dir, 'evil.pth');
    fs.writeFileSync(file, Buffer.concat([LEGACY_HEAD, object]));
    const message = await errorMessage(() => readTorchCheckpoint(file));
    expect(message).to.equal(`${file} (object pickle): refusing to unpickle the global 'os.system': only tensors, storages and plain containers are loaded, and nothing in a checkpoint is executed`);
    expect(fs.existsSync(path.resolve('segkit-legacy-pwned'))).to.equal(false);
    fs.rmSync(dir, { recursive: true });
  });

  it('a pickle without the magic number, and a tar archive of PyTorch < 0.4, are clear errors', async () => {
    const dir = tempDir();
    const plainPickle = path.join(dir, 'plain.pth');
    fs.writeFileSync(plainPickle, Buffer.from('80024b052e', 'hex')); // pickle.dumps(5, protocol=2)
    expect(await errorMessage(() => readTorchCheckpoint(plainPickle))).to.equal(`${plainPickle}: not a PyTorch checkpoint (a pickle stream that does not start with torch.save's magic number)`);
    const wrongVersion = path.join(dir, 'version.pth');
    fs.writeFileSync(wrongVersion, Buffer.concat([LEGACY_HEAD.subarray(0, 15), Buffer.from('80024de8032e80027d2e', 'hex')]));
    expect(await errorMessage(() => readTorchCheckpoint(wrongVersion))).to.equal(`${wrongVersion}: legacy torch.save protocol version 1000, expected 1001`);
    const tar = Buffer.alloc(1024);
    tar.write('tensors', 0, 'latin1');
    tar.write('ustar', 257, 'latin1');
    const tarFile = path.join(dir, 'old.pth');
    fs.writeFileSync(tarFile, tar);
    expect(await errorMessage(() => readTorchCheckpoint(tarFile))).to.contain(`${tarFile}: a tar-format checkpoint of PyTorch < 0.4`).and.to.contain('torch.save(torch.load(');
    fs.rmSync(dir, { recursive: true });
  });
});
