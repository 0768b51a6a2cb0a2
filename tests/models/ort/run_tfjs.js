#!/usr/bin/env node
// Optional cross-check: runs the *source* TF.js graph model with @tensorflow/tfjs (pure JS
// cpu backend) on the same raw NCHW float32 input as run_ort.js and writes the chosen
// graph nodes as NCHW raw float32 + manifest.json, so compare_outputs.py can diff them.
//
//   node run_tfjs.js MODEL.json INPUT.f32 N,C,H,W nchw|nhwc OUTDIR NAME=TFNODE[:k]:nchw|nhwc ...
//
// The 4th argument is the layout the graph's input placeholder expects (the input file is
// always NCHW). --size S rewrites the graph's fixed resize sizes for input size S (see
// tfjs_resize_sizes below) so the graph can run at sizes other than its native one.
// @tensorflow/tfjs is not a dependency of this folder: `npm install --no-save
// @tensorflow/tfjs@4.22.0` here first.
'use strict';

const fs = require('fs');
const path = require('path');

function die(msg) {
	process.stderr.write(`run_tfjs: ${msg}\n`);
	process.exit(2);
}

let tf;
try {
	tf = require('@tensorflow/tfjs');
} catch (e) {
	process.stdout.write('skip: @tensorflow/tfjs not installed (npm install --no-save @tensorflow/tfjs@4.22.0)\n');
	process.exit(77);
}

// Fixed output sizes of the resize nodes in the two zoo graphs, as a function of the
// input size S (the graphs were exported for one size; everything else is size-free).
const tfjs_resize_sizes = {
	'PartitionedCall/Cast_1': (s) => s / 16,
	'PartitionedCall/Cast_3': (s) => s / 8,
	'PartitionedCall/Cast_5': (s) => s / 16,
	'PartitionedCall/Cast_7': (s) => s / 32,
	'tower_0/CenternetHead/c5_upsample/up_sampling2d/mul': (s) => s / 16,
	'tower_0/CenternetHead/c4_upsample/up_sampling2d_1/mul': (s) => s / 8,
	'tower_0/CenternetHead/c3_upsample/up_sampling2d_2/mul': (s) => s / 4,
};

async function main() {
	const args = process.argv.slice(2);
	let size = 0;
	const k = args.indexOf('--size');
	if (k >= 0) {
		size = parseInt(args[k + 1], 10);
		args.splice(k, 2);
	}
	if (args.length < 6) die('usage: run_tfjs.js MODEL.json INPUT.f32 N,C,H,W nchw|nhwc OUTDIR NAME=NODE:lay ... [--size S]');
	const [mj, inp, shapeStr, inLay, outDir, ...outs] = args;
	await tf.setBackend('cpu');
	const m = JSON.parse(fs.readFileSync(mj));
	const base = path.dirname(mj);
	const specs = [];
	const bufs = [];
	for (const g of m.weightsManifest) {
		specs.push(...g.weights);
		for (const p of g.paths) bufs.push(fs.readFileSync(path.join(base, path.basename(p))));
	}
	const all = Buffer.concat(bufs);
	if (size) {
		let off = 0;
		for (const w of specs) {
			const n = w.shape.reduce((a, b) => a * b, 1);
			const bytes = (w.quantization && w.quantization.dtype === 'float16') ? 2 * n : 4 * n;
			if (tfjs_resize_sizes[w.name]) {
				const v = tfjs_resize_sizes[w.name](size);
				for (let i = 0; i < n; i++) all.writeInt32LE(v, off + 4 * i);
			}
			off += bytes;
		}
		for (const node of m.modelTopology.node) {
			if (node.op !== 'Placeholder') continue;
			for (const d of node.attr.shape.shape.dim) if (parseInt(d.size, 10) > 4) d.size = String(size);
		}
	}
	const wd = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
	const model = await tf.loadGraphModel(tf.io.fromMemory({
		modelTopology: m.modelTopology, weightSpecs: specs, weightData: wd, format: m.format,
		generatedBy: m.generatedBy, convertedBy: m.convertedBy,
	}));
	const shape = shapeStr.split(',').map(Number);
	const b = fs.readFileSync(inp);
	if (b.length !== shape.reduce((a, c) => a * c, 4)) die(`${inp}: size does not match ${shapeStr}`);
	const d = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
	let x = tf.tensor(d, shape);
	if (inLay === 'nhwc') x = x.transpose([0, 2, 3, 1]);
	const specsOut = outs.map((o) => {
		const eq = o.indexOf('=');
		const rest = o.slice(eq + 1);
		const lay = rest.endsWith(':nhwc') ? 'nhwc' : 'nchw';
		return { name: o.slice(0, eq), node: rest.replace(/:(nhwc|nchw)$/, ''), lay };
	});
	const t0 = Date.now();
	let res = model.execute(x, specsOut.map((s) => s.node));
	if (!Array.isArray(res)) res = [res];
	const ms = Date.now() - t0;
	fs.mkdirSync(outDir, { recursive: true });
	const man = {};
	specsOut.forEach((s, i) => {
		let t = res[i];
		if (s.lay === 'nhwc') t = t.transpose([0, 3, 1, 2]);
		fs.writeFileSync(path.join(outDir, `${s.name}.f32`), Buffer.from(new Float32Array(t.dataSync()).buffer));
		man[s.name] = { shape: t.shape, file: `${s.name}.f32` };
	});
	fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify({ outputs: man, ms }, null, 2) + '\n');
	process.stdout.write(`${specsOut.length} outputs written to ${outDir} (${ms} ms)\n`);
}

main().catch((e) => die(e.stack || String(e)));
