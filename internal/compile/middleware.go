package compile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/keelproxy/keel/internal/auth"
	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/snapshot"
	"github.com/keelproxy/keel/internal/tracing"
)

// chain compiles a middleware chain into the stages of one route. Stages
// run in config order on the request and backwards on the response.
func chain(c *config.Chain, d Deps, s *snapshot.Snapshot, policies map[string]*config.Policy, redisAddr string) ([]proxy.Middleware, error) {
	stages := make([]proxy.Middleware, 0, len(c.Stages))
	traced := false // a tracing stage came before: later stages get spans
	for i := range c.Stages {
		st := &c.Stages[i]
		var m proxy.Middleware
		switch st.Type {
		case config.StageRequestID:
			m = proxy.RequestIDStage()
		case config.StageHeaderTransform:
			var req, resp *proxy.HeaderEdit
			if sc := st.Config; sc != nil {
				req = headerEdit(sc.Add, sc.Remove)
				resp = headerEdit(sc.ResponseAdd, sc.ResponseRemove)
			}
			m = proxy.HeaderTransformStage(req, resp)
		case config.StageAccessLog:
			m = proxy.AccessLogStage()
		case config.StageAuth:
			v, err := verifier(d, s, st.Config.JWT)
			if err != nil {
				return nil, fmt.Errorf("middleware %q: stages[%d]: %w", c.ID, i, err)
			}
			m = authStage(v)
		case config.StageRateLimit:
			pc := policies[st.PolicyRef]
			if pc == nil || pc.RateLimit == nil {
				return nil, fmt.Errorf("middleware %q: stages[%d]: policy %q has no rate_limit", c.ID, i, st.PolicyRef)
			}
			var err error
			if m, err = rateLimit(d, s, pc, redisAddr); err != nil {
				return nil, fmt.Errorf("middleware %q: stages[%d]: %w", c.ID, i, err)
			}
		case config.StageTracing:
			stages = append(stages, proxy.TracingStage(d.Tracing))
			traced = true
			continue
		default:
			// Validation rejects the stage types not built yet; reaching
			// here means the two disagree.
			return nil, fmt.Errorf("middleware %q: stages[%d]: type %q is not built", c.ID, i, st.Type)
		}
		if traced {
			m = proxy.Traced(d.Tracing, tracing.StageName(string(st.Type)), m)
		}
		stages = append(stages, m)
	}
	return stages, nil
}

// headerEdit turns add/remove lists into an edit with canonical names, or
// nil when there is nothing to do.
func headerEdit(add map[string]string, remove []string) *proxy.HeaderEdit {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	e := &proxy.HeaderEdit{Set: make(http.Header, len(add))}
	for k, v := range add {
		e.Set[http.CanonicalHeaderKey(k)] = []string{v}
	}
	for _, k := range remove {
		e.Remove = append(e.Remove, http.CanonicalHeaderKey(k))
	}
	return e
}

// verifier returns the JWT verifier for settings j: the live one with the
// same settings (keeping its fetched keys and verified-token cache), or a
// new one. A jwks_file that cannot be read or holds no usable key fails
// the build; a jwks_url is fetched on first use, never at apply.
func verifier(d Deps, s *snapshot.Snapshot, j *config.JWT) (*auth.Verifier, error) {
	c := auth.Config{Issuer: j.Issuer, Audience: j.Audience, Algorithms: j.Algorithms, JWKSURL: j.JWKSURL,
		JWKSFile: j.JWKSFile, ForwardClaims: j.ForwardClaims}
	if d.Runtime == nil {
		return auth.New(c)
	}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	key := hex.EncodeToString(sum[:16])
	s.VerifierKeys = append(s.VerifierKeys, key)
	return d.Runtime.Verifiers.AcquireNew(key, func() (*auth.Verifier, error) { return auth.New(c) })
}

// authStage rejects requests without a valid bearer token with 401
// unauthorized and a WWW-Authenticate challenge (RFC 6750).
func authStage(v *auth.Verifier) proxy.Middleware {
	return func(next http.Handler) http.Handler {
		return v.Middleware(next, func(w http.ResponseWriter, r *http.Request, e *auth.Error) {
			w.Header()["Www-Authenticate"] = []string{e.WWWAuthenticate("keel")}
			proxy.Fail(w, proxy.ErrUnauthorized, 0)
		})
	}
}
