import { spawnSync } from 'child_process';
import * as path from 'path';
import { expect } from 'chai';

const scripts = path.join(__dirname, '..', '..', 'scripts');

describe('@segkit/dist-mpi: install without MPI', function () {
  this.timeout(60000);
  it('the install step succeeds and says in one line that the binding was not built', () => {
    // MPICC pointing nowhere stands for a machine without MPI; nothing is compiled or removed.
    const result = spawnSync(process.execPath, [path.join(scripts, 'build-addon.js')], { encoding: 'utf8', env: { ...process.env, MPICC: '/nonexistent/mpicc' } });
    expect(result.status).to.equal(0);
    const lines = `${result.stdout}${result.stderr}`.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^@segkit\/dist-mpi: no MPI found \(mpicc missing\), MPI binding not built; single-process training is unaffected/);
  });

  it('mpi-flags.js fails (so binding.gyp is not run) when there is no MPI compiler wrapper', () => {
    const result = spawnSync(process.execPath, [path.join(scripts, 'mpi-flags.js'), 'compile'], { encoding: 'utf8', env: { ...process.env, MPICC: '/nonexistent/mpicc' } });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.contain('/nonexistent/mpicc not found or not an MPI compiler wrapper');
  });
});
