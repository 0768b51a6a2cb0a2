#!/usr/bin/env node
// onnxruntime side of the cpu-infer benchmark (scripts/bench-cpu-infer.sh): frames/s of a
// single-input NCHW model on onnxruntime-node's CPU provider, the same input and shapes as
// perf/bench_cpu_infer.c.
//
//   node perf/bench_ort.js MODEL.onnx SIZE BATCH THREADS [--min-time S] [--warmup K]
//                          [--channels C]
//
// Threads: intraOpNumThreads = THREADS, interOpNumThreads = 1, sequential execution, all
// graph optimisations. The input (C channels, default 3) is the pattern the shoal runner
// writes (x[i] = ((i * 2654435761) mod 2^32) / 2^32, float32). Warms up K runs (default 3), then
// runs until S seconds (default 2) and at least 5 runs have passed. Prints one line:
//   ort: size=S batch=B threads=T runs=R fps=F p50_ms=M min_ms=L
// onnxruntime-node is taken from tests/models/ort/node_modules (npm install there first).
'use strict';

const path = require('path');

function die(msg) {
	process.stderr.write(`bench_ort: ${msg}\n`);
	process.exit(2);
}

let ort;
try {
	ort = require(path.join(__dirname, '..', 'tests', 'models', 'ort', 'node_modules',
		'onnxruntime-node'));
} catch (e) {
	die('onnxruntime-node absent (cd tests/models/ort && npm install)');
}

function intArg(s, what) {
	const v = Number(s);
	if (!Number.isInteger(v) || v < 1) die(`${what} wants a positive integer, got "${s}"`);
	return v;
}

async function main() {
	const args = process.argv.slice(2);
	let minTime = 2, warmup = 3, channels = 3;
	for (let k = 0; k < args.length;) {
		if (args[k] === '--min-time') {
			minTime = Number(args[k + 1]);
			if (!(minTime > 0)) die('--min-time wants seconds > 0');
			args.splice(k, 2);
		} else if (args[k] === '--channels') {
			channels = intArg(args[k + 1], '--channels');
			args.splice(k, 2);
		} else if (args[k] === '--warmup') {
			warmup = Number(args[k + 1]);
			if (!Number.isInteger(warmup) || warmup < 0) die('--warmup wants an integer >= 0');
			args.splice(k, 2);
		} else {
			k++;
		}
	}
	if (args.length !== 4)
		die('usage: bench_ort.js MODEL.onnx SIZE BATCH THREADS [--min-time S] [--warmup K] ' +
			'[--channels C]');
	const model = args[0];
	const size = intArg(args[1], 'SIZE'), batch = intArg(args[2], 'BATCH');
	const threads = intArg(args[3], 'THREADS');
	let session;
	try {
		session = await ort.InferenceSession.create(model, {
			graphOptimizationLevel: 'all',
			executionMode: 'sequential',
			intraOpNumThreads: threads,
			interOpNumThreads: 1,
		});
	} catch (e) {
		die(`cannot load ${model}: ${e.message}`);
	}
	if (session.inputNames.length !== 1) die(`model has ${session.inputNames.length} inputs, want 1`);
	const shape = [batch, channels, size, size];
	const count = batch * channels * size * size;
	const data = new Float32Array(count);
	for (let i = 0; i < count; i++)
		data[i] = Number((BigInt(i) * 2654435761n) & 0xffffffffn) / 4294967296;
	const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
	for (let r = 0; r < warmup; r++) await session.run(feeds);
	const ms = [];
	const start = process.hrtime.bigint();
	let elapsed = 0;
	while (elapsed < minTime || ms.length < 5) {
		const t0 = process.hrtime.bigint();
		await session.run(feeds);
		const t1 = process.hrtime.bigint();
		ms.push(Number(t1 - t0) / 1e6);
		elapsed = Number(t1 - start) / 1e9;
	}
	const sorted = ms.slice().sort((a, b) => a - b);
	const fps = (ms.length * batch) / elapsed;
	process.stdout.write(`ort: size=${size} batch=${batch} threads=${threads} runs=${ms.length} ` +
		`fps=${fps.toFixed(2)} p50_ms=${sorted[Math.floor(sorted.length / 2)].toFixed(2)} ` +
		`min_ms=${sorted[0].toFixed(2)}\n`);
}

main().catch((e) => die(e.stack || String(e)));
