//go:build ignore

// tlsloop.go - Go's crypto/tls in a loop, for bench/bench_probe_stacks.sh:
// a client and a server in one process over loopback TCP, a self-signed
// P-256 certificate made here, N round trips of SIZE bytes each way on
// one connection.
//
//	go build -o tlsloop tlsloop.go
//	tlsloop N SIZE [raw|http]
//
// raw sends SIZE bytes of 'x' (tokentap-probe gives such a connection up
// after its first bytes); http makes each request an HTTP/1.1 POST and
// each answer a 200, SIZE bytes with their headers, keep-alive, so the
// probe decodes every byte.  Prints one JSON line: ssl_calls (the
// (*tls.Conn).Write and Read calls of the loop, both ends), cpu_s (this
// process's user+system CPU over the loop, getrusage) and wall_s; the
// handshake is before, not counted.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlsloop: "+format+"\n", a...)
	os.Exit(1)
}

// A certificate for "bench", valid for a day, and the pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		die("key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench"},
		DNSNames:     []string{"bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		die("certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		die("certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// SIZE bytes: 'x' alone, or an HTTP/1.1 message (head) padded to SIZE.
func message(size int, shape, head string) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'x'
	}
	if shape == "raw" {
		return b
	}
	h := fmt.Sprintf(head, 0)
	body := size - len(h)
	h = fmt.Sprintf(head, body)
	for len(h) != size-body {
		body = size - len(h)
		h = fmt.Sprintf(head, body)
	}
	if body < 2 {
		die("SIZE %d is too small for an HTTP message", size)
	}
	copy(b, h)
	b[len(h)] = '{'
	b[size-1] = '}'
	return b
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		die("getrusage: %v", err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tlsloop N SIZE [raw|http]")
		os.Exit(2)
	}
	n, err1 := strconv.Atoi(os.Args[1])
	size, err2 := strconv.Atoi(os.Args[2])
	shape := "raw"
	if len(os.Args) > 3 {
		shape = os.Args[3]
	}
	if err1 != nil || err2 != nil || n < 1 || size < 1 ||
		(shape != "raw" && shape != "http") {
		die("usage: tlsloop N SIZE [raw|http]")
	}
	req := message(size, shape, "POST /v1/chat/completions HTTP/1.1\r\n"+
		"Host: bench\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n")
	resp := message(size, shape, "HTTP/1.1 200 OK\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")

	cert, pool := selfSigned()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("listen: %v", err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			die("accept: %v", err)
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		die("dial: %v", err)
	}
	cli := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "bench"})
	srv := tls.Server(<-accepted, &tls.Config{Certificates: []tls.Certificate{cert}})
	hs := make(chan error, 1)
	go func() { hs <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		die("handshake: %v", err)
	}
	if err := <-hs; err != nil {
		die("server handshake: %v", err)
	}

	// Each end counts its own Write and Read calls (a record split by TCP
	// is still one Read: crypto/tls waits for the whole record).
	var srvCalls int
	done := make(chan error, 1)
	cpu0, t0 := cpuSeconds(), time.Now()
	go func() {
		buf := make([]byte, size)
		for i := 0; i < n; i++ {
			for got := 0; got < size; {
				k, err := srv.Read(buf[got:])
				srvCalls++
				if err != nil {
					done <- err
					return
				}
				got += k
			}
			if _, err := srv.Write(resp); err != nil {
				done <- err
				return
			}
			srvCalls++
		}
		done <- nil
	}()
	cliCalls := 0
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := cli.Write(req); err != nil {
			die("client write: %v", err)
		}
		cliCalls++
		if _, err := io.ReadFull(readCounter{cli, &cliCalls}, buf); err != nil {
			die("client read: %v", err)
		}
	}
	if err := <-done; err != nil {
		die("server: %v", err)
	}
	cpu, wall := cpuSeconds()-cpu0, time.Since(t0).Seconds()
	cli.Close()
	srv.Close()
	out, _ := json.Marshal(map[string]interface{}{
		"ssl_calls": cliCalls + srvCalls, "cpu_s": cpu, "wall_s": wall,
		"round_trips": n, "size": size, "shape": shape,
	})
	fmt.Println(string(out))
}

// readCounter counts the Read calls io.ReadFull makes.
type readCounter struct {
	c *tls.Conn
	n *int
}

func (r readCounter) Read(p []byte) (int, error) {
	*r.n++
	return r.c.Read(p)
}
