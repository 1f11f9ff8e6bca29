package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the files the server and its clients use. They live in the data dir and are
// reused when it is kept, so clients of a restarted server still trust it and its tokens.
type pki struct {
	caFile, certFile, keyFile string
	saKeyFile                 string
	tokenAuthFile             string
	adminToken                string
}

func ensurePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{
		caFile:        filepath.Join(dir, "ca.crt"),
		certFile:      filepath.Join(dir, "apiserver.crt"),
		keyFile:       filepath.Join(dir, "apiserver.key"),
		saKeyFile:     filepath.Join(dir, "service-account.key"),
		tokenAuthFile: filepath.Join(dir, "tokens.csv"),
	}
	if _, err := os.Stat(p.certFile); errors.Is(err, os.ErrNotExist) {
		if err := p.generate(); err != nil {
			return nil, err
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return nil, err
	}
	p.adminToken = string(tok)
	return p, nil
}

func (p *pki) generate() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "nnf-env test apiserver CA"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tokenBytes := make([]byte, 32)
	if _, err := rand.Read(tokenBytes); err != nil {
		return err
	}
	adminToken := hex.EncodeToString(tokenBytes)

	files := []struct {
		path string
		data []byte
	}{
		{p.caFile, pemBlock("CERTIFICATE", caDER)},
		{p.certFile + ".tmp", pemBlock("CERTIFICATE", srvDER)},
		{p.keyFile, mustECKey(srvKey)},
		{p.saKeyFile, mustECKey(saKey)},
		// The admin is a static token in system:masters (kube-apiserver's --token-auth-file).
		{p.tokenAuthFile, []byte(fmt.Sprintf("%s,nnf-env-admin,nnf-env-admin,system:masters\n", adminToken))},
		{filepath.Join(filepath.Dir(p.caFile), "admin.token"), []byte(adminToken)},
	}
	for _, f := range files {
		if err := writeFileAtomic(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	// The serving certificate is written last: its presence says the set is complete.
	return os.Rename(p.certFile+".tmp", p.certFile)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func mustECKey(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

// writeFileAtomic writes a sibling temp file and renames it over path, so a reader never
// sees a half-written kubeconfig, token or key.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
