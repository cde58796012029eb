import * as protobuf from 'protobufjs/light';

/**
 * The part of ONNX's onnx.proto that segkit writes (field numbers as in onnx/onnx.proto3), as a protobufjs
 * reflection root: no generated code, no .proto file read at run time, and nothing Node-specific.
 */
const ONNX_SCHEMA: protobuf.INamespace = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'int32', id: 20 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
          },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 }, doc_string: { type: 'string', id: 3 } } },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            op_type: { type: 'string', id: 4 },
            domain: { type: 'string', id: 7 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            doc_string: { type: 'string', id: 6 },
          },
        },
        ModelProto: {
          fields: {
            ir_version: { type: 'int64', id: 1 },
            opset_import: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producer_name: { type: 'string', id: 2 },
            producer_version: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            model_version: { type: 'int64', id: 5 },
            doc_string: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadata_props: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        StringStringEntryProto: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            doc_string: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            value_info: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            data_type: { type: 'int32', id: 2 },
            name: { type: 'string', id: 8 },
            doc_string: { type: 'string', id: 12 },
            raw_data: { type: 'bytes', id: 9 },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
              fields: { dim_value: { type: 'int64', id: 1 }, dim_param: { type: 'string', id: 2 }, denotation: { type: 'string', id: 3 } },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type'] } },
          fields: { tensor_type: { type: 'Tensor', id: 1 }, denotation: { type: 'string', id: 6 } },
          nested: { Tensor: { fields: { elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } } },
        },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
      },
    },
  },
};

/** TensorProto.DataType values segkit uses. */
export const ONNX_DTYPE = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9 } as const;
export type OnnxDtype = keyof typeof ONNX_DTYPE;

/** AttributeProto.AttributeType values. */
export const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7, strings: 8 } as const;

let modelType: protobuf.Type | null = null;

function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(ONNX_SCHEMA).lookupType('onnx.ModelProto');
  return modelType;
}

function encodeMessage(typeName: string, value: Record<string, unknown>): Uint8Array {
  const type = onnxModelType().lookupType(typeName);
  const problem = type.verify(value);
  if (problem) throw new Error(`ONNX ${typeName} does not match onnx.proto: ${problem}`);
  return type.encode(type.fromObject(value)).finish();
}

/** An initializer: the TensorProto's fields other than raw_data, and its little-endian bytes. */
export interface OnnxInitializerBytes {
  tensor: Record<string, unknown>;
  rawData: Uint8Array;
}

// Wire-format keys (field number << 3 | 2, length-delimited) of the fields appended by hand.
const MODEL_GRAPH_KEY = (7 << 3) | 2;
const GRAPH_INITIALIZER_KEY = (5 << 3) | 2;
const TENSOR_RAW_DATA_KEY = (9 << 3) | 2;

function varintLength(value: number): number {
  let length = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) length++;
  return length;
}

function writeVarint(out: Uint8Array, offset: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    out[offset++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[offset++] = v;
  return offset;
}

/**
 * Serializes a ModelProto given as a plain object with onnx.proto's field names, its graph's initializers
 * apart. protobufjs encodes every message; the weights' raw_data (hundreds of MB for a ResNet-50) are copied
 * once into the output, each after its TensorProto's other fields, rather than through protobufjs's nested
 * writers (which take seconds per 100 MB). Fields in any order are valid protobuf.
 */
export function encodeOnnxModel(model: Record<string, unknown>, initializers: readonly OnnxInitializerBytes[] = []): Uint8Array {
  const { graph, ...rest } = model as { graph?: Record<string, unknown> };
  const head = encodeMessage('onnx.ModelProto', rest);
  const graphHead = encodeMessage('onnx.GraphProto', graph ?? {});
  const tensors = initializers.map(({ tensor, rawData }) => {
    const fields = encodeMessage('onnx.TensorProto', tensor);
    const length = fields.length + 1 + varintLength(rawData.length) + rawData.length;
    return { fields, rawData, length };
  });
  const graphLength = graphHead.length + tensors.reduce((sum, t) => sum + 1 + varintLength(t.length) + t.length, 0);
  const out = new Uint8Array(head.length + 1 + varintLength(graphLength) + graphLength);
  out.set(head, 0);
  let offset = head.length;
  out[offset++] = MODEL_GRAPH_KEY;
  offset = writeVarint(out, offset, graphLength);
  out.set(graphHead, offset);
  offset += graphHead.length;
  for (const { fields, rawData, length } of tensors) {
    out[offset++] = GRAPH_INITIALIZER_KEY;
    offset = writeVarint(out, offset, length);
    out.set(fields, offset);
    offset += fields.length;
    out[offset++] = TENSOR_RAW_DATA_KEY;
    offset = writeVarint(out, offset, rawData.length);
    out.set(rawData, offset);
    offset += rawData.length;
  }
  if (offset !== out.length) throw new Error(`ONNX serialization wrote ${offset} of ${out.length} bytes`);
  return out;
}

/** Parses a ModelProto (for tests and tools that inspect an exported file). */
export function decodeOnnxModel(bytes: Uint8Array): Record<string, unknown> {
  const type = onnxModelType();
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as Record<string, unknown>;
}
