package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/keelproxy/keel/internal/resilience"
	"github.com/keelproxy/keel/internal/tracing"
	"github.com/keelproxy/keel/internal/upstream"
)

// RetryPolicy is a route's compiled retry settings (SPEC section 7). It is
// immutable; Budget is the route's long-lived budget, shared across
// snapshots through the registry.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included; below 2 means
	// no retries.
	MaxAttempts int
	// PerTryTimeout bounds each attempt until its response headers
	// arrive; an attempt that runs out counts as upstream_timeout and may
	// be retried. Zero means only the route timeout applies.
	PerTryTimeout time.Duration
	// IdempotentOnly retries only methods RFC 9110 calls idempotent.
	IdempotentOnly bool
	// On says which outcomes are retried.
	On RetryOn
	// Budget caps retries per route; nil means unlimited (within
	// MaxAttempts).
	Budget *resilience.Budget
	// BackoffBase and BackoffMax shape the full-jitter backoff between
	// attempts; zero means 25ms and 250ms.
	BackoffBase, BackoffMax time.Duration
}

// RetryOn is the set of outcomes a route retries. The zero value retries
// nothing.
type RetryOn struct {
	ConnectFailure, Reset, Timeout bool
	status                         [8]uint64 // bit code-100 for status codes 100-599
}

// AddStatus adds a status code (100-599) to the set; others are ignored.
func (o *RetryOn) AddStatus(code int) {
	if code >= 100 && code < 600 {
		i := code - 100
		o.status[i>>6] |= 1 << (i & 63)
	}
}

// hasStatus reports whether code is in the set.
func (o *RetryOn) hasStatus(code int) bool {
	if code < 100 || code >= 600 {
		return false
	}
	i := code - 100
	return o.status[i>>6]&(1<<(i&63)) != 0
}

// HedgePolicy is a route's compiled hedging settings: after Delay without
// response headers, up to MaxHedges more attempts go to other endpoints;
// the first response wins.
type HedgePolicy struct {
	Delay     time.Duration
	MaxHedges int
}

// maxReplay is the largest request body buffered so that an attempt can be
// repeated (SPEC section 7: replayable bodies only). Larger bodies stream
// once and are never retried.
const maxReplay = 64 << 10

// errPerTryTimeout marks the expiry of a per-try timeout, so classify can
// tell it from the route timeout and the client going away.
var errPerTryTimeout = errors.New("per-try timeout")

// outcome is what one attempt produced.
type outcome struct {
	ep   *upstream.Endpoint
	resp *http.Response
	err  error
	cat  Category // "" for a response
	d    time.Duration
	// held is set while the attempt still counts as in flight on ep
	// (least_request reads the count): from the round trip until its
	// response body is done with.
	held bool
	// cancel ends the attempt's own context (per-try timeout, hedge), nil
	// when it used the request's; called once its body is done with.
	cancel context.CancelCauseFunc
}

// discard closes an attempt's response that will not reach the client.
func (o *outcome) discard() {
	if o.resp != nil {
		o.resp.Body.Close()
		o.resp = nil
	}
	if o.held {
		o.ep.Release()
		o.held = false
	}
	if o.cancel != nil {
		o.cancel(nil)
		o.cancel = nil
	}
}

// failed applies SPEC section 7's definition of failure for breakers,
// passive health and outlier detection: connect failure, reset, timeout and
// a 5xx response.
func (o *outcome) failed() bool {
	if o.err != nil {
		return o.cat == ErrConnectFailed || o.cat == ErrUpstreamReset || o.cat == ErrUpstreamTimeout
	}
	return o.resp.StatusCode >= 500
}

