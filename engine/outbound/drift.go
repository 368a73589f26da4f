package outbound

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/reconcile"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// checkDrift runs the drift check a synced record was claimed for (queued by
// store.EnqueueDriftChecks): it reads the object back from Zuora and, when
// Zuora no longer matches, reports the record drifted with the reason; the
// pool then repairs it through the ordinary reconcile. A read that fails is
// not drift: the record stays synced and the next period's check looks
// again.
func (r *Reconcilers) checkDrift(ctx context.Context, rec store.SyncRecord) (reconcile.Result, error) {
	keep := reconcile.Result{PayloadHash: rec.PayloadHash, ZuoraID: rec.ZuoraID, ZuoraNumber: rec.ZuoraNumber, ZuoraURL: rec.ZuoraURL}
	reason, calls, err := r.driftOf(ctx, rec)
	keep.Calls = calls
	switch {
	case err != nil && ctx.Err() != nil:
		return reconcile.Result{Calls: calls}, err
	case err != nil:
		keep.Detail = "drift check (" + rec.DriftCheck + ") could not read Zuora: " + err.Error()
		return keep, nil
	case reason != "":
		return reconcile.Result{Drifted: true, Detail: reason, Calls: calls}, nil
	}
	keep.Detail, keep.Quiet = "drift check ("+rec.DriftCheck+"): Zuora matches", true
	return keep, nil
}

func (r *Reconcilers) driftOf(ctx context.Context, rec store.SyncRecord) (string, int, error) {
	switch rec.EntityKind {
	case store.EntitySubscription:
		sm, err := r.maps.Get(ctx, mappings.Subscription, rec.EntityID)
		if err != nil {
			return "", 0, nil
		}
		sub, err := r.db.GetSubscription(ctx, rec.EntityID)
		if err != nil {
			return "", 0, err
		}
		actual, err := r.z.GetSubscription(ctx, sm.ZuoraNumber)
		if zuora.IsNotFound(err) {
			return "subscription " + sm.ZuoraNumber + " no longer exists in Zuora", 1, nil
		}
		if err != nil {
			return "", 1, err
		}
		what, ok, err := r.ZuoraDiffers(ctx, sub, rec, actual)
		if err != nil || !ok || len(what) == 0 {
			return "", 1, err
		}
		if sub.Scheduled != nil {
			// Zuora ran the pending scheduled change (its callout lost): not
			// a change made in Zuora; the repair's reconcile takes it in.
			if w, ok, err := r.ZuoraDiffers(ctx, sub.Applied(), rec, actual); err == nil && ok && len(w) == 0 {
				return fmt.Sprintf("Zuora's subscription %s has run its pending scheduled change; the repair takes it in", actual.SubscriptionNumber), 1, nil
			}
		}
		if rec.ZuoraID != "" && actual.ID != rec.ZuoraID {
			// A version billsync did not write: a change made in Zuora,
			// adopted through the inbox (docs/DESIGN.md §2a), not undone.
			if queued, err := r.queueAdoption(ctx, actual); err != nil || queued {
				return "", 1, err
			}
		}
		return fmt.Sprintf("Zuora's subscription %s (status %s) differs; repair needs %s", actual.SubscriptionNumber, actual.Status, strings.Join(what, ", ")), 1, nil
	case store.EntityCustomer:
		acct, ok, err := r.billingAccount(ctx, rec.EntityID)
		if err != nil || !ok {
			return "", 0, err
		}
		za, err := r.z.GetAccount(ctx, acct.ZuoraID)
		if zuora.IsNotFound(err) {
			return "account " + acct.ZuoraNumber + " no longer exists in Zuora", 1, nil
		}
		if err != nil {
			return "", 1, err
		}
		c, err := r.db.GetCustomer(ctx, rec.EntityID)
		if err != nil {
			return "", 1, err
		}
		if diff := accountDiff(r.accountUpdate(c), za); len(diff) > 0 {
			// The mapping's hash says "Zuora has it": forget it, so the
			// repair pushes the account again.
			if err := r.maps.SetHash(ctx, mappings.Account, acct.LocalID, ""); err != nil {
				return "", 1, err
			}
			return "account " + acct.ZuoraNumber + " differs in Zuora (" + strings.Join(diff, ", ") + "); the repair updates it", 1, nil
		}
		return "", 1, nil
	case store.EntityPlan:
		pm, err := r.maps.Get(ctx, mappings.Product, rec.EntityID)
		if errors.Is(err, mappings.ErrNotFound) {
			return "", 0, nil
		}
		if err != nil {
			return "", 0, err
		}
		cp, err := r.z.GetCatalogProduct(ctx, pm.ZuoraID)
		if err == nil {
			p, perr := r.db.GetPlan(ctx, rec.EntityID)
			if perr != nil {
				return "", 1, perr
			}
			want := r.CatalogPayloads(p).Product
			var diff []string
			for _, f := range []struct{ name, want, got string }{{"name", want.Name, cp.Name}, {"sku", want.SKU, cp.SKU},
				{"description", want.Description, cp.Description}, {"effectiveEndDate", want.EffectiveEndDate, cp.EffectiveEndDate}} {
				if f.want != f.got {
					diff = append(diff, f.name)
				}
			}
			if len(diff) > 0 {
				// Forget the product's hash so the repair pushes it again.
				if err := r.maps.SetHash(ctx, mappings.Product, rec.EntityID, ""); err != nil {
					return "", 1, err
				}
				return "product " + pm.ZuoraID + " differs in Zuora (" + strings.Join(diff, ", ") + "); the repair updates it", 1, nil
			}
		}
		if zuora.IsNotFound(err) {
			// Forget the product so the repair creates it again.
			if err := r.forgetCatalog(ctx, rec.EntityID); err != nil {
				return "", 1, err
			}
			return "product " + pm.ZuoraID + " no longer exists in Zuora; it will be created again", 1, nil
		}
		return "", 1, err
	}
	return "", 0, nil
}

