// One streamed Anthropic call with Node's fetch, read as it comes, for
// the paced end-to-end tests.
//
//   node node_stream.mjs URL
// Prints one JSON line: bytes read and the seconds the stream lasted.
const [url] = process.argv.slice(2);
const t0 = performance.now();
const r = await fetch(url, {
	method: "POST",
	headers: {
		"content-type": "application/json",
		"x-api-key": "sk-ant-tokentap-secret-stream", // must reach no record
		"anthropic-version": "2023-06-01",
	},
	body: JSON.stringify({
		model: "claude-3-5-haiku-latest",
		max_tokens: 4096,
		stream: true,
		messages: [{ role: "user", content: "node fetch, paced" }],
	}),
});
if (r.status !== 200) throw new Error("status " + r.status);
let bytes = 0;
for await (const chunk of r.body) bytes += chunk.length;
console.log(JSON.stringify({ bytes, seconds: (performance.now() - t0) / 1000 }));
