package compile

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/keelproxy/keel/internal/acme"
	"github.com/keelproxy/keel/internal/certs"
	"github.com/keelproxy/keel/internal/config"
)

// Environment variables naming the default certificate (SPEC section 2),
// served when the config names none for a handshake.
const (
	EnvTLSCert = "PROXY_TLS_CERT"
	EnvTLSKey  = "PROXY_TLS_KEY"
)

// tlsStore compiles the tls section and the default certificate into the
// snapshot's certificate store; nil when neither exists. Files are read
// now, so a missing or broken certificate rejects the config here instead
// of failing handshakes after the swap.
func tlsStore(cfg *config.Config, d Deps, acmeKeys *[]string) (*certs.Store, error) {
	lookup := d.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	certFile, _ := lookup(EnvTLSCert)
	keyFile, _ := lookup(EnvTLSKey)
	t := cfg.TLS
	if t == nil && certFile == "" && keyFile == "" && !d.TLSListener {
		return nil, nil
	}
	var o certs.Options
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%s and %s must be set together", EnvTLSCert, EnvTLSKey)
	}
	if certFile != "" {
		c, _, err := certs.Load(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("default certificate (%s/%s): %w", EnvTLSCert, EnvTLSKey, err)
		}
		o.Default = c
	}
	if t != nil {
		if t.MinVersion == "1.3" {
			o.MinVersion = tls.VersionTLS13
		}
		for i, c := range t.Certificates {
			p := fmt.Sprintf("tls.certificates[%d]", i)
			cert, names, err := certs.Load(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, config.Errors{{Path: p, Message: err.Error()}}
			}
			if c.SNI != "" {
				names = []string{strings.ToLower(c.SNI)}
			} else if len(names) == 0 {
				return nil, config.Errors{{Path: p + ".sni",
					Message: fmt.Sprintf("required: %s names no DNS name to serve it for", c.CertFile)}}
			}
			o.Certificates = append(o.Certificates, certs.Certificate{Cert: cert, Names: names})
		}
		if m := t.MTLS; m != nil && m.Enabled {
			pool, err := certs.LoadCAs(m.CAFile)
			if err != nil {
				return nil, config.Errors{{Path: "tls.mtls.ca_file", Message: err.Error()}}
			}
			o.ClientCAs, o.RequireClientCert = pool, m.RequireClientCert
		}
		if a := t.ACME; a != nil {
			opts := acme.Options{Email: a.Email, DirectoryURL: a.DirectoryURL, Domains: a.Domains, Storage: a.Storage}
			if d.ACME == nil {
				// A dry run: check the settings, serve nothing.
				if _, err := acme.New(opts); err != nil {
					return nil, config.Errors{{Path: "tls.acme", Message: err.Error()}}
				}
			} else {
				m, key, err := d.ACME(opts)
				if err != nil {
					return nil, config.Errors{{Path: "tls.acme", Message: err.Error()}}
				}
				o.ACME = m
				*acmeKeys = append(*acmeKeys, key)
			}
		}
	}
	s, err := certs.New(o)
	if err != nil {
		return nil, config.Errors{{Path: "tls.certificates", Message: err.Error()}}
	}
	if d.TLSListener && s.Empty() {
		return nil, config.Errors{{Path: "tls", Message: "the TLS listener (-tls-addr) needs a certificate: " +
			"tls.certificates, tls.acme, or " + EnvTLSCert + "/" + EnvTLSKey}}
	}
	return s, nil
}

// DefaultTLS builds the certificate store of a TLS listener that runs
// without a config: the default certificate from PROXY_TLS_CERT and
// PROXY_TLS_KEY (lookup nil means os.LookupEnv), or an error saying the
// listener has none.
func DefaultTLS(lookup func(string) (string, bool)) (*certs.Store, error) {
	return tlsStore(&config.Config{}, Deps{LookupEnv: lookup, TLSListener: true}, new([]string))
}

// FilesDigest hashes the contents of the files a config reads when it is
// compiled (certificates, keys, CA bundles, JWKS files), with the default
// certificate's. The apply pipeline compares it with the running
// snapshot's so that re-applying an unchanged config after the files were
// rotated (the usual certificate renewal: new files, then SIGHUP) still
// rebuilds the snapshot. Unreadable files hash as their error: compile
// reports them properly.
func FilesDigest(cfg *config.Config, lookup func(string) (string, bool)) string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var files []string
	if f, ok := lookup(EnvTLSCert); ok {
		files = append(files, f)
	}
	if f, ok := lookup(EnvTLSKey); ok {
		files = append(files, f)
	}
	if t := cfg.TLS; t != nil {
		for _, c := range t.Certificates {
			files = append(files, c.CertFile, c.KeyFile)
		}
		if t.MTLS != nil {
			files = append(files, t.MTLS.CAFile)
		}
	}
	for _, p := range cfg.Pools {
		if t := p.TLS; t != nil {
			files = append(files, t.CAFile, t.CertFile, t.KeyFile)
		}
	}
	for _, ch := range cfg.Middleware {
		for _, st := range ch.Stages {
			if st.Config != nil && st.Config.JWT != nil {
				files = append(files, st.Config.JWT.JWKSFile)
			}
		}
	}
	if len(files) == 0 {
		return ""
	}
	h := sha256.New()
	for _, f := range files {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			b = []byte(err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
