import * as tf from '@tensorflow/tfjs-core';
import { SegkitError, type BackendLoadRequest, type BackendProvider } from '@segkit/core';

export const BACKEND_NAME = 'webgpu';
/** Above `native` (100) and `tensorflow` (200), below `tensorflow-gpu` (300); only a real GPU adapter is offered to 'auto'. */
export const WEBGPU_PRIORITY = 250;

/** What segkit logs and decides on about the adapter Dawn picked. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** WebGPU's own flag: the adapter is a fallback (software) implementation. */
  isFallbackAdapter: boolean;
  /** A CPU emulation (fallback, or a known software driver such as Mesa's lavapipe/llvmpipe or SwiftShader). */
  software: boolean;
  maxStorageBuffersPerShaderStage: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** Names of software Vulkan/WebGPU implementations as they appear in the adapter's info. */
const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;

// The structural subset of the WebGPU API used here (this package compiles without DOM types).
interface GpuLimits {
  readonly [name: string]: number;
}
interface GpuAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapter {
  readonly limits: GpuLimits;
  readonly features: { has(name: string): boolean };
  readonly info?: GpuAdapterInfo;
  readonly isFallbackAdapter?: boolean;
  requestDevice(descriptor: { requiredLimits: Record<string, number>; requiredFeatures: string[] }): Promise<GpuDevice>;
}
interface GpuError {
  message: string;
  constructor: { name: string };
}
export interface GpuDevice {
  readonly limits: GpuLimits;
  readonly lost: Promise<{ reason: string; message: string }>;
  onuncapturederror: ((event: { error: GpuError }) => void) | null;
  destroy(): void;
}
interface Gpu {
  requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): Gpu;
  globals: Record<string, unknown>;
}
type WebGpuBackendClass = new (device: GpuDevice, adapterInfo?: GpuAdapterInfo) => tf.KernelBackend;

/** Loads a module (tests inject failures); defaults to require, which loads the ESM `webgpu` package on Node ≥ 20.19. */
export type ModuleLoader = (id: string) => unknown;

const PEERS = 'webgpu@^0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0';
const INSTALL_HINT =
  "on Linux install the GPU vendor's Vulkan driver and libvulkan1 (Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers for AMD/Intel; NVIDIA's driver ships its own; a CPU-only machine can use Mesa ≥ 25's lavapipe); in Docker set NVIDIA_DRIVER_CAPABILITIES to include graphics";

/**
 * The `webgpu` backend: Dawn (the `webgpu` package) under tfjs's WebGPU backend. One device per process,
 * created on first use with the adapter's own buffer limits (tfjs asks for the defaults: 8 storage buffers
 * per stage), with every uncaptured device error made fatal: it is recorded and the next readback throws
 * it, so no stale number is ever returned.
 */
export class WebGpuBackendProvider implements BackendProvider {
  readonly name = BACKEND_NAME;
  readonly priority = WEBGPU_PRIORITY;
  private gpu: Gpu | null = null;
  private adapter: GpuAdapter | null = null;
  private adapterDescription: AdapterDescription | null = null;
  private device: GpuDevice | null = null;
  private deviceError: string | null = null;
  private backendClass: WebGpuBackendClass | null = null;

  constructor(
    readonly packageName: string,
    private readonly loadModule: ModuleLoader = (id) => require(id),
  ) {}

  /** The adapter of the last successful load (null before). */
  get adapterInfo(): AdapterDescription | null {
    return this.adapterDescription;
  }

  /** The live device (null before the backend is first used and after `release`). */
  get activeDevice(): GpuDevice | null {
    return this.device;
  }