func (r *Reconcilers) forgetCatalog(ctx context.Context, planID string) error {
	if err := r.maps.Delete(ctx, mappings.Product, planID); err != nil {
		return err
	}
	for _, k := range []mappings.Kind{mappings.RatePlan, mappings.Charge} {
		ms, err := r.maps.Children(ctx, k, planID)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := r.maps.Delete(ctx, k, m.LocalID); err != nil {
				return err
			}
		}
	}
	return nil
}

// accountDiff lists the fields billsync owns on an account that Zuora holds
// differently. The country is left out: Zuora stores it in its own spelling
// ("US" becomes "United States").
func accountDiff(want zuora.AccountUpdate, got zuora.Account) []string {
	var diff []string
	if want.Name != got.BasicInfo.Name {
		diff = append(diff, "name")
	}
	contacts := []struct {
		name      string
		want, got *zuora.Contact
	}{{"billTo", want.BillToContact, got.BillToContact}, {"soldTo", want.SoldToContact, got.SoldToContact}}
	for _, c := range contacts {
		if c.want == nil {
			continue
		}
		g := c.got
		if g == nil {
			g = &zuora.Contact{}
		}
		w := c.want
		for _, f := range []struct{ field, want, got string }{
			{"firstName", w.FirstName, g.FirstName}, {"lastName", w.LastName, g.LastName}, {"workEmail", w.WorkEmail, g.WorkEmail},
			{"address1", w.Address1, g.Address1}, {"address2", w.Address2, g.Address2}, {"city", w.City, g.City}, {"state", w.State, g.State},
			{"postalCode", firstNonEmpty(w.ZipCode, w.PostalCode), firstNonEmpty(g.ZipCode, g.PostalCode)},
		} {
			if !strings.EqualFold(strings.TrimSpace(f.want), strings.TrimSpace(f.got)) {
				diff = append(diff, c.name+"."+f.field)
			}
		}
	}
	keys := make([]string, 0, len(want.CustomFields))
	for k := range want.CustomFields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fmt.Sprint(want.CustomFields[k]) != fmt.Sprint(got.BasicInfo.CustomFields[k]) {
			diff = append(diff, k)
		}
	}
	return diff
}
