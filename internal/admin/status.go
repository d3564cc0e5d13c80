package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keelproxy/keel/internal/config"
	"github.com/keelproxy/keel/internal/resilience"
)

// The status page (GET / on the admin listener): rendered on the server,
// so it reads without JavaScript; one small inline script re-fetches the
// live part every two seconds (?partial=1) so an open page follows applies,
// and without JavaScript a <noscript> meta refresh reloads it. No external
// assets: it works offline and behind air gaps. The Content-Security-Policy
// allows exactly the inline script and style below, by hash.

const statusScript = `(function(){
  var live = document.getElementById("live");
  function tick() {
    fetch("/?partial=1", {credentials: "same-origin", cache: "no-store"})
      .then(function(r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function(html) { live.innerHTML = html; document.getElementById("stale").hidden = true; })
      .catch(function() { document.getElementById("stale").hidden = false; })
      .finally(function() { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();`

const statusStyle = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:12px 20px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
main{padding:12px 20px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:0 0 14px;padding:10px 14px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{font-weight:600;color:#5a6272}
code{font:12px ui-monospace,monospace}
.ok{color:#137333}.bad{color:#b3261e}.muted{color:#7a8291}
#stale{background:#fde7e9;color:#b3261e;padding:6px 20px}
`

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// statusCSP is computed once from the constants above; it never changes.
var statusCSP = "default-src 'none'; script-src " + cspHash(statusScript) +
	"; style-src " + cspHash(statusStyle) + "; connect-src 'self'; img-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

var statusPage = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct": func(f float64) float64 { return f * 100 },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>keel admin · {{.Version}}</title>
<style>{{.Style}}</style>
<noscript><meta http-equiv="refresh" content="5"></noscript>
</head><body>
<header><h1>keel admin</h1><span>refreshes every 2 s</span></header>
<div id="stale" hidden>Lost contact with the proxy; showing the last state received.</div>
<main id="live">{{template "live" .}}</main>
<script>{{.Script}}</script>
</body></html>
{{define "live"}}
<section id="config"><h2>Config</h2><table>
<tr><th>version</th><td><code id="version">{{if .Version}}{{.Version}}{{else}}(none: empty config, every request 404){{end}}</code>{{if .Label}} <span class="muted">label {{.Label}}</span>{{end}}</td></tr>
<tr><th>applied</th><td>{{.AppliedAt}} <span class="muted">from {{.Source}}</span></td></tr>
<tr><th>state</th><td>{{if .Draining}}<span class="bad">draining</span>{{else}}<span class="ok">ready</span>{{end}}</td></tr>
<tr><th>generated</th><td class="muted">{{.Now}}</td></tr>
</table></section>
<section id="routes"><h2>Routes ({{len .Routes}})</h2>{{if .Routes}}<table>
<tr><th>id</th><th>host</th><th>match</th><th>methods</th><th>pool</th><th>policy</th></tr>
{{range .Routes}}<tr><td><code>{{.ID}}</code></td><td>{{.Host}}</td><td><code>{{.Match}}</code></td><td>{{.Methods}}</td><td>{{.Pool}}</td><td>{{.Policy}}</td></tr>
{{end}}</table>{{if .RoutesCut}}<p class="muted">and {{.RoutesCut}} more</p>{{end}}{{else}}<p class="muted">no routes</p>{{end}}</section>
<section id="pools"><h2>Pools ({{len .Pools}})</h2>{{if .Pools}}<table>
<tr><th>id</th><th>balancer</th><th>protocol</th><th>healthy</th><th>endpoints (in flight)</th></tr>
{{range .Pools}}<tr><td><code>{{.ID}}</code></td><td>{{.Balancer}}</td><td>{{.Protocol}}</td><td class="{{if eq .Healthy .Total}}ok{{else}}bad{{end}}">{{.Healthy}}/{{.Total}}</td><td>{{range .Endpoints}}<code class="{{if .Healthy}}ok{{else}}bad{{end}}">{{.Address}}</code>{{if .Ejected}} ejected{{else if not .Healthy}} down{{end}} ({{.InFlight}}) {{end}}</td></tr>
{{end}}</table>{{if .PoolsCut}}<p class="muted">and {{.PoolsCut}} more</p>{{end}}{{else}}<p class="muted">no pools</p>{{end}}</section>
<section id="breakers"><h2>Circuit breakers ({{len .Breakers}})</h2>{{if .Breakers}}<table>
<tr><th>pool</th><th>route</th><th>state</th><th>error rate</th><th>requests</th><th>trips</th></tr>
{{range .Breakers}}<tr><td><code>{{.Pool}}</code></td><td>{{.Route}}</td><td class="{{if eq .State "closed"}}ok{{else}}bad{{end}}">{{.State}}</td><td>{{printf "%.1f%%" (pct .ErrorRate)}}</td><td>{{.Requests}}</td><td>{{.Trips}}</td></tr>
{{end}}</table>{{else}}<p class="muted">none configured</p>{{end}}</section>
<section id="audit"><h2>Recent audit records</h2>{{if .Audit}}<table>
<tr><th>time</th><th>actor</th><th>action</th><th>result</th><th>version</th><th>previous</th></tr>
{{range .Audit}}<tr><td>{{.Time}}</td><td>{{.Actor}}</td><td>{{.Action}}</td><td class="{{if eq .Result "rejected"}}bad{{else}}ok{{end}}">{{.Result}}</td><td><code>{{.Version}}</code></td><td><code>{{.PreviousVersion}}</code></td></tr>
{{end}}</table>{{else}}<p class="muted">no records yet</p>{{end}}</section>
{{end}}`))

// statusLimit caps the rows of each table: a 10,000-route config must not
// make a page that refreshes every two seconds weigh megabytes.
const statusLimit = 200

type statusData struct {
	Version, Label, Source, AppliedAt, Now string
	Draining                               bool
	Routes                                 []statusRoute
	RoutesCut                              int
	Pools                                  []statusPool
	PoolsCut                               int
	Audit                                  []statusAudit
	Breakers                               []breakerView
	Style                                  template.CSS
	Script                                 template.JS
}

type statusRoute struct{ ID, Host, Match, Methods, Pool, Policy string }

type statusPool struct {
	poolSummary
	Endpoints []endpointHealth
}

type statusAudit struct{ Time, Actor, Action, Result, Version, PreviousVersion string }

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	snap := s.o.Snapshots.Load()
	d := statusData{Version: snap.Version, Label: snap.Label, Source: "none",
		AppliedAt: snap.BuiltAt.UTC().Format(time.RFC3339), Now: s.o.Now().UTC().Format(time.RFC3339),
		Draining: s.draining.Load(), Style: template.CSS(statusStyle), Script: template.JS(statusScript)}
	var cfg *config.Config
	if s.o.Applier != nil {
		if e, ok := s.o.Applier.Current(); ok && e.Version == snap.Version {
			cfg, d.Source = e.Config, string(e.Source)
		}
	}
	if cfg != nil {
		for i, rt := range cfg.Routes {
			if i == statusLimit {
				d.RoutesCut = len(cfg.Routes) - i
				break
			}
			d.Routes = append(d.Routes, statusRoute{ID: rt.ID, Host: orAny(rt.Host), Match: routeMatch(rt),
				Methods: orAny(strings.Join(rt.Methods, ", ")), Pool: rt.Pool, Policy: rt.Policy})
		}
	}
	for i, p := range summarisePools(snap) {
		if i == statusLimit {
			d.PoolsCut = len(snap.PoolList) - i
			break
		}
		d.Pools = append(d.Pools, statusPool{poolSummary: p, Endpoints: s.endpointsOf(snap.Pools[p.ID])})
	}
	if s.o.Applier != nil {
		s.o.Applier.Runtime().Breakers.Range(func(key string, b *resilience.Breaker) {
			d.Breakers = append(d.Breakers, viewBreaker(key, b))
		})
		slices.SortFunc(d.Breakers, func(a, b breakerView) int { return strings.Compare(a.Key, b.Key) })
	}
	if s.o.Audit != nil {
		for _, rec := range s.o.Audit.Recent(20) {
			d.Audit = append(d.Audit, statusAudit{Time: rec.Time.UTC().Format(time.RFC3339), Actor: rec.Actor,
				Action: rec.Action, Result: rec.Result, Version: rec.Version, PreviousVersion: rec.PreviousVersion})
		}
	}
	name := "page"
	if r.URL.Query().Get("partial") == "1" {
		name = "live"
	}
	var buf bytes.Buffer
	if err := statusPage.ExecuteTemplate(&buf, name, d); err != nil {
		writeError(w, http.StatusInternalServerError, "rendering the status page: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func routeMatch(rt config.Route) string {
	switch {
	case rt.Path != "":
		return "= " + rt.Path
	case rt.PathPrefix != "":
		return rt.PathPrefix + "…"
	case rt.PathRegex != "":
		return "~ " + rt.PathRegex
	}
	return "*"
}
