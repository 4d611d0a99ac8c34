// One LLM call with Node's fetch, then exit: the shortest life a program
// that calls an LLM can have, for test_probe_exec.sh.
//
//   node node_once.mjs URL TAG
// Prints one JSON line: the call's duration and the process's whole life
// so far, in milliseconds.
const [url, tag] = process.argv.slice(2);
const t0 = performance.now();
const r = await fetch(url, {
	method: "POST",
	headers: {
		"content-type": "application/json",
		// a dummy key: the tests check it reaches no record or log
		authorization: "Bearer sk-tokentap-secret-once",
	},
	body: JSON.stringify({
		model: "gpt-4o-mini",
		max_tokens: 8,
		messages: [{ role: "user", content: "one call, then exit " + tag }],
	}),
});
const body = await r.text();
if (r.status !== 200) throw new Error("status " + r.status + ": " + body);
const call_ms = performance.now() - t0;
console.log(JSON.stringify({ call_ms, life_ms: performance.now() }));
