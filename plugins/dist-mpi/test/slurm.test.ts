import { expect } from 'chai';
import { checkSlurmMatchesMpi, readSlurmTask } from '../src/slurm';

describe('@segkit/dist-mpi: --launcher slurm reads the SLURM variables as MMCV does', () => {
  it('rank SLURM_PROCID, size SLURM_NTASKS, local rank SLURM_LOCALID, the node list', () => {
    const task = readSlurmTask({ SLURM_PROCID: '5', SLURM_NTASKS: '8', SLURM_LOCALID: '1', SLURM_NODELIST: 'node[01-02]' });
    expect(task).to.deep.equal({ procId: 5, ntasks: 8, localId: 1, nodeList: 'node[01-02]' });
    expect(() => checkSlurmMatchesMpi(task, { rank: 5, size: 8 })).to.not.throw();
  });

  it('outside srun: one error naming the variable and how to start the job', () => {
    expect(() => readSlurmTask({})).to.throw(/SLURM_PROCID is not set; start the job with srun/);
    expect(() => readSlurmTask({ SLURM_PROCID: '2', SLURM_NTASKS: '2' })).to.throw(/SLURM_PROCID 2 is not below SLURM_NTASKS 2/);
  });

  it('tasks that MPI did not join (srun without --mpi=pmix: every task a singleton) are an error, not N independent runs', () => {
    const task = readSlurmTask({ SLURM_PROCID: '1', SLURM_NTASKS: '4' });
    expect(() => checkSlurmMatchesMpi(task, { rank: 0, size: 1 })).to.throw(/srun started 4 tasks \(this is task 1\) but MPI sees 1 process \(rank 0\): start the job with srun --mpi=pmix/);
  });
});
