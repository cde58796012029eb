import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import * as protobuf from 'protobufjs';
import { createKernel, EventBus, SegkitError, type EventOf, type Kernel, type RunnerView } from '@segkit/core';
import { EventFileWriter, PROTO_DIR, TensorboardLoggerHook, crc32c, type TensorboardLoggerOptions, frameRecord, maskCrc, maskedCrc32c, plugin } from '../src';
import { encodeScalarEvent } from '../src/event-schema';

// ---------------------------------------------------------------- an event-file reader independent of the writer

/** Bit-by-bit CRC-32C (no table), so the check does not share code with the writer's table-driven one. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function referenceMask(crc: number): number {
  const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
  return (rotated + 0xa282ead8) % 2 ** 32;
}

/** Splits a TFRecord file into its records, checking both masked CRCs of every record and the file's end. */
function readRecords(file: string): Buffer[] {
  const bytes = fs.readFileSync(file);
  const records: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    expect(bytes.length - offset, `record header at byte ${offset}`).to.be.at.least(12);
    const lengthBytes = bytes.subarray(offset, offset + 8);
    expect(bytes.readUInt32LE(offset + 8), `length CRC at byte ${offset}`).to.equal(referenceMask(referenceCrc32c(lengthBytes)));
    const length = Number(lengthBytes.readBigUInt64LE(0));
    const data = bytes.subarray(offset + 12, offset + 12 + length);
    expect(data.length, `record data at byte ${offset}`).to.equal(length);
    expect(bytes.readUInt32LE(offset + 12 + length), `data CRC at byte ${offset}`).to.equal(referenceMask(referenceCrc32c(data)));
    records.push(data);
    offset += 12 + length + 4;
  }
  expect(offset).to.equal(bytes.length);
  return records;
}

interface DecodedEvent {
  wall_time: number;
  step: number;
  file_version?: string;
  summary?: { value: { tag: string; simple_value: number }[] };
}

let eventType: protobuf.Type | undefined;

/** Every Event of a file, decoded with the package's shipped .proto files through protobufjs. */
function readEvents(file: string): DecodedEvent[] {
  eventType ??= protobuf.loadSync(path.join(PROTO_DIR, 'event.proto')).lookupType('tensorboard.Event');
  return readRecords(file).map((record) => {
    const decoded = eventType!.toObject(eventType!.decode(record), { longs: Number, defaults: true, oneofs: false }) as Record<string, any>;
    const event: DecodedEvent = { wall_time: decoded.wallTime, step: decoded.step };
    if (decoded.fileVersion) event.file_version = decoded.fileVersion;
    if (decoded.summary) event.summary = { value: decoded.summary.value.map((v: any) => ({ tag: v.tag, simple_value: v.simpleValue })) };
    return event;
  });
}

/** The scalar events of a file as [step, tag, value] rows, after checking the file_version record. */
function readScalars(file: string, wallTime: number): [number, string, number][] {
  const [first, ...rest] = readEvents(file);
  expect(first).to.deep.equal({ wall_time: wallTime, step: 0, file_version: 'brain.Event:2' });
  return rest.map((event) => {
    expect(event.wall_time).to.equal(wallTime);
    expect(event.summary?.value, 'one value per event').to.have.length(1);
    const [value] = event.summary!.value;
    return [event.step, value!.tag, value!.simple_value];
  });
}

/** Expected rows with the values rounded to float32, as simple_value stores them. */
function asFloat32(rows: [number, string, number][]): [number, string, number][] {
  return rows.map(([step, tag, value]) => [step, tag, Math.fround(value)]);
}

// ---------------------------------------------------------------- fixtures

const WALL_TIME = 1764000000.5;
const clock = () => WALL_TIME;

function iterEnd(iter: number, maxIters: number, loss: number, stepTime: number): EventOf<'iter:end'> {
  return {
    type: 'iter:end', iter, maxIters,
    losses: { 'decode.loss_ce': loss, 'decode.acc_seg': 90 + iter, loss: loss * 2 },
    lrs: [{ group: 0, lr: 0.01 }, { group: 1, key: 'head', lr: 0.1 }, { group: 2, lr: 0.01 }, { group: 3, key: 'head', lr: 0.1 }],
    dataTime: 0.25 * iter, stepTime, memory: { numTensors: 10, numBytes: 100, rssMB: 500 + iter },
  };
}

