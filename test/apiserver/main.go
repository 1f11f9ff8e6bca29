// Command nnf-env-test-apiserver runs the real kube-apiserver (k8s.io/kubernetes, the same
// code as the released binary) over an embedded etcd, for nnf-env's tests and benchmarks.
// It listens with TLS on 127.0.0.1, installs the CRDs and manifests it is given, writes an
// admin kubeconfig and a service-account token, prints one JSON line on stdout when ready,
// and stops cleanly on SIGTERM or SIGINT. Arguments after "--" go to kube-apiserver as they are.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	utilversion "k8s.io/component-base/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

type config struct {
	dataDir             string
	port                int
	kubeconfigOut       string
	saKubeconfigOut     string
	tokenOut            string
	caOut               string
	crds                multiFlag
	apply               multiFlag
	serviceAccount      string
	tokenTTL            time.Duration
	maxInflight         int
	maxMutatingInflight int
	watchCache          bool
	watchCacheSizes     string
	etcdFsync           bool
	extra               []string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// ready is the one line printed on stdout once the server answers and is set up.
type ready struct {
	Event          string `json:"event"`
	URL            string `json:"url"`
	Port           int    `json:"port"`
	CAFile         string `json:"caFile"`
	Kubeconfig     string `json:"kubeconfig"`
	SAKubeconfig   string `json:"saKubeconfig,omitempty"`
	TokenFile      string `json:"tokenFile,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
	ControlURL     string `json:"controlUrl"`
	EtcdURL        string `json:"etcdUrl"`
	DataDir        string `json:"dataDir"`
	KubeVersion    string `json:"kubeVersion"`
	PID            int    `json:"pid"`
	StartupMs      int64  `json:"startupMs"`
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("nnf-env-test-apiserver", flag.ContinueOnError)
	fs.StringVar(&c.dataDir, "data-dir", "", "keep etcd data, certificates and tokens here (reused across restarts); default: a temp dir removed at exit")
	fs.IntVar(&c.port, "port", 0, "HTTPS port on 127.0.0.1 (0: the kernel picks one)")
	fs.StringVar(&c.kubeconfigOut, "kubeconfig-out", "", "write an admin kubeconfig here (default: <data-dir>/admin.kubeconfig)")
	fs.StringVar(&c.saKubeconfigOut, "sa-kubeconfig-out", "", "write a kubeconfig with the service-account token here")
	fs.StringVar(&c.tokenOut, "token-out", "", "write the service-account token here")
	fs.StringVar(&c.caOut, "ca-out", "", "copy the server's CA certificate here")
	fs.Var(&c.crds, "crds", "a CRD file or a directory of them to install before anything else (repeatable)")
	fs.Var(&c.apply, "apply", "a manifest file or directory to apply after the CRDs (repeatable), e.g. the RBAC example")
	fs.StringVar(&c.serviceAccount, "service-account", "", "namespace/name of the service account whose token to write (default: the first ServiceAccount in --apply)")
	fs.DurationVar(&c.tokenTTL, "token-ttl", 24*time.Hour, "lifetime of the service-account token")
	fs.IntVar(&c.maxInflight, "max-requests-inflight", 400, "kube-apiserver --max-requests-inflight")
	fs.IntVar(&c.maxMutatingInflight, "max-mutating-requests-inflight", 200, "kube-apiserver --max-mutating-requests-inflight")
	fs.BoolVar(&c.watchCache, "watch-cache", true, "kube-apiserver --watch-cache")
	fs.StringVar(&c.watchCacheSizes, "watch-cache-sizes", "", "kube-apiserver --watch-cache-sizes")
	fs.BoolVar(&c.etcdFsync, "etcd-fsync", false, "let etcd fsync its writes (off: faster, enough for tests)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.extra = fs.Args()
	if c.port < 0 || c.port > 65535 {
		return nil, fmt.Errorf("--port %d: not a port", c.port)
	}
	if c.serviceAccount != "" && !strings.Contains(c.serviceAccount, "/") {
		return nil, fmt.Errorf("--service-account %q: want namespace/name", c.serviceAccount)
	}
	return c, nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "nnf-env-test-apiserver:", err)
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "nnf-env-test-apiserver:", err)
		os.Exit(1)
	}
}

func run(c *config) error {
	started := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	dataDir := c.dataDir
	if dataDir == "" {
		d, err := os.MkdirTemp("", "nnf-env-apiserver-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dataDir = d
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	crds, err := readManifests(c.crds)
	if err != nil {
		return err
	}
	manifests, err := readManifests(c.apply)
	if err != nil {
		return err
	}
	saNamespace, saName, haveSA := firstServiceAccount(manifests)
	if c.serviceAccount != "" {
		saNamespace, saName, _ = strings.Cut(c.serviceAccount, "/")
		haveSA = true
	}
	if (c.tokenOut != "" || c.saKubeconfigOut != "") && !haveSA {
		return errors.New("--token-out/--sa-kubeconfig-out need a ServiceAccount in --apply or --service-account")
	}

	keys, err := ensurePKI(filepath.Join(dataDir, "pki"))
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	etcd, err := startEtcd(filepath.Join(dataDir, "etcd"), c.etcdFsync)
	if err != nil {
		return err
	}
	defer etcd.close()
	control, err := startControl(etcd)
	if err != nil {
		return err
	}
	defer control.close()

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)))
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%d: %w", c.port, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	serverURL := fmt.Sprintf("https://127.0.0.1:%d", port)

	opts, err := apiserverOptions(c, keys, etcd.url, dataDir, ln)
	if err != nil {
		ln.Close()
		return err
	}
	errCh := make(chan error, 1)
	go func() { errCh <- app.Run(ctx, opts) }()

	caPEM, err := os.ReadFile(keys.caFile)
	if err != nil {
		return err
	}
	admin := &rest.Config{Host: serverURL, BearerToken: keys.adminToken, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}, QPS: 100, Burst: 200}
	setup := func() (*ready, error) {
		if err := waitReady(ctx, admin, errCh); err != nil {
			return nil, err
		}
		b, err := newBootstrapper(admin)
		if err != nil {
			return nil, err
		}
		if err := b.apply(ctx, crds); err != nil {
			return nil, err
		}
		if err := b.waitNamespace(ctx, "default"); err != nil {
			return nil, fmt.Errorf("namespace default: %w", err)
		}
		if err := b.ensureNamespaces(ctx, manifests); err != nil {
			return nil, err
		}
		if err := b.apply(ctx, manifests); err != nil {
			return nil, err
		}
		r := &ready{Event: "ready", URL: serverURL, Port: port, CAFile: keys.caFile, ControlURL: control.url(), EtcdURL: etcd.url, DataDir: dataDir, KubeVersion: utilversion.Get().GitVersion, PID: os.Getpid()}
		r.Kubeconfig = c.kubeconfigOut
		if r.Kubeconfig == "" {
			r.Kubeconfig = filepath.Join(dataDir, "admin.kubeconfig")
		}
		if err := writeKubeconfig(r.Kubeconfig, serverURL, caPEM, "nnf-env-admin", keys.adminToken); err != nil {
			return nil, err
		}
		if c.caOut != "" {
			if err := writeFileAtomic(c.caOut, caPEM, 0o644); err != nil {
				return nil, err
			}
			r.CAFile = c.caOut
		}
		if haveSA {
			token, err := b.serviceAccountToken(ctx, saNamespace, saName, c.tokenTTL)
			if err != nil {
				return nil, err
			}
			r.ServiceAccount = saNamespace + "/" + saName
			r.TokenFile = c.tokenOut
			if r.TokenFile == "" {
				r.TokenFile = filepath.Join(dataDir, "service-account.token")
			}
			if err := writeFileAtomic(r.TokenFile, []byte(token), 0o600); err != nil {
				return nil, err
			}
			if c.saKubeconfigOut != "" {
				if err := writeKubeconfig(c.saKubeconfigOut, serverURL, caPEM, saName, token); err != nil {
					return nil, err
				}
				r.SAKubeconfig = c.saKubeconfigOut
			}
		}
		r.StartupMs = time.Since(started).Milliseconds()
		return r, nil
	}
	r, err := setup()
	if err != nil {
		stop()
		<-errCh
		return err
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))

	// Run returns once the signal context is done and the server has drained.
	if err := <-errCh; err != nil && ctx.Err() == nil {
		return fmt.Errorf("kube-apiserver stopped: %w", err)
	}
	return nil
}

// apiserverOptions builds kube-apiserver's own options from its own flags, as its command
// does, with the listener already bound (no port race).
func apiserverOptions(c *config, keys *pki, etcdURL, dataDir string, ln net.Listener) (options.CompletedOptions, error) {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port),
		"--cert-dir=" + filepath.Join(dataDir, "pki"),
		"--tls-cert-file=" + keys.certFile,
		"--tls-private-key-file=" + keys.keyFile,
		"--etcd-servers=" + etcdURL,
		"--token-auth-file=" + keys.tokenAuthFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + keys.saKeyFile,
		"--service-account-signing-key-file=" + keys.saKeyFile,
		// Only an allocation range for Service objects; nothing is ever sent there.
		"--service-cluster-ip-range=10.0.0.0/24",
		"--profiling=false",
		// The lease reconciler refuses a loopback advertise address; there is no Service
		// "kubernetes" endpoint to keep anyway.
		"--endpoint-reconciler-type=none",
		"--max-requests-inflight=" + strconv.Itoa(c.maxInflight),
		"--max-mutating-requests-inflight=" + strconv.Itoa(c.maxMutatingInflight),
		"--watch-cache=" + strconv.FormatBool(c.watchCache),
	}
	if c.watchCacheSizes != "" {
		args = append(args, "--watch-cache-sizes="+c.watchCacheSizes)
	}
	args = append(args, c.extra...)
	if err := fs.Parse(args); err != nil {
		return options.CompletedOptions{}, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return options.CompletedOptions{}, err
	}
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return options.CompletedOptions{}, err
	}
	s.SecureServing.Listener = ln
	completed, err := s.Complete(context.Background())
	if err != nil {
		return options.CompletedOptions{}, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return options.CompletedOptions{}, fmt.Errorf("kube-apiserver options: %v", errs)
	}
	return completed, nil
}

// waitReady polls /readyz until it answers 200, kube-apiserver fails, or a minute passes.
func waitReady(ctx context.Context, cfg *rest.Config, errCh chan error) error {
	client, err := rest.UnversionedRESTClientFor(withNegotiation(cfg))
	if err != nil {
		return err
	}
	return poll(ctx, 2*time.Minute, func() (bool, error) {
		select {
		case err := <-errCh:
			errCh <- err
			return false, fmt.Errorf("kube-apiserver exited before it was ready: %v", err)
		default:
		}
		status := 0
		client.Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		return status == 200, nil
	})
}
