package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/mappings"
)

// worldCheck is what billsync found at start about the configured Zuora:
// whether the objects its mappings point at exist ("" while all is well).
type worldCheck struct {
	mu  sync.Mutex
	msg string
}

func (w *worldCheck) get() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msg
}

func (w *worldCheck) set(msg string) {
	w.mu.Lock()
	w.msg = msg
	w.mu.Unlock()
}

// worldSample is how many mappings of each kind the start check reads back.
const worldSample = 3

// checkWorld reads back a few mapped accounts, subscriptions and products.
// When Zuora says they do not exist, the tenant was reset or replaced (a
// fresh simulator, another tenant): billsync says so in the log and on the
// dashboard instead of failing record by record. It reads, never writes.
func (a *app) checkWorld(ctx context.Context) {
	ms := a.outbound.Mappings()
	sampled, missing := 0, 0
	var examples []string
	for _, kind := range []mappings.Kind{mappings.Account, mappings.Subscription, mappings.Product} {
		list, _, err := ms.List(ctx, mappings.ListOptions{Kind: kind, Limit: worldSample})
		if err != nil {
			a.log.Warn().Err(err).Msg("checking that Zuora holds the mapped objects: reading mappings")
			return
		}
		for _, m := range list {
			var err error
			switch kind {
			case mappings.Account:
				_, err = a.zuora.GetAccount(ctx, m.ZuoraID)
			case mappings.Subscription:
				key := m.ZuoraNumber
				if key == "" {
					key = m.ZuoraID
				}
				_, err = a.zuora.GetSubscription(ctx, key)
			case mappings.Product:
				_, err = a.zuora.GetProduct(ctx, m.ZuoraID)
			}
			switch {
			case err == nil:
				sampled++
			case zuora.IsNotFound(err):
				sampled++
				missing++
				if len(examples) < 3 {
					examples = append(examples, fmt.Sprintf("%s %s (%s %s)", kind, m.ZuoraID, kind, m.LocalID))
				}
			default:
				a.log.Warn().Err(err).Msg("checking that Zuora holds the mapped objects: Zuora did not answer; not checked")
				return
			}
		}
	}
	if missing == 0 {
		a.world.set("")
		return
	}
	what := fmt.Sprintf("%d of %d", missing, sampled)
	if missing == sampled {
		what = "none of the " + fmt.Sprint(sampled)
	}
	msg := fmt.Sprintf("Zuora looks reset or replaced: %s mapped objects billsync read back exist (%s). Records may say synced while Zuora lacks them; point billsync at the tenant it synced to, or start from a fresh database.",
		what, strings.Join(examples, ", "))
	if missing == sampled {
		msg = strings.Replace(msg, " exist (", " exists (", 1)
	}
	a.world.set(msg)
	a.log.Error().Int("sampled", sampled).Int("missing", missing).Msg(msg)
}

// setupBuiltinCallouts points the built-in simulator's callouts at this
// listener with the generated webhook password, so an account or
// subscription created in the simulator reaches billsync within seconds.
// Running it at every start keeps the templates right when the port changes.
func (a *app) setupBuiltinCallouts(ctx context.Context, ln net.Listener) {
	if a.zuora.BaseURL() != a.simURL {
		return // a connection entered on the admin page replaced the simulator
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := a.inbound.SetupCallouts(ctx, inbound.CalloutSetup{PublicURL: "http://" + loopbackAddr(ln.Addr()),
		Username: a.cfg.WebhookUsername, Password: a.webhookPassword})
	if err != nil {
		a.log.Warn().Err(err).Msg("setting up the built-in simulator's callouts")
		return
	}
	a.log.Debug().Int("created", len(rep.Created)).Int("existed", len(rep.Existed)).Msg("built-in simulator's callouts set up")
}
