/**
 * A data-loader worker thread: builds the same kernel and dataset as the main thread from the
 * config (plugins + dataset config), then decodes and augments the samples it is asked for and
 * moves their typed arrays back to the main thread.
 */
import { parentPort, workerData } from 'worker_threads';
import type { Dataset } from '../components';
import { SeededRandom } from './random';
import { serializeError, transferables, type SampleRequest, type WorkerDatasetSource, type WorkerMessage } from './worker-protocol';

const port = parentPort!;
const source = workerData as WorkerDatasetSource;
const silent = { info: () => undefined, warn: () => undefined };

function post(message: WorkerMessage): void {
  port.postMessage(message, message.kind === 'sample' ? transferables(message.result) : []);
}

const ready: Promise<Dataset> = (async () => {
  const { createKernel } = await import('../plugin-system/kernel');
  const kernel = await createKernel({ plugins: source.plugins, configDir: source.configDir, backend: 'cpu', logger: silent });
  return kernel.build('datasets', source.dataset, { path: source.path ?? 'data' });
})();

ready.then(
  (dataset) => post({ kind: 'ready', length: dataset.length }),
  (error) => post({ kind: 'fatal', error: serializeError(error) }),
);

port.on('message', async (request: SampleRequest) => {
  try {
    const dataset = await ready;
    const result = await dataset.get(request.index, SeededRandom.fromState(request.random));
    post({ kind: 'sample', id: request.id, result });
  } catch (error) {
    post({ kind: 'failed', id: request.id, error: serializeError(error) });
  }
});
