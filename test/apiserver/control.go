package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"
)

// controlServer is a plain-HTTP endpoint on loopback for what a test needs besides the API:
// POST /compact compacts etcd to its current revision and answers {"revision": N}.
type controlServer struct {
	listener net.Listener
	server   *http.Server
}

func startControl(etcd *embeddedEtcd) (*controlServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /compact", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		rev, err := etcd.compact(ctx)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]int64{"revision": rev})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return &controlServer{listener: ln, server: s}, nil
}

func (c *controlServer) url() string { return "http://" + c.listener.Addr().String() }

func (c *controlServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.server.Shutdown(ctx)
}
