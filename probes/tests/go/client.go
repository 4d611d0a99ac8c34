//go:build ignore

// client.go - a Go program calling LLM APIs with nothing but the standard
// library (crypto/tls, net/http).  test_probe_gofind.c builds it to find
// crypto/tls in a real Go program; tests/e2e/test_probe_go.sh runs it
// against the mock under the probe.
//
//	go build -o client client.go
//	client BASE_URL h2|h1 CALL...
//
// Each CALL is "path" or "path:stream" (the body asks for a stream and
// the client reads it as it comes).  h2 is Go's default over TLS (ALPN);
// h1 forces HTTP/1.1.  The CA comes from SSL_CERT_FILE.  With
// CLIENT_WAIT_FOR=FILE it waits until FILE exists before the first call
// (a Go process already running when the probe starts).  Prints one line
// per call: its status and the bytes of the answer.
package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: client BASE_URL h2|h1 CALL...")
		os.Exit(2)
	}
	base, proto := os.Args[1], os.Args[2]
	tr := &http.Transport{ForceAttemptHTTP2: true}
	if proto == "h1" {
		// an empty map turns HTTP/2 off
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		tr.ForceAttemptHTTP2 = false
	}
	client := &http.Client{Transport: tr}
	if f := os.Getenv("CLIENT_WAIT_FOR"); f != "" {
		for {
			if _, err := os.Stat(f); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, call := range os.Args[3:] {
		path, stream := call, false
		if strings.HasSuffix(call, ":stream") {
			path, stream = strings.TrimSuffix(call, ":stream"), true
		}
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":40,"stream":%v,`+
			`"stream_options":{"include_usage":true},`+
			`"messages":[{"role":"user","content":"go call %d"}]}`, stream, i)
		if strings.HasSuffix(path, "/messages") {
			body = fmt.Sprintf(`{"model":"claude-3-5-haiku-latest","max_tokens":40,`+
				`"stream":%v,"messages":[{"role":"user","content":"go call %d"}]}`, stream, i)
		}
		req, err := http.NewRequest("POST", base+path, bytes.NewBufferString(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		// a dummy key: the tests check it reaches no record or log
		req.Header.Set("Authorization", "Bearer sk-tokentap-secret-go")
		req.Header.Set("x-api-key", "sk-ant-tokentap-secret-go")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "call failed:", err)
			os.Exit(1)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			fmt.Fprintln(os.Stderr, "call failed:", resp.Status, err)
			os.Exit(1)
		}
		fmt.Printf("%s %d %s %d\n", path, resp.StatusCode, resp.Proto, n)
	}
}
