// HF tokenizers (the Rust library, through its Node bindings: `npm install tokenizers`) on the
// text tokenizer_bench wrote, for BENCHMARKS.md; the same measurement as bench/tokenizer_hf.py for
// machines with Node but no Python package.
//
//   build/tokenizer_bench MODEL_DIR 100 1 /tmp/text.jsonl
//   NODE_PATH=/path/to/node_modules node bench/tokenizer_hf.mjs MODEL_DIR /tmp/text.jsonl
//
// Prints MB/s per CPU second with one document at a time (each encode awaited before the next,
// as gpujob's single-thread figure), MB/s with encodeBatch on every core, and the total token
// count, which must equal gpujob's.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import os from "node:os";

const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");

const [modelDir, textPath] = process.argv.slice(2);
if (!modelDir || !textPath) {
  console.error("usage: node bench/tokenizer_hf.mjs MODEL_DIR TEXT.jsonl");
  process.exit(2);
}
const tokenizer = Tokenizer.fromFile(join(modelDir, "tokenizer.json"));
const docs = readFileSync(textPath, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
const megabytes = docs.reduce((n, d) => n + Buffer.byteLength(d, "utf8"), 0) / 1e6;
const options = { addSpecialTokens: false };

const cpu0 = process.cpuUsage();
let wall0 = process.hrtime.bigint();
let tokens = 0;
for (const d of docs) tokens += (await tokenizer.encode(d, null, options)).getIds().length;
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
let wall = Number(process.hrtime.bigint() - wall0) / 1e9;
console.log(`HF tokenizers ${modelDir}: ${megabytes.toFixed(1)} MB, ${tokens} tokens, 1 document at a time: ` +
            `${(megabytes / cpuSeconds).toFixed(1)} MB/s per CPU second (${cpuSeconds.toFixed(2)} s CPU), ` +
            `${(megabytes / wall).toFixed(1)} MB/s wall`);

wall0 = process.hrtime.bigint();
const batch = await tokenizer.encodeBatch(docs, options);
wall = Number(process.hrtime.bigint() - wall0) / 1e9;
const batchTokens = batch.reduce((n, e) => n + e.getIds().length, 0);
console.log(`HF tokenizers encodeBatch, ${os.cpus().length} cores: ${(megabytes / wall).toFixed(1)} MB/s ` +
            `(${wall.toFixed(2)} s), ${batchTokens} tokens`);
