import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SegkitError } from '@segkit/core';
import { encodeFileVersionEvent, encodeScalarEvent, type Scalar } from './event-schema';
import { frameRecord } from './tfrecord';

/**
 * A TensorBoard event file `events.out.tfevents.<unix seconds>.<hostname>` in `logDir` (TensorFlow's
 * and MMCV's SummaryWriter naming), opened with the `brain.Event:2` record. Each batch of scalars is
 * framed into one buffer and written with one system call, so TensorBoard never reads half a batch.
 */
export class EventFileWriter {
  readonly file: string;
  private fd: number | undefined;

  constructor(
    logDir: string,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    try {
      fs.mkdirSync(logDir, { recursive: true });
    } catch (error) {
      throw new SegkitError(`cannot create the TensorBoard log_dir ${logDir}: ${(error as Error).message}`);
    }
    const opened = openNewFile(path.join(logDir, `events.out.tfevents.${Math.floor(this.now())}.${os.hostname()}`));
    this.file = opened.file;
    this.fd = opened.fd;
    writeAll(this.fd, frameRecord(encodeFileVersionEvent(this.now())));
  }

  /** Writes the scalars of one step, all with the same wall time. */
  addScalars(step: number, scalars: readonly Scalar[]): void {
    if (this.fd === undefined) throw new Error(`TensorBoard event file ${this.file} is already closed`);
    if (scalars.length === 0) return;
    const wallTime = this.now();
    writeAll(this.fd, Buffer.concat(scalars.map((scalar) => frameRecord(encodeScalarEvent(wallTime, step, scalar)))));
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Opens `base` for writing, never over an existing file: two writers started in the same second
 * (two runs into one log_dir, a quick restart) get `.1`, `.2`, ...; TensorBoard reads every file whose
 * name contains `tfevents`.
 */
function openNewFile(base: string): { file: string; fd: number } {
  for (let suffix = 0; ; suffix++) {
    const file = suffix === 0 ? base : `${base}.${suffix}`;
    try {
      return { file, fd: fs.openSync(file, 'wx') };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new SegkitError(`cannot write the TensorBoard event file ${file}: ${(error as Error).message}`);
    }
  }
}

/** writeSync may write fewer bytes than asked; loop until the whole batch is in the file. */
function writeAll(fd: number, bytes: Buffer): void {
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset);
}