  async load(request: BackendLoadRequest = { byName: true }): Promise<string | null> {
    try {
      const ready = this.gpu ? null : this.setUp();
      if (ready !== null) return ready;
      if (!this.adapter) {
        this.adapter = await this.gpu!.requestAdapter({ powerPreference: 'high-performance' });
        if (!this.adapter) return `no WebGPU adapter found (${INSTALL_HINT})`;
        this.adapterDescription = describeAdapter(this.adapter);
      }
      const adapter = this.adapterDescription!;
      if (adapter.software && !request.byName) {
        return `the only WebGPU adapter is a CPU emulation (${formatAdapter(adapter)}); 'auto' takes only a GPU, set backend: 'webgpu' to use it anyway`;
      }
      if (!this.registered) this.registerFactory();
      return null;
    } catch (error) {
      return `WebGPU failed to start (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
    }
  }

  describe(): string | undefined {
    return this.adapterDescription ? `adapter: ${formatAdapter(this.adapterDescription)}` : undefined;
  }

  /** Disposes the tfjs backend and destroys the device (which otherwise keeps Node running); the next use re-creates it. */
  async release(): Promise<void> {
    if (!this.device) return;
    const device = this.device;
    this.device = null;
    tf.removeBackend(BACKEND_NAME);
    this.registered = false;
    device.destroy();
    this.registerFactory();
  }

  /** Throws the first uncaptured device error, if any (also called by every readback). */
  throwIfDeviceFailed(): void {
    if (this.deviceError !== null) throw new SegkitError(this.deviceError, 'backend');
  }

  private registered = false;
  private adapterConsumed = false;

  /** Installs `navigator.gpu` (needed before tfjs's WebGPU backend is imported) and loads both peers; a reason or null. */
  private setUp(): string | null {
    let dawn: DawnModule;
    try {
      dawn = this.loadModule('webgpu') as DawnModule;
    } catch (error) {
      return missingOrBroken('webgpu', error, this.packageName);
    }
    for (const [key, value] of Object.entries(dawn.globals)) {
      if (!(key in globalThis)) Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
    }
    const gpu = dawn.create([]);
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav === undefined) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    // Node ≥ 21 has its own navigator, whose properties are getters: define ours beside them.
    else Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
    let tfWebGpu: { WebGPUBackend?: WebGpuBackendClass };
    try {
      tfWebGpu = this.loadModule('@tensorflow/tfjs-backend-webgpu') as typeof tfWebGpu;
    } catch (error) {
      return missingOrBroken('@tensorflow/tfjs-backend-webgpu', error, this.packageName);
    }
    if (!tfWebGpu.WebGPUBackend || tf.getKernelsForBackend(BACKEND_NAME).length === 0) {
      return `@tensorflow/tfjs-backend-webgpu registered no kernels with this @tensorflow/tfjs-core (${tf.version_core}); install the same version of both`;
    }
    this.backendClass = tfWebGpu.WebGPUBackend;
    this.gpu = gpu;
    // At once: tfjs's own factory has priority 3, above cpu, and would be picked by tfjs's implicit choice.
    this.registerFactory();
    return null;
  }

  /** Replaces tfjs's own factory: ours asks for the adapter's limits and watches the device for errors. */
  private registerFactory(): void {
    if (tf.findBackendFactory(BACKEND_NAME)) tf.removeBackend(BACKEND_NAME);
    const Backend = this.backendClass!;
    const provider = this;
    tf.registerBackend(BACKEND_NAME, async () => {
      if (!provider.adapter) throw new SegkitError("webgpu: select the backend through segkit (backend: 'webgpu'), which picks the adapter first", 'backend');
      const device = await provider.createDevice();
      // tfjs's WebGPU backend gives no hook between a kernel and its readback: check at every read.
      class CheckedWebGpuBackend extends (Backend as unknown as new (...args: unknown[]) => tf.KernelBackend) {
        override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
          const values = await super.read(dataId);
          // Dawn reports errors through callbacks processed with the event loop: let them arrive first.
          await new Promise((resolve) => setImmediate(resolve));
          provider.throwIfDeviceFailed();
          return values;
        }

        override readSync(dataId: object): tf.backend_util.BackendValues {
          // Values still on the host (small tensors tfjs keeps there, CPU-forwarded kernels) read as usual.
          const data = (this as unknown as { tensorMap: { get(id: object): { values: unknown } | undefined } }).tensorMap.get(dataId);
          if (data?.values != null) return super.readSync(dataId);
          throw new SegkitError("webgpu: tensors cannot be read synchronously (dataSync/arraySync) on a GPU backend; use 'await tensor.data()'", 'backend');
        }
      }
      return new CheckedWebGpuBackend(device, provider.adapter?.info);
    }, 0);
    this.registered = true;
  }

  private async createDevice(): Promise<GpuDevice> {
    // An adapter gives one device ("consumed" after): a device after `release` needs a fresh adapter.
    if (this.adapterConsumed) this.adapter = (await this.gpu!.requestAdapter({ powerPreference: 'high-performance' })) ?? this.adapter;
    this.adapterConsumed = true;
    const adapter = this.adapter!;
    const limits = adapter.limits;
    const wanted = [
      'maxStorageBuffersPerShaderStage',
      'maxStorageBufferBindingSize',
      'maxBufferSize',
      'maxComputeWorkgroupStorageSize',
      'maxComputeWorkgroupsPerDimension',
      'maxComputeWorkgroupSizeX',
      'maxComputeInvocationsPerWorkgroup',
    ];
    const requiredLimits = Object.fromEntries(wanted.filter((name) => typeof limits[name] === 'number').map((name) => [name, limits[name]!]));
    const requiredFeatures = ['timestamp-query'].filter((feature) => adapter.features.has(feature));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    this.deviceError = null;
    device.onuncapturederror = (event) => {
      // The first error is the cause; later ones follow from it.
      this.deviceError ??= `webgpu: the GPU rejected an operation, so its results are invalid (${event.error.constructor.name}: ${firstLine(event.error.message)}); the run cannot go on`;
    };
    void device.lost.then((info) => {
      if (this.device === device && info.reason !== 'destroyed') this.deviceError ??= `webgpu: the GPU device was lost (${info.reason}: ${firstLine(info.message)})`;
    });
    this.device = device;
    return device;
  }
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}

function missingOrBroken(moduleName: string, error: unknown, packageName: string): string {
  const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  if (message.startsWith(`Cannot find module '${moduleName}'`)) {
    return `${moduleName} is not installed (optional peer dependencies: npm install ${PEERS}; see ${packageName}'s README)`;
  }
  return `${moduleName} failed to load (${message})`;
}

export function describeAdapter(adapter: GpuAdapter): AdapterDescription {
  const info = adapter.info ?? {};
  const isFallbackAdapter = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const device = info.device ?? '';
  const description = info.description ?? '';
  return {
    vendor,
    architecture,
    device,
    description,
    isFallbackAdapter,
    software: isFallbackAdapter || SOFTWARE_ADAPTERS.test(`${vendor} ${architecture} ${device} ${description}`),
    maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage ?? 8,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize ?? 134217728,
    maxBufferSize: adapter.limits.maxBufferSize ?? 268435456,
  };
}

/** One line: who made it, what it is, whether it is a CPU emulation, and the limits segkit relies on. */
export function formatAdapter(adapter: AdapterDescription): string {
  const name = adapter.description || adapter.device || 'unnamed adapter';
  const kind = adapter.software ? `CPU emulation${adapter.isFallbackAdapter ? ', fallback adapter' : ''}` : 'GPU';
  const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
  return `${name} (vendor ${adapter.vendor || '?'}, architecture ${adapter.architecture || '?'}, ${kind}; ${adapter.maxStorageBuffersPerShaderStage} storage buffers per stage, bindings up to ${mib(adapter.maxStorageBufferBindingSize)})`;
}
