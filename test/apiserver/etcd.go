package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// embeddedEtcd is a single-member etcd inside this process, on loopback ports the kernel
// picks, keeping its data under dir (so a restart with the same dir finds the same objects
// and revisions).
type embeddedEtcd struct {
	server *embed.Etcd
	client *clientv3.Client
	url    string
}

func startEtcd(dir string, fsync bool) (*embeddedEtcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "nnf-env-test"
	cfg.Dir = dir
	// Tests want speed over durability across a power cut; a clean stop still syncs.
	cfg.UnsafeNoFsync = !fsync
	loopback := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loopback}
	cfg.AdvertiseClientUrls = []url.URL{loopback}
	cfg.ListenPeerUrls = []url.URL{loopback}
	cfg.AdvertisePeerUrls = []url.URL{loopback}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	// No auto-compaction (embed's default retention "0"): kube-apiserver compacts on its own
	// schedule (--etcd-compaction-interval), the control endpoint on demand.

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd: not ready after 60 s")
	}
	if len(e.Clients) == 0 {
		e.Close()
		return nil, fmt.Errorf("etcd: no client listener")
	}
	return &embeddedEtcd{
		server: e,
		client: v3client.New(e.Server),
		url:    "http://" + e.Clients[0].Addr().String(),
	}, nil
}

// compact compacts etcd's history up to its current revision, so that a watch or a
// consistent list from any older revision is answered 410 Gone (when it reaches etcd rather
// than kube-apiserver's watch cache).
func (e *embeddedEtcd) compact(ctx context.Context) (int64, error) {
	// Any read returns the store's current revision in its header.
	resp, err := e.client.Get(ctx, "compact-revision-probe", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	if _, err := e.client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return 0, err
	}
	return rev, nil
}

func (e *embeddedEtcd) close() {
	_ = e.client.Close()
	e.server.Close()
}
