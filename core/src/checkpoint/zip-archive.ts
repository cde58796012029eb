import * as fs from 'fs';
import * as yauzl from 'yauzl';
import { SegkitError } from '../errors';

/**
 * Random access to the records of a zip file (yauzl parses the central directory, zip64 included). A
 * record is read straight from disk into a buffer of its own size: torch writes its tensor data STORED
 * (uncompressed), so a checkpoint is read once, without a second in-memory copy of the file.
 */
export class ZipArchive {
  private constructor(
    readonly file: string,
    /** Shared with yauzl, which closes it when the archive is closed. */
    private readonly fd: number,
    private readonly zip: yauzl.ZipFile,
    private readonly entries: Map<string, yauzl.Entry>,
  ) {}

  static async open(file: string): Promise<ZipArchive> {
    const fd = fs.openSync(file, 'r');
    let zip: yauzl.ZipFile | undefined;
    try {
      zip = await yauzl.fromFdPromise(fd, { lazyEntries: true, autoClose: false });
      const opened = zip;
      const entries = new Map<string, yauzl.Entry>();
      await new Promise<void>((resolve, reject) => {
        opened.on('entry', (entry: yauzl.Entry) => {
          entries.set(entry.fileName, entry);
          opened.readEntry();
        });
        opened.on('end', resolve);
        opened.on('error', reject);
        opened.readEntry();
      });
      return new ZipArchive(file, fd, opened, entries);
    } catch (error) {
      if (zip) zip.close();
      else fs.closeSync(fd);
      throw new SegkitError(`${file}: not a readable zip archive (${(error as Error).message})`);
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Uncompressed size of a record in bytes. */
  size(name: string): number {
    return this.entry(name).uncompressedSize;
  }

  private entry(name: string): yauzl.Entry {
    const entry = this.entries.get(name);
    if (!entry) throw new SegkitError(`${this.file}: the archive has no record '${name}'`);
    return entry;
  }

  /** A record's bytes in a fresh, exactly sized buffer (so typed-array views of it are aligned). */
  async read(name: string): Promise<Uint8Array> {
    const entry = this.entry(name);
    const bytes = new Uint8Array(entry.uncompressedSize);
    if (entry.compressionMethod === 0) {
      const { fileDataStart } = await this.zip.readLocalFileHeaderPromise(entry, { minimal: true });
      let done = 0;
      while (done < bytes.length) {
        const bytesRead = await readAt(this.fd, bytes, done, bytes.length - done, fileDataStart + done);
        if (bytesRead === 0) throw new SegkitError(`${this.file}: record '${name}' is truncated`);
        done += bytesRead;
      }
      return bytes;
    }
    // A re-zipped checkpoint may be deflated: inflate through yauzl's stream into the same single buffer.
    const stream = await this.zip.openReadStreamPromise(entry);
    let done = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (done + chunk.length > bytes.length) throw new SegkitError(`${this.file}: record '${name}' inflates past its declared size`);
      bytes.set(chunk, done);
      done += chunk.length;
    }
    return bytes;
  }

  /** Closes the archive and its file descriptor (yauzl closes it; this waits until it has). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.zip.once('close', () => resolve()));
    this.zip.close();
    await closed;
  }
}

function readAt(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))));
}
