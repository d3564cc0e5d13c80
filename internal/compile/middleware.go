package compile

import (
	"fmt"
	"net/http"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/proxy"
	"github.com/keelproxy/keel/internal/tracing"
)

// chain compiles a middleware chain into the stages of one route. Stages
// run in config order on the request and backwards on the response.
func chain(c *config.Chain, d Deps) ([]proxy.Middleware, error) {
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
