package inbound

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/mappings"
)

// Grant is a customer's access to a plan through one Zuora subscription.
type Grant = store.Grant

func addDays(date string, n int) string {
	t, err := time.Parse("2006-01-02", date)
	if err != nil {
		return date
	}
	return t.AddDate(0, 0, n).Format("2006-01-02")
}

// graceDays reads the product's grace period custom field (days; 0 when unset).
func (s *Service) graceDays(ctx context.Context, productID string, memo map[string]int) (int, error) {
	if d, ok := memo[productID]; ok {
		return d, nil
	}
	p, err := s.z.GetCatalogProduct(ctx, productID)
	if err != nil {
		return 0, zuoraErr("read product "+productID, err)
	}
	d := 0
	if v := customString(p.CustomFields, s.cfg.GraceField); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && f > 0 {
			d = int(f)
		}
	}
	memo[productID] = d
	return d, nil
}

// updateGrants replaces the grants of one Zuora subscription.
func (s *Service) updateGrants(ctx context.Context, custID string, zs zuora.Subscription, res *Result) error {
	memo := map[string]int{}
	now := s.now()
	localSub := ""
	if m, err := s.maps.ByZuoraKey(ctx, mappings.Subscription, zs.SubscriptionNumber); err == nil {
		localSub = m.LocalID
	}
	var rows []Grant
	seen := map[string]bool{}
	for _, rp := range zs.RatePlans {
		if rp.LastChangeType == "Remove" {
			continue
		}
		m, err := s.maps.ByZuoraID(ctx, mappings.RatePlan, rp.ProductRatePlanID)
		if err != nil {
			continue // not a billsync plan: no grant to give
		}
		if strings.HasPrefix(m.ParentID, store.CouponMappingID("")) {
			continue // a coupon grants nothing
		}
		if seen[m.ParentID] {
			continue
		}
		seen[m.ParentID] = true
		g := Grant{CustomerID: custID, SubscriptionNumber: zs.SubscriptionNumber, PlanID: m.ParentID, ZuoraAccountID: zs.AccountID,
			SubscriptionID: localSub, Status: zs.Status, UpdatedAt: now}
		open := false
		for _, ch := range rp.RatePlanCharges {
			if g.StartsOn == "" || (ch.EffectiveStartDate != "" && ch.EffectiveStartDate < g.StartsOn) {
				g.StartsOn = ch.EffectiveStartDate
			}
			if ch.EffectiveEndDate == "" {
				open = true
			} else if ch.EffectiveEndDate > g.EndsOn {
				g.EndsOn = ch.EffectiveEndDate
			}
		}
		if g.StartsOn == "" {
			g.StartsOn = firstNonEmpty(zs.ContractEffectiveDate, zs.SubscriptionStartDate)
		}
		if open {
			g.EndsOn = ""
		}
		var reasons []string
		if (zs.Status == "Cancelled" || zs.Status == "Expired") && zs.SubscriptionEndDate != "" && (g.EndsOn == "" || zs.SubscriptionEndDate < g.EndsOn) {
			g.EndsOn = zs.SubscriptionEndDate
			reasons = append(reasons, "cancelled, ends "+zs.SubscriptionEndDate)
		}
		if sd, rd := zs.Suspension(); sd != "" && (rd == "" || s.today() < rd) {
			d, err := s.graceDays(ctx, rp.ProductID, memo)
			if err != nil {
				return err
			}
			g.GraceDays = d
			if cut := addDays(sd, d); g.EndsOn == "" || cut < g.EndsOn {
				g.EndsOn = cut
			}
			reasons = append(reasons, fmt.Sprintf("suspended on %s, %d grace days", sd, d))
		}
		g.Reason = strings.Join(reasons, "; ")
		rows = append(rows, g)
	}
	err := s.db.ReplaceGrants(ctx, custID, zs.SubscriptionNumber, rows)
	if err == nil && len(rows) > 0 {
		res.add("%d access grants from %s", len(rows), zs.SubscriptionNumber)
	}
	if err != nil {
		return err
	}
	return s.graceForNewGrants(ctx, custID, zs.AccountID, rows)
}

// Grants returns a customer's access grants, active ones marked as of today.
func (s *Service) Grants(ctx context.Context, customerID string) ([]Grant, error) {
	if _, err := s.db.GetCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	grants, err := s.db.GrantsOf(ctx, customerID)
	if err != nil {
		return nil, err
	}
	today := s.today()
	for i, g := range grants {
		grants[i].Active = g.StartsOn <= today && (g.EndsOn == "" || today < g.EndsOn)
	}
	return grants, nil
}
