import { defineConfig } from '@segkit/core';

// MMSegmentation 0.x configs/_base_/default_runtime.py. MMCV's TextLoggerHook writes both the text
// and the JSON log; segkit splits them into two hooks and adds a terminal progress bar.
export default defineConfig({
  plugins: ['@segkit/hooks-logging', '@segkit/hook-checkpoint', '@segkit/hook-eval'],
  log_config: {
    interval: 50,
    hooks: [{ type: 'TextLoggerHook', by_epoch: false }, { type: 'JsonLoggerHook', by_epoch: false }, { type: 'ProgressBarHook' }],
  },
  log_level: 'INFO',
  load_from: null,
  resume_from: null,
  workflow: [['train', 1]],
  backend: 'auto',
});
