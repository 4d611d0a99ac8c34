// bench_tls_loop.mjs - node:tls in a loop under Bun (BoringSSL inside the
// bun executable), for bench/bench_probe_stacks.sh: a server and a client
// in one process on 127.0.0.1, N round trips of SIZE bytes each way on
// one connection.
//
//   bun bench_tls_loop.mjs CERT KEY N SIZE [raw|http]
//
// CERT (for the name "bench") and KEY are PEM files.  raw sends SIZE
// bytes of 'x' (tokentap-probe gives such a connection up after its first
// bytes); http makes each request an HTTP/1.1 POST and each answer a 200,
// SIZE bytes with their headers, keep-alive, so the probe decodes every
// byte.  Prints one JSON line: ssl_calls (the loop's socket writes and
// 'data' events, both ends: the TLS writes and reads JavaScript sees;
// the SSL_read calls under them can be more), cpu_s (this process's
// user+system CPU over the loop, process.cpuUsage()) and wall_s; the
// handshake is before, not counted.
import { readFileSync } from "node:fs";
import tls from "node:tls";

const [certFile, keyFile, nArg, sizeArg, shape = "raw"] = process.argv.slice(2);
const n = Number(nArg), size = Number(sizeArg);
if (!keyFile || !(n >= 1) || !(size >= 1) || !["raw", "http"].includes(shape)) {
	console.error("usage: bun bench_tls_loop.mjs CERT KEY N SIZE [raw|http]");
	process.exit(2);
}

// SIZE bytes: 'x' alone, or an HTTP/1.1 message (head(body length))
// padded to SIZE; the length's digits change the head's length.
function message(head) {
	const b = Buffer.alloc(size, "x");
	if (shape === "raw")
		return b;
	let body = size - head(0).length;
	while (head(body).length !== size - body)
		body = size - head(body).length;
	if (body < 2)
		throw new Error(`SIZE ${size} is too small for an HTTP message`);
	b.write(head(body), 0, "latin1");
	b[size - body] = 0x7b; // {
	b[size - 1] = 0x7d; // }
	return b;
}
const req = message((len) => "POST /v1/chat/completions HTTP/1.1\r\n" +
	"Host: bench\r\nContent-Type: application/json\r\n" +
	`Content-Length: ${len}\r\n\r\n`);
const resp = message((len) => "HTTP/1.1 200 OK\r\n" +
	`Content-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`);

const cert = readFileSync(certFile);
let calls = 0;
let cpu0, t0;

const server = tls.createServer({ cert, key: readFileSync(keyFile) }, (s) => {
	let got = 0;
	s.on("data", (d) => {
		calls++;
		got += d.length;
		while (got >= size) { // one request whole: answer it
			got -= size;
			s.write(resp);
			calls++;
		}
	});
	s.on("error", (e) => fail(e));
});

function fail(e) {
	console.error("bench_tls_loop:", e.message || e);
	process.exit(1);
}

server.listen(0, "127.0.0.1", () => {
	const c = tls.connect({
		host: "127.0.0.1", port: server.address().port, ca: cert,
		servername: "bench",
	}, () => {
		cpu0 = process.cpuUsage();
		t0 = process.hrtime.bigint();
		c.write(req);
		calls++;
	});
	let got = 0, done = 0;
	c.on("data", (d) => {
		calls++;
		got += d.length;
		while (got >= size) {
			got -= size;
			if (++done === n)
				return finish(c);
			c.write(req);
			calls++;
		}
	});
	c.on("error", (e) => fail(e));
});

function finish(c) {
	const cpu = process.cpuUsage(cpu0);
	const wall = Number(process.hrtime.bigint() - t0) / 1e9;
	console.log(JSON.stringify({
		ssl_calls: calls, cpu_s: (cpu.user + cpu.system) / 1e6, wall_s: wall,
		round_trips: n, size, shape,
	}));
	c.destroy();
	server.close();
	process.exit(0);
}
