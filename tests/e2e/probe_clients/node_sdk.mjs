// LLM calls through the official SDKs on Node.js (whose OpenSSL is inside
// the node executable), for the tokentap-probe tests.
//
//   node node_sdk.mjs BASE_URL [GO_FILE]
// NODE_PATH-less: the SDKs are imported from $TT_NPM/node_modules.  With
// GO_FILE, waits until that file exists before calling (so the probe can
// find this already running process on its own).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";

const [base, goFile] = process.argv.slice(2);
const require = createRequire(process.env.TT_NPM + "/node_modules/");
const OpenAI = require("openai");
const Anthropic = require("@anthropic-ai/sdk");

if (goFile) {
	for (let i = 0; i < 600 && !existsSync(goFile); i++) await sleep(50);
}

// Dummy keys: the tests check that they never reach a record or a log.
const openai = new OpenAI({ apiKey: "sk-tokentap-secret-openai", baseURL: base + "/v1" });
const anthropic = new Anthropic({ apiKey: "sk-ant-tokentap-secret", baseURL: base });

const chat = await openai.chat.completions.create({
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Node, OpenAI SDK, not streamed" }],
});
if (!chat.usage) throw new Error("no usage in the chat answer");

const stream = await openai.chat.completions.create({
	model: "gpt-4o-mini",
	stream: true,
	stream_options: { include_usage: true },
	max_completion_tokens: 40,
	messages: [{ role: "user", content: "Node, OpenAI SDK, streamed" }],
});
for await (const _ of stream) { /* drain */ }

const msg = await anthropic.messages.create({
	model: "claude-3-5-haiku-latest",
	max_tokens: 60,
	messages: [{ role: "user", content: "Node, Anthropic SDK, not streamed" }],
});
if (!msg.usage) throw new Error("no usage in the message");

const ms = await anthropic.messages.create({
	model: "claude-3-5-haiku-latest",
	max_tokens: 60,
	stream: true,
	system: "You answer briefly.",
	messages: [{ role: "user", content: "Node, Anthropic SDK, streamed" }],
});
for await (const _ of ms) { /* drain */ }
console.log("calls done");
