import { formatTextTable, type Optimizer, type ParamGroup } from '@segkit/core';

/** Label of a group in logs: its custom key or rule, `(base)` for the optimizer's own settings. */
function groupKey(group: ParamGroup): string {
  return group.key ?? '(base)';
}

/** Short, exact-looking numbers: 0.1 not 0.10000000000000002, 1e-8 stays 1e-8. */
function formatNumber(value: number): string {
  return String(Number(value.toPrecision(6)));
}

function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/**
 * The resolved parameter groups as one table, logged once at start: rows with the same key, lr and
 * weight decay are merged (per-tensor groups from paramwise_cfg would otherwise be hundreds of rows).
 */
export function formatParamGroupTable(optimizer: Optimizer): string {
  const rows = new Map<string, { key: string; lr: string; weightDecay: string; tensors: number; scalars: number }>();
  let tensors = 0;
  let scalars = 0;
  for (const group of optimizer.paramGroups) {
    const key = groupKey(group);
    const lr = formatNumber(group.lr);
    const weightDecay = formatNumber(group.weight_decay);
    const id = JSON.stringify([key, lr, weightDecay]);
    const row = rows.get(id) ?? { key, lr, weightDecay, tensors: 0, scalars: 0 };
    const size = group.params.reduce((sum, param) => sum + param.variable.size, 0);
    row.tensors += group.params.length;
    row.scalars += size;
    rows.set(id, row);
    tensors += group.params.length;
    scalars += size;
  }
  const title = `param groups: ${optimizer.paramGroups.length} (${formatCount(tensors)} tensors, ${formatCount(scalars)} scalars)`;
  const table = formatTextTable(
    ['key', 'lr', 'weight_decay', 'tensors', 'scalars'],
    [...rows.values()].map((row) => [row.key, row.lr, row.weightDecay, formatCount(row.tensors), formatCount(row.scalars)]),
    [3, 4],
  );
  return `${title}\n${table}`;
}

/** Every parameter with the lr and weight decay it trains with (`segkit info CONFIG --param-groups`). */
export function formatParameterSettings(optimizer: Optimizer): string {
  const rows = optimizer.paramGroups.flatMap((group) =>
    group.params.map((param) => [param.name, formatNumber(group.lr), formatNumber(group.weight_decay), groupKey(group)]),
  );
  return formatTextTable(['parameter', 'lr', 'weight_decay', 'key'], rows);
}
