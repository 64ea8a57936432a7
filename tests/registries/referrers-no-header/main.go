// Command referrers-no-header serves an in-memory OCI registry (go-containerregistry's
// pkg/registry) that implements the referrers API but never sends the OCI-Subject header on a
// manifest PUT with a subject. Integration tests use it to exercise clients that must fall back
// to probing the referrers API instead of trusting the header.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// stripOCISubject removes any OCI-Subject header the wrapped handler may set.
type stripOCISubject struct {
	http.ResponseWriter
}

func (w stripOCISubject) WriteHeader(status int) {
	w.Header().Del("OCI-Subject")
	w.ResponseWriter.WriteHeader(status)
}

func (w stripOCISubject) Write(b []byte) (int, error) {
	w.Header().Del("OCI-Subject")
	return w.ResponseWriter.Write(b)
}

func main() {
	port := flag.Int("port", 0, "TCP port to listen on (0 picks a free port)")
	flag.Parse()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	reg := registry.New(
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(os.Stderr, "", log.LstdFlags)),
	)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.ServeHTTP(stripOCISubject{w}, r)
	})
	addr := ln.Addr().(*net.TCPAddr)
	fmt.Fprintf(os.Stdout, "listening on 127.0.0.1:%d\n", addr.Port)
	_ = os.Stdout.Sync()

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
