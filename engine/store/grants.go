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
		if err := tx.Where("customer_id = ? AND subscription_number = ?", customerID, subscriptionNumber).Delete(&grantRow{}).Error; err != nil {
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
		out = append(out, Grant{CustomerID: r.CustomerID, PlanID: r.PlanID, SubscriptionNumber: r.SubscriptionNumber, SubscriptionID: r.SubscriptionID,
			ZuoraAccountID: r.ZuoraAccountID, Status: r.Status, StartsOn: r.StartsOn, EndsOn: r.EndsOn, GraceDays: r.GraceDays, Reason: r.Reason,
			UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// DeleteGrantsOfAccount removes the grants a customer has through one Zuora account.
func (db *DB) DeleteGrantsOfAccount(ctx context.Context, customerID, zuoraAccountID string) error {
	return db.Gorm.WithContext(ctx).Where("customer_id = ? AND zuora_account_id = ?", customerID, zuoraAccountID).Delete(&grantRow{}).Error
}