function fakeRunner(workDir: string): RunnerView {
  return { workDir, timestamp: '20261128_030000', config: {}, maxIters: 5, iter: 0 } as unknown as RunnerView;
}

const OPTIONS: TensorboardLoggerOptions = { by_epoch: false, ignore_last: true, reset_flag: false };

/** The train rows one log point gives for the window of iterations `iters` (losses as iterEnd makes them). */
function trainRows(step: number, iters: number[], losses: number[], stepTimes: number[]): [number, string, number][] {
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return [
    [step, 'train/lr', 0.01],
    [step, 'train/lr_head', 0.1],
    [step, 'train/decode.loss_ce', mean(losses)],
    [step, 'train/decode.acc_seg', mean(iters.map((i) => 90 + i))],
    [step, 'train/loss', mean(losses.map((l) => l * 2))],
    [step, 'train/data_time', mean(iters.map((i) => 0.25 * i))],
    [step, 'train/time', mean(stepTimes)],
    [step, 'train/memory', 500 + step],
  ];
}

describe('@segkit/hook-tensorboard', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-tb-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('CRC-32C and TFRecord framing', () => {
    it('gives the standard check value and TensorFlow masking', () => {
      expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
      expect(crc32c(new Uint8Array(0))).to.equal(0);
      // 0xE3069283 rotated right by 15 bits is 0x2507C60D; + 0xA282EAD8 = 0xC78AB0E5 (mod 2^32).
      expect(maskCrc(0xe3069283)).to.equal(0xc78ab0e5);
      expect(maskedCrc32c(Buffer.from('123456789'))).to.equal(0xc78ab0e5);
      expect(maskCrc(0)).to.equal(0xa282ead8);
      // 32 bytes of 0xFF: a vector of RFC 3720 (iSCSI) B.4.
      expect(crc32c(new Uint8Array(32).fill(0xff))).to.equal(0x62a8ab43);
    });

    it('agrees with a bit-by-bit CRC-32C on every length up to 300 bytes', () => {
      const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff);
      for (let length = 0; length <= bytes.length; length++) {
        const slice = bytes.subarray(0, length);
        expect(crc32c(slice), `length ${length}`).to.equal(referenceCrc32c(slice));
        expect(maskedCrc32c(slice), `length ${length}`).to.equal(referenceMask(referenceCrc32c(slice)));
      }
    });

    it('frames a record as length, masked CRC of the length, data, masked CRC of the data', () => {
      const data = Buffer.from('123456789');
      const record = frameRecord(data);
      expect(record.length).to.equal(8 + 4 + 9 + 4);
      expect(record.subarray(0, 8).toString('hex')).to.equal('0900000000000000');
      expect(record.readUInt32LE(8)).to.equal(referenceMask(referenceCrc32c(record.subarray(0, 8))));
      expect(record.subarray(12, 21).toString()).to.equal('123456789');
      expect(record.readUInt32LE(21)).to.equal(0xc78ab0e5);
    });

    it('encodes a scalar Event with the field numbers of TensorFlow event.proto / summary.proto', () => {
      // Wire format by hand: Event{wall_time(1, fixed64) 1.5, step(2, varint) 7,
      // summary(5) {value(1) {tag(1) "a", simple_value(2, fixed32) 0.5}}}.
      const expected = [
        '09', '000000000000f83f', // wall_time = 1.5 (double, little-endian)
        '10', '07', // step = 7
        '2a', '0a', // summary, 10 bytes
        '0a', '08', // value, 8 bytes
        '0a', '01', '61', // tag = "a"
        '15', '0000003f', // simple_value = 0.5 (float, little-endian)
      ].join('');
      expect(Buffer.from(encodeScalarEvent(1.5, 7, ['a', 0.5])).toString('hex')).to.equal(expected);
    });
  });

  describe('EventFileWriter', () => {
    it('names the file events.out.tfevents.<unix seconds>.<hostname> and never overwrites one', () => {
      const first = new EventFileWriter(dir, clock);
      const second = new EventFileWriter(dir, clock);
      first.close();
      second.close();
      expect(path.basename(first.file)).to.equal(`events.out.tfevents.1764000000.${os.hostname()}`);
      expect(path.basename(second.file)).to.equal(`events.out.tfevents.1764000000.${os.hostname()}.1`);
      expect(readEvents(first.file)).to.deep.equal([{ wall_time: WALL_TIME, step: 0, file_version: 'brain.Event:2' }]);
      expect(() => first.addScalars(1, [['x', 1]])).to.throw(/already closed/);
    });

    it('makes the whole batch readable right after the call (no buffering)', () => {
      const writer = new EventFileWriter(path.join(dir, 'nested', 'logs'), clock);
      writer.addScalars(3, [['a', 0.5], ['b', -2]]);
      expect(readScalars(writer.file, WALL_TIME)).to.deep.equal([[3, 'a', 0.5], [3, 'b', -2]]);
      writer.close();
    });
  });

  describe('TensorboardLoggerHook on the event bus', () => {
    function runHook(options: TensorboardLoggerOptions, interval: number): TensorboardLoggerHook {
      const hook = new TensorboardLoggerHook(options, interval, clock);
      const bus = new EventBus();
      hook.observe(bus, fakeRunner(dir));
      const losses = [1.0, 0.5, 0.75, 0.25, 0.125];
      const stepTimes = [0.5, 0.25, 0.375, 0.125, 1.0];
      for (let iter = 1; iter <= 5; iter++) {
        bus.emit(iterEnd(iter, 5, losses[iter - 1]!, stepTimes[iter - 1]!));
        if (iter === 4) {
          bus.emit({ type: 'eval:end', iter: 4, metrics: { aAcc: 0.9375, mIoU: 0.6, mAcc: 0.7, 'IoU.road': 0.8, 'IoU.sky': 0.4 }, classTable: [] });
        }
      }
      bus.emit({ type: 'run:end', iter: 5, workDir: dir });
      return hook;
    }

    it('writes window means of every loss, each distinct lr, time, data_time, memory, then every metric', () => {
      const hook = runHook(OPTIONS, 2);
      expect(hook.eventFile).to.equal(path.join(dir, 'tf_logs', `events.out.tfevents.1764000000.${os.hostname()}`));
      expect(readScalars(hook.eventFile!, WALL_TIME)).to.deep.equal(
        asFloat32([
          // iterations 1-2: loss_ce (1 + 0.5)/2, acc (91 + 92)/2, data_time (0.25 + 0.5)/2, time (0.5 + 0.25)/2
          ...trainRows(2, [1, 2], [1.0, 0.5], [0.5, 0.25]),
          ...trainRows(4, [3, 4], [0.75, 0.25], [0.375, 0.125]),
          [4, 'val/aAcc', 0.9375],
          [4, 'val/mIoU', 0.6],
          [4, 'val/mAcc', 0.7],
          [4, 'val/IoU.road', 0.8],
          [4, 'val/IoU.sky', 0.4],
          // iteration 5 is a partial window: ignore_last (the default) drops it
        ]),
      );
      expect(trainRows(2, [1, 2], [1.0, 0.5], [0.5, 0.25]).slice(2, 7).map((row) => row[2])).to.deep.equal([0.75, 91.5, 1.5, 0.375, 0.375]);
      hook.afterRun();
    });

    it('logs the last partial window at the last iteration with ignore_last: false', () => {
      const hook = runHook({ ...OPTIONS, ignore_last: false }, 2);
      const rows = readScalars(hook.eventFile!, WALL_TIME);
      expect(rows.filter(([step]) => step === 5)).to.deep.equal(asFloat32(trainRows(5, [5], [0.125], [1.0])));
      expect(rows.map(([step]) => step)).to.deep.equal([...Array(8).fill(2), ...Array(8).fill(4), ...Array(5).fill(4), ...Array(8).fill(5)]);
    });

    it('respects the interval: every 3 iterations of 5 gives one point', () => {
      const hook = runHook(OPTIONS, 3);
      const rows = readScalars(hook.eventFile!, WALL_TIME);
      expect(rows.filter(([, tag]) => tag.startsWith('train/'))).to.deep.equal(asFloat32(trainRows(3, [1, 2, 3], [1.0, 0.5, 0.75], [0.5, 0.25, 0.375])));
      expect(rows.filter(([, tag]) => tag.startsWith('val/')).map(([step, tag]) => `${step} ${tag}`)).to.deep.equal(['4 val/aAcc', '4 val/mIoU', '4 val/mAcc', '4 val/IoU.road', '4 val/IoU.sky']);
    });

    it('writes into log_dir when given', () => {
      const hook = runHook({ ...OPTIONS, log_dir: path.join(dir, 'elsewhere') }, 2);
      expect(path.dirname(hook.eventFile!)).to.equal(path.join(dir, 'elsewhere'));
      expect(fs.existsSync(path.join(dir, 'tf_logs'))).to.equal(false);
      expect(readScalars(hook.eventFile!, WALL_TIME)).to.have.length(8 + 8 + 5);
    });
  });

  describe('built from a config', () => {
    let kernel: Kernel;
    before(async () => {
      kernel = await createKernel({ plugins: [plugin], backend: 'cpu', logger: { info: () => undefined, warn: () => undefined } });
    });
    const build = (cfg: Record<string, unknown>) => kernel.build('hooks', cfg, { path: 'log_config.hooks.1', parent: { logInterval: 2 } });

    it('registers TensorboardLoggerHook with log_config.interval as the default interval', () => {
      const hook = build({ type: 'TensorboardLoggerHook' }) as TensorboardLoggerHook;
      expect(hook).to.be.instanceOf(TensorboardLoggerHook);
      const bus = new EventBus();
      const started = Date.now() / 1000;
      hook.observe(bus, fakeRunner(dir));
      for (let iter = 1; iter <= 4; iter++) bus.emit(iterEnd(iter, 40000, 1, 0.5));
      hook.afterRun();
      const [first, ...scalarEvents] = readEvents(hook.eventFile!);
      expect(first!.file_version).to.equal('brain.Event:2');
      expect(path.basename(hook.eventFile!)).to.match(new RegExp(`^events\\.out\\.tfevents\\.${Math.floor(started)}\\.`));
      // the real clock: seconds since the epoch, with fractions
      for (const event of scalarEvents) expect(event.wall_time).to.be.within(started, Date.now() / 1000);
      expect(scalarEvents.map((event) => event.step)).to.deep.equal([...Array(8).fill(2), ...Array(8).fill(4)]);
      expect(build({ type: 'TensorboardLoggerHook', interval: 3 })).to.be.instanceOf(TensorboardLoggerHook);
    });

    it('rejects by_epoch: true as every segkit hook does, naming the config path', () => {
      expect(() => build({ type: 'TensorboardLoggerHook', by_epoch: true })).to.throw(SegkitError, /^log_config\.hooks\.1\.by_epoch: segkit trains by iterations: expected false/);
    });

    it('gives one clear error per bad option', () => {
      expect(() => build({ type: 'TensorboardLoggerHook', interval: 0 })).to.throw(SegkitError, /^log_config\.hooks\.1\.interval: expected a value > 0, got 0$/);
      expect(() => build({ type: 'TensorboardLoggerHook', logdir: 'x' })).to.throw(SegkitError, /^log_config\.hooks\.1\.logdir: unknown option of TensorboardLoggerHook \(did you mean 'log_dir'\?\)/);
      expect(() => build({ type: 'TensorboardLoggerHook', ignore_last: 'no' })).to.throw(SegkitError, /^log_config\.hooks\.1\.ignore_last: expected boolean, got "no"$/);
      expect(() => build({ type: 'TensorboardLoggerHook', log_dir: '' })).to.throw(SegkitError, /^log_config\.hooks\.1\.log_dir: expected a folder path, got ""$/);
    });

    it('reports an unwritable log_dir as a SegkitError with the path', () => {
      const blocker = path.join(dir, 'a-file');
      fs.writeFileSync(blocker, '');
      const hook = build({ type: 'TensorboardLoggerHook', log_dir: path.join(blocker, 'tf_logs') }) as TensorboardLoggerHook;
      expect(() => hook.observe(new EventBus(), fakeRunner(dir))).to.throw(SegkitError, new RegExp(`cannot create the TensorBoard log_dir ${blocker}/tf_logs`));
    });
  });
});
