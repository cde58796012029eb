#!/usr/bin/env node
// `npm run demo`: generate the synthetic DRIVE-like data, train the demo config (all four tricks),
// evaluate, and write the log, checkpoints, loss curves and a few prediction overlays to work_dirs/demo/.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const segkit = path.join(root, 'core', 'bin', 'segkit.js');
const config = path.join(root, 'configs', 'demo', 'unet-s5-d16_tricks_64x64_synthetic-drive.ts');
const workDir = path.join(root, 'work_dirs', 'demo');
const dataRoot = path.join(root, 'data', 'synthetic_drive');
const extra = process.argv.slice(2); // e.g. --cfg-options runner.max_iters=200

function run(args) {
  const started = Date.now();
  const result = spawnSync(process.execPath, [segkit, ...args], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  return (Date.now() - started) / 1000;
}

if (!fs.existsSync(path.join(dataRoot, 'images', 'training'))) run(['synth', 'drive', '--out', dataRoot, '--seed', '0']);
fs.rmSync(workDir, { recursive: true, force: true });
const seconds = run(['train', config, '--work-dir', workDir, ...extra]);
const jsonLog = fs.readdirSync(workDir).filter((f) => f.endsWith('.log.json')).sort().pop();
run(['plot', path.join(workDir, jsonLog), '--keys', 'decode.loss_ce', 'decode.loss_dice', 'aux.loss_ce', 'aux.loss_dice', '--out', path.join(workDir, 'losses.png'), '--title', 'demo losses']);
run(['plot', path.join(workDir, jsonLog), '--keys', 'mDice', 'Dice.vessel', '--out', path.join(workDir, 'dice.png'), '--title', 'validation Dice']);
const valImages = path.join(dataRoot, 'images', 'validation');
const samples = fs.readdirSync(valImages).sort().slice(0, 3).map((f) => path.join(valImages, f));
run(['infer', config, path.join(workDir, 'latest.safetensors'), ...samples, '--out', path.join(workDir, 'overlays')]);
const evalLine = fs.readFileSync(path.join(workDir, jsonLog), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.mode === 'val').pop();
console.log(`
demo finished in ${seconds.toFixed(0)} s of training (+ evaluation)
  vessel Dice ${(evalLine['Dice.vessel'] * 100).toFixed(2)}, mDice ${(evalLine.mDice * 100).toFixed(2)}
  work_dir   ${workDir}
  text log   ${path.join(workDir, jsonLog.replace(/\.json$/, ''))}
  JSON log   ${path.join(workDir, jsonLog)}
  checkpoint ${path.join(workDir, 'latest.safetensors')}
  curves     ${path.join(workDir, 'losses.png')}, ${path.join(workDir, 'dice.png')}
  overlays   ${path.join(workDir, 'overlays')}`);
