package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Grant is a customer's access to a plan through one Zuora subscription,
// from the rate plan charges' effective dates. EndsOn is exclusive ("" =
// open-ended); a suspension ends the grant at the suspend date plus the
// product's grace period. Active is computed by the reader (as of a day).
type Grant struct {
	CustomerID         string    `json:"customerId"`
	PlanID             string    `json:"planId"`
	SubscriptionNumber string    `json:"subscriptionNumber"`
	SubscriptionID     string    `json:"subscriptionId,omitempty"`
	ZuoraAccountID     string    `json:"zuoraAccountId"`
	Status             string    `json:"status"`
	StartsOn           string    `json:"startsOn"`
	EndsOn             string    `json:"endsOn,omitempty"`
	GraceDays          int       `json:"graceDays,omitempty"`
	Reason             string    `json:"reason,omitempty"`
	Active             bool      `json:"active"`
	UpdatedAt          time.Time `json:"updatedAt"`
}

type grantRow struct {
	CustomerID         string `gorm:"primaryKey"`
	SubscriptionNumber string `gorm:"primaryKey"`
	PlanID             string `gorm:"primaryKey"`
	ZuoraAccountID     string
	SubscriptionID     string
	Status             string
	StartsOn           string
	EndsOn             string
	GraceDays          int
	Reason             string
	UpdatedAt          time.Time
}

func (grantRow) TableName() string { return "access_grants" }

// ReplaceGrants replaces, in one transaction, the grants a customer has
// through one subscription with the given ones.
func (db *DB) ReplaceGrants(ctx context.Context, customerID, subscriptionNumber string, grants []Grant) error {
	return db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var old []grantRow
		if err := tx.Where("customer_id = ? AND subscription_number = ?", customerID, subscriptionNumber).Find(&old).Error; err != nil {
			return err
		}
		if err := tx.Where("customer_id = ? AND subscription_number = ?", customerID, subscriptionNumber).Delete(&grantRow{}).Error; err != nil {
			return err
		}
		var evs []NewEvent
		was := map[string]grantRow{}
		for _, r := range old {
			was[r.PlanID] = r
		}
		is := map[string]bool{}
		for _, g := range grants {
			is[g.PlanID] = true
			if _, ok := was[g.PlanID]; !ok {
				evs = append(evs, grantEvent(EventAccessGranted, g))
			}
		}
		for _, r := range old {
			if !is[r.PlanID] {
				evs = append(evs, grantEvent(EventAccessRevoked, grantFromRow(r)))
			}
		}
		if _, err := db.emit(tx, evs...); err != nil {
			return err
		}
		for _, g := range grants {
			r := grantRow{CustomerID: g.CustomerID, SubscriptionNumber: g.SubscriptionNumber, PlanID: g.PlanID, ZuoraAccountID: g.ZuoraAccountID,
				SubscriptionID: g.SubscriptionID, Status: g.Status, StartsOn: g.StartsOn, EndsOn: g.EndsOn, GraceDays: g.GraceDays,
				Reason: g.Reason, UpdatedAt: g.UpdatedAt}
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// GrantsOf returns a customer's grants by plan and subscription number.
func (db *DB) GrantsOf(ctx context.Context, customerID string) ([]Grant, error) {
	var rows []grantRow
	if err := db.Gorm.WithContext(ctx).Where("customer_id = ?", customerID).Order("plan_id, subscription_number").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Grant, 0, len(rows))
	for _, r := range rows {
		out = append(out, grantFromRow(r))
	}
	return out, nil
}

func grantFromRow(r grantRow) Grant {
	return Grant{CustomerID: r.CustomerID, PlanID: r.PlanID, SubscriptionNumber: r.SubscriptionNumber, SubscriptionID: r.SubscriptionID,
		ZuoraAccountID: r.ZuoraAccountID, Status: r.Status, StartsOn: r.StartsOn, EndsOn: r.EndsOn, GraceDays: r.GraceDays, Reason: r.Reason,
		UpdatedAt: r.UpdatedAt.UTC()}
}

// GrantEventKey names one grant's lifetime: granted and revoked are each
// told once per (customer, subscription, plan, start).
func GrantEventKey(g Grant) string {
	return g.CustomerID + ":" + g.SubscriptionNumber + ":" + g.PlanID + ":" + g.StartsOn
}

func grantEvent(typ string, g Grant) NewEvent {
	return NewEvent{Type: typ, Key: GrantEventKey(g), CustomerID: g.CustomerID, Subject: g.SubscriptionNumber,
		Data: map[string]any{"customerId": g.CustomerID, "planId": g.PlanID, "subscriptionNumber": g.SubscriptionNumber,
			"subscriptionId": g.SubscriptionID, "from": g.StartsOn, "until": g.EndsOn}}
}

// GrantsEnded returns grants whose end date is on or before today and after
// since (the job that tells access.revoked looks back a while).
func (db *DB) GrantsEnded(ctx context.Context, since, today string) ([]Grant, error) {
	var rows []grantRow
	if err := db.Gorm.WithContext(ctx).Where("ends_on <> '' AND ends_on <= ? AND ends_on > ?", today, since).Order("ends_on, customer_id").
		Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Grant, 0, len(rows))
	for _, r := range rows {
		out = append(out, grantFromRow(r))
	}
	return out, nil
}

// GrantRevokedEvent is the access.revoked event of a grant (Emit it; it is told once).
func GrantRevokedEvent(g Grant) NewEvent { return grantEvent(EventAccessRevoked, g) }

// DeleteGrantsOfAccount removes the grants a customer has through one Zuora account.
func (db *DB) DeleteGrantsOfAccount(ctx context.Context, customerID, zuoraAccountID string) error {
	return db.Gorm.WithContext(ctx).Where("customer_id = ? AND zuora_account_id = ?", customerID, zuoraAccountID).Delete(&grantRow{}).Error
}
