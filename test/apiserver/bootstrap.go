package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

const fieldManager = "nnf-env-test-apiserver"

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// readManifests reads every YAML document of the files given (a directory means its *.yaml
// and *.yml files, sorted), skipping empty documents. Errors name the file.
func readManifests(paths []string) ([]*unstructured.Unstructured, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
				names = append(names, filepath.Join(p, e.Name()))
			}
		}
		sort.Strings(names)
		files = append(files, names...)
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for i := 1; ; i++ {
			var obj map[string]interface{}
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: document %d: %w", f, i, err)
			}
			if len(obj) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
				return nil, fmt.Errorf("%s: document %d: needs apiVersion, kind and metadata.name", f, i)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

type bootstrapper struct {
	cfg     *rest.Config
	dyn     dynamic.Interface
	kube    kubernetes.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	cached  discovery.CachedDiscoveryInterface
	timeout time.Duration
}

func newBootstrapper(cfg *rest.Config) (*bootstrapper, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(kube.Discovery())
	return &bootstrapper{cfg: cfg, dyn: dyn, kube: kube, cached: cached, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached), timeout: time.Minute}, nil
}

// apply server-side applies each object (idempotent: a restart with a kept data dir applies
// the same objects again without error).
func (b *bootstrapper) apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		var mapping *meta.RESTMapping
		err := poll(ctx, b.timeout, func() (bool, error) {
			m, err := b.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				// A kind served only after an earlier CRD is established: refresh discovery.
				b.mapper.Reset()
				return false, nil
			}
			mapping = m
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("%s %s: kind not served: %w", gvk.Kind, o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = b.dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := o.GetNamespace()
			if ns == "" {
				ns = "default"
				o.SetNamespace(ns)
			}
			ri = b.dyn.Resource(mapping.Resource).Namespace(ns)
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply %s %s: %w", gvk.Kind, o.GetName(), err)
		}
		if mapping.Resource == crdGVR {
			if err := b.waitEstablished(ctx, o.GetName()); err != nil {
				return err
			}
			b.mapper.Reset()
		}
	}
	return nil
}

func (b *bootstrapper) waitEstablished(ctx context.Context, name string) error {
	err := poll(ctx, b.timeout, func() (bool, error) {
		crd, err := b.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]interface{})
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established: %w", name, err)
	}
	return nil
}

// waitNamespace waits for a namespace kube-apiserver creates itself (default, kube-system).
func (b *bootstrapper) waitNamespace(ctx context.Context, ns string) error {
	return poll(ctx, b.timeout, func() (bool, error) {
		_, err := b.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err == nil, nil
	})
}

// serviceAccountToken asks the TokenRequest API for a token of namespace/name.
func (b *bootstrapper) serviceAccountToken(ctx context.Context, namespace, name string, ttl time.Duration) (string, error) {
	seconds := int64(ttl.Seconds())
	var token string
	err := poll(ctx, b.timeout, func() (bool, error) {
		tr, err := b.kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
		}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		token = tr.Status.Token
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("token for service account %s/%s: %w", namespace, name, err)
	}
	return token, nil
}

// poll calls f every 100 ms until it answers true or an error, or until timeout.
func poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// firstServiceAccount is the namespace/name of the first ServiceAccount among objs.
func firstServiceAccount(objs []*unstructured.Unstructured) (string, string, bool) {
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" && o.GetAPIVersion() == "v1" {
			ns := o.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			return ns, o.GetName(), true
		}
	}
	return "", "", false
}

// ensureNamespaces creates the namespaces the manifests name (on a Rabbit system nnf-sos creates
// nnf-system; this test cluster has no nnf-sos), so that a Role in nnf-system can be applied.
func (b *bootstrapper) ensureNamespaces(ctx context.Context, objs []*unstructured.Unstructured) error {
	nsGVR := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	seen := map[string]bool{"default": true}
	for _, o := range objs {
		ns := o.GetNamespace()
		if ns == "" || seen[ns] {
			continue
		}
		seen[ns] = true
		obj := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]interface{}{"name": ns}}}
		if _, err := b.dyn.Resource(nsGVR).Apply(ctx, ns, obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}
