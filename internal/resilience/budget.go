package resilience

import (
	"sync"
	"sync/atomic"
	"time"
)

// BudgetSettings are the knobs of a Budget (SPEC section 3,
// policies[].retries). The zero BudgetSettings allows no retry at all:
// Percent and Burst have no hidden defaults, because the config's (20 and
// 10) are resolved where the config is read.
type BudgetSettings struct {
	// Percent is the retries allowed as a percentage of the successes in
	// the window, 0-100 (values outside are clamped).
	Percent int
	// Burst is the retries always allowed in the window, whatever the
	// successes, so that a quiet route can still retry. Negative means 0.
	Burst int
	// Window is the length of the rolling window, in 10 buckets. Zero
	// means 10s, SPEC's "last 10 s".
	Window time.Duration
}

func (s BudgetSettings) withDefaults() BudgetSettings {
	s.Percent = min(max(s.Percent, 0), 100)
	s.Burst = max(s.Burst, 0)
	if s.Window <= 0 {
		s.Window = defaultWindow
	}
	return s
}

// Budget is a retry budget (SPEC section 7): in any window, the retries
// granted stay below max(Burst, successes*Percent/100), successes and
// retries both counted over the rolling window. Retries are thus bounded
// by a share of the traffic that works, and a failing upstream does not
// get its load multiplied by the retry count.
//
// The check and the spending of a retry are one CAS, so concurrent
// TryRetry calls never grant more than the allowance between them.
//
// The zero Budget is not usable; create one with NewBudget. All methods
// are safe for concurrent use and, but for Update, lock-free and
// allocation-free.
type Budget struct {
	settings atomic.Pointer[BudgetSettings] // with defaults applied
	windows  atomic.Pointer[budgetWindows]
	clock    func() int64
	// mu serialises Update; the request path never takes it.
	mu sync.Mutex
}

type budgetWindows struct {
	successes *Window
	retries   *Window
}

// NewBudget returns a budget with settings s and no history. clock returns
// monotonic nanoseconds; nil means the real monotonic clock.
func NewBudget(s BudgetSettings, clock func() int64) *Budget {
	if clock == nil {
		clock = monotonic()
	}
	s = s.withDefaults()
	b := &Budget{clock: clock}
	now := clock()
	b.settings.Store(&s)
	b.windows.Store(&budgetWindows{
		successes: newWindow(s.Window, defaultBuckets, clock, now, 0),
		retries:   newWindow(s.Window, defaultBuckets, clock, now, 0),
	})
	return b
}

// Success records a successful original request: it earns Percent/100 of
// a retry.
func (b *Budget) Success() {
	b.windows.Load().successes.addAt(b.clock(), 1)
}

// TryRetry takes one retry from the budget if the retries in the window
// are below the allowance, and reports whether it did. false means the
// caller returns the original error (and counts
// proxy_retries_total{outcome="budget"}).
func (b *Budget) TryRetry() bool {
	w := b.windows.Load()
	now := b.clock()
	return w.retries.tryAddAt(now, b.allowance(w, now))
}

// Tokens returns the retries TryRetry would grant now, for the
// proxy_retry_budget_tokens gauge.
func (b *Budget) Tokens() float64 {
	w := b.windows.Load()
	now := b.clock()
	return float64(max(b.allowance(w, now)-w.retries.sumAt(now), 0))
}

// allowance is max(Burst, successes*Percent/100) at now.
func (b *Budget) allowance(w *budgetWindows, now int64) int64 {
	s := b.settings.Load()
	earned := w.successes.sumAt(now) * int64(s.Percent) / 100
	return max(int64(s.Burst), earned)
}

// Update applies new settings, for a config apply. Counts are kept, so a
// larger Burst or Percent grants more retries at once; a new Window length
// carries the counts now in the window over into the new one.
func (b *Budget) Update(s BudgetSettings) {
	s = s.withDefaults()
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.settings.Swap(&s)
	if s.Window == old.Window {
		return
	}
	now := b.clock()
	w := b.windows.Load()
	b.windows.Store(&budgetWindows{
		successes: w.successes.resized(s.Window, now),
		retries:   w.retries.resized(s.Window, now),
	})
}

// Settings returns the settings in force, defaults applied.
func (b *Budget) Settings() BudgetSettings { return *b.settings.Load() }
