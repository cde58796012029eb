import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { LOCK_FILE, lockWorkDir, uniqueTimestamp } from '../src/training/work-dir-lock';

describe('work dir: one writer, unique log names', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segkit-lock-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('two runs in one work dir write separate log files even within the same second', () => {
    expect(uniqueTimestamp(dir, '20261202_071500')).to.equal('20261202_071500');
    fs.writeFileSync(path.join(dir, '20261202_071500.log'), '');
    fs.writeFileSync(path.join(dir, '20261202_071500_1.log.json'), '');
    expect(uniqueTimestamp(dir, '20261202_071500')).to.equal('20261202_071500_2');
  });

  it('the lock records the holder and is released only by it', () => {
    const release = lockWorkDir(dir, () => undefined);
    const holder = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'));
    expect(holder).to.include({ pid: process.pid, host: os.hostname() });
    expect(() => lockWorkDir(dir, () => undefined)).to.throw(/is in use by another segkit run \(pid \d+/);
    release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).to.equal(false);
  });
});