// retryable reports whether the policy retries this outcome.
func (p *RetryPolicy) retryable(o *outcome) bool {
	if o.err != nil {
		switch o.cat {
		case ErrConnectFailed:
			return p.On.ConnectFailure
		case ErrUpstreamReset:
			return p.On.Reset
		case ErrUpstreamTimeout:
			return p.On.Timeout
		}
		return false
	}
	return p.On.hasStatus(o.resp.StatusCode)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func hedgeable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// replayBody reads up to maxReplay bytes of r's body. It returns the bytes
// and true when the whole body fit (the request is replayable), or, when it
// did not, a reader that yields the bytes read and then the rest of the body,
// for a single attempt. A read error (body limit, client gone, bad
// framing) is returned as is.
func replayBody(r *http.Request) ([]byte, io.Reader, bool, error) {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil, nil, true, nil
	}
	if r.ContentLength > maxReplay {
		return nil, r.Body, false, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxReplay+1))
	if err != nil {
		return nil, nil, false, err
	}
	if len(buf) <= maxReplay {
		return buf, nil, true, nil
	}
	return nil, io.MultiReader(bytes.NewReader(buf), r.Body), false, nil
}

// forward runs the attempts of one request: breaker, endpoint selection,
// retries with budget and backoff, hedging. It returns the response to
// copy to the client (the caller closes its body), or the category of the
// error to answer with. Nothing has been written to the client when it
// returns, which is what makes every retry safe.
//
// When held is true the response's endpoint still counts the request as in
// flight; the caller calls ep.Release once the body is done with.
func (f *Forwarder) forward(r *http.Request, x *exchange, cip, upgrade string) (resp *http.Response, ep *upstream.Endpoint, cat Category, held bool) {
	pol := f.Retry
	attempts := 1
	if pol != nil && pol.MaxAttempts > 1 && upgrade == "" && (!pol.IdempotentOnly || idempotent(r.Method)) {
		attempts = pol.MaxAttempts
	}
	hedge := f.Hedge != nil && upgrade == "" && hedgeable(r.Method)

	// A request that may be sent more than once needs its body in memory.
	var body []byte
	var once io.Reader
	replayable := true
	if attempts > 1 || hedge {
		var err error
		body, once, replayable, err = replayBody(r)
		if err != nil {
			return nil, nil, bodyReadCategory(r, err), false
		}
		if !replayable {
			attempts, hedge = 1, false
		}
	}

	var last outcome
	var exclude *upstream.Endpoint
	for attempt := 1; ; attempt++ {
		// Selection first: it never contacts an upstream, and a pool with
		// nothing healthy is no_healthy_upstream whatever the breaker says.
		_, selSpan := f.Tracing.StartInternal(r.Context(), tracing.SpanUpstreamSelect)
		ep, err := f.Pool.Select(r, cip, exclude)
		selSpan.End()
		if err != nil || ep == nil {
			if attempt == 1 {
				return nil, nil, ErrNoHealthy, false
			}
			break // answer with the previous attempt's result
		}
		var ticket resilience.Ticket
		if f.Breaker != nil {
			_, brSpan := f.Tracing.StartInternal(r.Context(), tracing.SpanBreaker)
			t, ok := f.Breaker.Allow()
			if brSpan.IsRecording() {
				brSpan.SetAttributes(tracing.AttrBreakerState.String(f.Breaker.State().String()))
			}
			brSpan.End()
			if !ok {
				if attempt == 1 {
					return nil, nil, ErrCircuitOpen, false
				}
				break
			}
			ticket = t
		}
		last.discard()
		var src io.Reader
		switch {
		case body != nil:
			src = bytes.NewReader(body)
		case once != nil:
			src = once
		}
		if hedge {
			last = f.hedged(r, x, ep, cip, body)
		} else {
			last = f.try(r, x, ep, upgrade, src, attempt)
		}
		x.rec.UpstreamDuration += last.d
		x.rec.Endpoint = last.ep.Address()
		switch last.cat {
		case ErrClientClosed, ErrRequestTimeout, ErrRequestTooLarge, ErrBadRequest:
			// Not the upstream's doing: never retried, and no verdict
			// on it for the breaker (a half-open probe slot is freed).
			if f.Breaker != nil {
				f.Breaker.Release(ticket)
			}
			return nil, last.ep, last.cat, false
		}
		if f.Breaker != nil {
			f.Breaker.Done(ticket, !last.failed())
		}
		if attempt >= attempts || !pol.retryable(&last) {
			if attempt > 1 {
				if last.failed() {
					f.Metrics.RetryOutcome(f.RouteID, "exhausted")
				} else {
					f.Metrics.RetryOutcome(f.RouteID, "success")
				}
			}
			break
		}
		if pol.Budget != nil && !pol.Budget.TryRetry() {
			f.Metrics.RetryOutcome(f.RouteID, "budget")
			break
		}
		x.rec.Retries++
		exclude = last.ep
		if !sleepCtx(r.Context(), resilience.Backoff(attempt, pol.BackoffBase, pol.BackoffMax, nil)) {
			last.discard()
			return nil, last.ep, ErrClientClosed, false
		}
	}
	if last.err != nil {
		return nil, last.ep, last.cat, false
	}
	if pol != nil && pol.Budget != nil && !last.failed() {
		pol.Budget.Success()
	}
	x.attemptCancel = last.cancel
	return last.resp, last.ep, "", last.held
}

