import * as path from 'path';
import * as protobuf from 'protobufjs';

/** The package's proto/ folder (shipped through `files`), next to dist/. */
export const PROTO_DIR = path.resolve(__dirname, '../../proto');

let eventType: protobuf.Type | undefined;

/**
 * `tensorboard.Event` from proto/event.proto, loaded with protobufjs once per process. Field names
 * are kept as in the .proto (`wall_time`, `simple_value`), not camel-cased.
 */
export function loadEventType(): protobuf.Type {
  if (!eventType) {
    const root = new protobuf.Root().loadSync(path.join(PROTO_DIR, 'event.proto'), { keepCase: true });
    eventType = root.lookupType('tensorboard.Event');
  }
  return eventType;
}

/** A scalar series point: TensorBoard tag and value. */
export type Scalar = readonly [tag: string, value: number];

export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  const Event = loadEventType();
  return Event.encode(Event.fromObject({ wall_time: wallTime, file_version: 'brain.Event:2' })).finish();
}

/** One Event per scalar, as TensorBoard's own writers (and MMCV's SummaryWriter.add_scalar) write them. */
export function encodeScalarEvent(wallTime: number, step: number, [tag, value]: Scalar): Uint8Array {
  const Event = loadEventType();
  return Event.encode(Event.fromObject({ wall_time: wallTime, step, summary: { value: [{ tag, simple_value: value }] } })).finish();
}
