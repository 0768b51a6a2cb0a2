#!/usr/bin/env node
// Reference runner: executes an ONNX model with onnxruntime-node (CPU) on one raw
// float32 input and writes every output as raw little-endian float32 plus a manifest.
//
//   node run_ort.js MODEL.onnx INPUT.f32 N,C,H,W OUTDIR [--runs K]
//
// OUTDIR/<output>.f32 holds each output; OUTDIR/manifest.json lists
// {"model", "input": {"name", "shape"}, "outputs": {name: {"shape", "file"}}, "ms"}.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function die(msg) {
	process.stderr.write(`run_ort: ${msg}\n`);
	process.exit(2);
}

async function main() {
	const args = process.argv.slice(2);
	let runs = 1;
	const k = args.indexOf('--runs');
	if (k >= 0) {
		runs = parseInt(args[k + 1], 10);
		args.splice(k, 2);
		if (!(runs >= 1)) die('--runs wants a positive integer');
	}
	if (args.length !== 4) die('usage: run_ort.js MODEL.onnx INPUT.f32 N,C,H,W OUTDIR [--runs K]');
	const [modelPath, inputPath, shapeStr, outDir] = args;
	const shape = shapeStr.split(',').map((s) => parseInt(s, 10));
	if (shape.length !== 4 || shape.some((d) => !(d > 0))) die(`bad shape "${shapeStr}" (want N,C,H,W)`);
	const count = shape.reduce((a, b) => a * b, 1);
	let buf;
	try {
		buf = fs.readFileSync(inputPath);
	} catch (e) {
		die(`cannot read ${inputPath}: ${e.message}`);
	}
	if (buf.length !== count * 4) die(`${inputPath}: ${buf.length} bytes, shape needs ${count * 4}`);
	const data = new Float32Array(count);
	for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(i * 4);

	let session;
	try {
		session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all' });
	} catch (e) {
		die(`cannot load ${modelPath}: ${e.message}`);
	}
	if (session.inputNames.length !== 1) die(`model has ${session.inputNames.length} inputs, want 1`);
	const inName = session.inputNames[0];
	const feeds = { [inName]: new ort.Tensor('float32', data, shape) };
	let res;
	let best = Infinity;
	for (let r = 0; r < runs; r++) {
		const t0 = process.hrtime.bigint();
		res = await session.run(feeds);
		const ms = Number(process.hrtime.bigint() - t0) / 1e6;
		if (ms < best) best = ms;
	}
	fs.mkdirSync(outDir, { recursive: true });
	const manifest = { model: path.resolve(modelPath), input: { name: inName, shape }, outputs: {}, ms: best };
	for (const name of session.outputNames) {
		const t = res[name];
		if (t.type !== 'float32') die(`output ${name} has type ${t.type}, want float32`);
		const out = Buffer.alloc(t.data.length * 4);
		for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i], i * 4);
		const file = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.f32`;
		fs.writeFileSync(path.join(outDir, file), out);
		manifest.outputs[name] = { shape: t.dims.map(Number), file };
	}
	fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
	process.stdout.write(`${Object.keys(manifest.outputs).length} outputs written to ${outDir} (${best.toFixed(1)} ms)\n`);
}

main().catch((e) => die(e.stack || String(e)));