// hedged sends the attempt to first and, each Hedge.Delay without response
// headers, one more to another endpoint, up to Hedge.MaxHedges; the first
// response wins and the others are cancelled, their connections closed
// rather than leaked. Only GET, HEAD and OPTIONS with a replayable body get
// here. Each attempt's round trip runs on its own goroutine, which touches
// nothing of the exchange (it may outlive the request) and ends when the
// round trip does, promptly once cancelled; a drainer closes the bodies of
// responses that arrive after the winner.
func (f *Forwarder) hedged(r *http.Request, x *exchange, first *upstream.Endpoint, cip string, body []byte) outcome {
	type result struct {
		resp *http.Response
		err  error
		d    time.Duration
		i    int
	}
	n := 1 + max(f.Hedge.MaxHedges, 0)
	results := make(chan result, n)
	cancels := make([]context.CancelCauseFunc, 0, n)
	outs := make([]*http.Request, 0, n)
	eps := make([]*upstream.Endpoint, 0, n)
	start := time.Now()
	launch := func(ep *upstream.Endpoint) {
		ctx, cancel := context.WithCancelCause(r.Context())
		out := f.outgoing(ctx, r, ep, x.matchedPrefix, "", x.peer, x.trusted)
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		i := len(cancels)
		spanCtx, span := f.Tracing.StartAttempt(r.Context(), ep.Address(), i+1, i > 0)
		f.Tracing.Inject(spanCtx, out.Header)
		cancels, outs, eps = append(cancels, cancel), append(outs, out), append(eps, ep)
		go func() {
			ep.Acquire()
			t0 := time.Now()
			resp, err := ep.Transport().RoundTrip(out)
			ep.Release()
			if span.IsRecording() {
				// Classified here, without the request body's state,
				// which only the handler goroutine may read.
				tracing.EndAttempt(span, statusOf(resp), categoryError(attemptCategory(r, out, err), err))
			}
			results <- result{resp, err, time.Since(t0), i}
		}()
	}
	launch(first)
	pending := 1
	timer := time.NewTimer(f.Hedge.Delay)
	defer timer.Stop()
	var last outcome
	winner := -1
	for pending > 0 && winner < 0 {
		select {
		case res := <-results:
			pending--
			ep := eps[res.i]
			ep.Metrics().Observe(res.d)
			last = outcome{ep: ep, resp: res.resp, err: res.err, d: time.Since(start)}
			if res.err != nil {
				last.cat = classifyAttempt(r, outs[res.i], x, res.err)
			}
			if last.cat != ErrClientClosed {
				ep.Report(!last.failed(), res.d)
			}
			if res.err == nil {
				winner = res.i
			}
		case <-timer.C:
			if len(cancels) < n {
				if ep, err := f.Pool.Select(r, cip, first); err == nil && ep != nil {
					launch(ep)
					pending++
					x.rec.Retries++
				}
				if len(cancels) < n {
					timer.Reset(f.Hedge.Delay)
				}
			}
		}
	}
	for i, c := range cancels {
		if i != winner {
			c(errHedgeLost)
		}
	}
	if pending > 0 {
		go func() {
			for ; pending > 0; pending-- {
				if res := <-results; res.resp != nil {
					res.resp.Body.Close()
				}
			}
		}()
	}
	if winner >= 0 {
		last.cancel = cancels[winner]
	}
	return last
}

