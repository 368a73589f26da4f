// Package switches holds the sync switches per entity kind (catalog,
// customers, subscriptions, usage, inbound): defaults from configuration,
// overrides persisted from the admin page, honoured at once by every replica.
package switches

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Names of the switches.
const (
	Catalog       = "catalog"
	Customers     = "customers"
	Subscriptions = "subscriptions"
	Usage         = "usage"
	Inbound       = "inbound"
)

// All lists every switch in display order.
var All = []string{Catalog, Customers, Subscriptions, Usage, Inbound}

// Store persists overrides.
type Store interface {
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// Switches answers "is syncing of X on?" from a cache refreshed from the store.
type Switches struct {
	store    Store
	defaults map[string]bool
	mu       sync.RWMutex
	values   map[string]bool
	loaded   time.Time
	ttl      time.Duration
	onEnable func(ctx context.Context, name string)
}

// OnEnable registers fn, called after a refresh that sees a switch go from
// off to on (set here or by another replica).
func (s *Switches) OnEnable(fn func(ctx context.Context, name string)) {
	s.mu.Lock()
	s.onEnable = fn
	s.mu.Unlock()
}

// New returns switches with the given defaults (missing names default to on).
func New(store Store, defaults map[string]bool) *Switches {
	s := &Switches{store: store, defaults: map[string]bool{}, values: map[string]bool{}, ttl: 2 * time.Second}
	for _, n := range All {
		v, ok := defaults[n]
		s.defaults[n] = !ok || v
		s.values[n] = s.defaults[n]
	}
	return s
}

func key(name string) string { return "switch." + name }

// Refresh reloads overrides from the store.
func (s *Switches) Refresh(ctx context.Context) error {
	st, err := s.store.Settings(ctx)
	if err != nil {
		return err
	}
	vals := map[string]bool{}
	for _, n := range All {
		vals[n] = s.defaults[n]
		if v, ok := st[key(n)]; ok {
			if b, err := strconv.ParseBool(v); err == nil {
				vals[n] = b
			}
		}
	}
	s.mu.Lock()
	old, fn := s.values, s.onEnable
	s.values, s.loaded = vals, time.Now()
	s.mu.Unlock()
	if fn != nil {
		for _, n := range All {
			if vals[n] && !old[n] {
				fn(ctx, n)
			}
		}
	}
	return nil
}

// Enabled reports whether syncing of name is on. It refreshes from the store
// at most every two seconds, so a change made by another replica is seen quickly.
func (s *Switches) Enabled(name string) bool {
	s.mu.RLock()
	v, ok := s.values[name]
	stale := time.Since(s.loaded) > s.ttl
	s.mu.RUnlock()
	if stale {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.Refresh(ctx)
		cancel()
		s.mu.RLock()
		v, ok = s.values[name]
		s.mu.RUnlock()
	}
	return !ok || v
}

// Set persists a switch and applies it at once.
func (s *Switches) Set(ctx context.Context, name string, on bool) error {
	if err := s.store.SetSetting(ctx, key(name), strconv.FormatBool(on)); err != nil {
		return err
	}
	return s.Refresh(ctx)
}

// Snapshot returns every switch's current value.
func (s *Switches) Snapshot() map[string]bool {
	out := map[string]bool{}
	for _, n := range All {
		out[n] = s.Enabled(n)
	}
	return out
}

// Valid reports whether name is a known switch.
func Valid(name string) bool {
	for _, n := range All {
		if n == name {
			return true
		}
	}
	return false
}