// errHedgeLost cancels the attempts that lost a hedge race.
var errHedgeLost = errors.New("hedge lost")

// bodyReadCategory classifies a failure to read the client's body while
// buffering it for replay.
func bodyReadCategory(r *http.Request, err error) Category {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return ErrRequestTooLarge
	case context.Cause(r.Context()) == errTimeout:
		return ErrRequestTimeout
	case r.Context().Err() != nil:
		return ErrClientClosed
	}
	return ErrBadRequest
}

// try sends one attempt to ep and waits for its response headers.
func (f *Forwarder) try(r *http.Request, x *exchange, ep *upstream.Endpoint, upgrade string, body io.Reader, attempt int) outcome {
	ctx := r.Context()
	spanCtx, span := f.Tracing.StartAttempt(ctx, ep.Address(), attempt, false)
	var cancel context.CancelCauseFunc
	var timer *time.Timer
	if f.Retry != nil && f.Retry.PerTryTimeout > 0 && upgrade == "" {
		ctx, cancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(f.Retry.PerTryTimeout, func() { cancel(errPerTryTimeout) })
	}
	out := f.outgoing(ctx, r, ep, x.matchedPrefix, upgrade, x.peer, x.trusted)
	if body != nil {
		out.Body = io.NopCloser(body)
	}
	f.Tracing.Inject(spanCtx, out.Header)
	ep.Acquire()
	t0 := time.Now()
	resp, err := ep.Transport().RoundTrip(out)
	d := time.Since(t0)
	ep.Metrics().Observe(d)
	o := outcome{ep: ep, resp: resp, err: err, d: d, held: err == nil}
	if err != nil {
		ep.Release()
		o.cat = classifyAttempt(r, out, x, err)
	}
	if cancel != nil {
		// The per-try timeout covers the wait for response headers; the
		// body then streams under the route's own deadline. The attempt's
		// context must outlive the body, so it ends when the body is done
		// with (outcome.discard, or the Forwarder after copying).
		timer.Stop()
		if resp != nil {
			o.cancel = cancel
		} else {
			cancel(nil)
		}
	}
	if o.cat != ErrClientClosed {
		// A cancelled attempt (client gone, hedge lost) says nothing
		// about the endpoint.
		ep.Report(!o.failed(), d)
	}
	if span.IsRecording() {
		tracing.EndAttempt(span, statusOf(resp), categoryError(o.cat, err))
	}
	return o
}

// statusOf is resp's status code, 0 without a response.
func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// categoryError carries the proxy's error category to the attempt span
// (tracing reads ErrorType): nil for a response, err itself without a
// category.
func categoryError(c Category, err error) error {
	if err == nil || c == "" {
		return err
	}
	return &categorized{cat: c, err: err}
}

type categorized struct {
	cat Category
	err error
}

func (c *categorized) Error() string     { return string(c.cat) + ": " + c.err.Error() }
func (c *categorized) Unwrap() error     { return c.err }
func (c *categorized) ErrorType() string { return string(c.cat) }

// classifyAttempt is classify for one attempt: a per-try timeout is the
// upstream's timeout, and a failure caused by the client's body is the
// client's fault.
func classifyAttempt(r *http.Request, out *http.Request, x *exchange, err error) Category {
	c := attemptCategory(r, out, err)
	if x.bodyErr() != nil && c != ErrRequestTooLarge && c != ErrClientClosed {
		c = ErrBadRequest
	}
	return c
}

// attemptCategory classifies a failed attempt by its error and contexts
// alone; safe on any goroutine. Empty for a response (err nil) and for a
// hedge that lost the race: canceled by the proxy, it is no upstream's
// fault (its span says "canceled").
func attemptCategory(r *http.Request, out *http.Request, err error) Category {
	if err == nil || context.Cause(out.Context()) == errHedgeLost {
		return ""
	}
	if context.Cause(out.Context()) == errPerTryTimeout && r.Context().Err() == nil {
		return ErrUpstreamTimeout
	}
	return classify(r.Context(), err)
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
