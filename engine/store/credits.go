package store

import (
	"context"
	"errors"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"github.com/billsync/billsync/engine"
)

// EntityCredit is the sync record kind of a credit (a Zuora credit memo).
const EntityCredit = "credit"

type creditRow struct {
	ID             string `gorm:"primaryKey"`
	CustomerID     string
	IdempotencyKey string
	Amount         string
	Currency       string
	Reason         string
	EffectiveDate  string
	RequestHash    string
	CreatedAt      time.Time
}

func (creditRow) TableName() string { return "credits" }

func creditFromRow(r creditRow) engine.Credit {
	amt, _ := decimal.NewFromString(r.Amount)
	return engine.Credit{ID: r.ID, CustomerID: r.CustomerID, IdempotencyKey: r.IdempotencyKey, Amount: amt, Currency: r.Currency,
		Reason: r.Reason, EffectiveDate: r.EffectiveDate, CreatedAt: r.CreatedAt.UTC()}
}

// creditRequestHash is what tells a repeated grant (same key, same request)
// from a different grant that reuses a key.
func creditRequestHash(c engine.Credit) string {
	return engine.HashJSON(struct {
		Amount, Currency, Reason, Date string
	}{c.Amount.String(), c.Currency, c.Reason, c.EffectiveDate})
}

// GrantCredit records a credit for a customer and makes its sync record due,
// in one transaction (outbox). The caller's idempotency key makes a repeated
// grant the same credit (created false); the same key with a different
// amount, currency, reason or date is a conflict. The currency must be the
// customer's (its Zuora account bills in it). An empty EffectiveDate is the
// day of the grant.
func (db *DB) GrantCredit(ctx context.Context, c engine.Credit) (engine.Credit, bool, error) {
	if c.EffectiveDate == "" {
		c.EffectiveDate = db.Now().UTC().Format("2006-01-02")
	}
	c.ID = engine.CreditID(c.CustomerID, c.IdempotencyKey)
	if err := c.Validate(); err != nil {
		return engine.Credit{}, false, err
	}
	hash := creditRequestHash(c)
	created := false
	var out creditRow
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var cust customerRow
		if err := tx.Where("id = ?", c.CustomerID).Take(&cust).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("customer", c.CustomerID)
			}
			return err
		}
		err := tx.Where("customer_id = ? AND idempotency_key = ?", c.CustomerID, c.IdempotencyKey).Take(&out).Error
		if err == nil {
			if out.RequestHash != hash {
				return &engine.ConflictError{Field: "idempotencyKey", Message: "already used for a different credit (" + out.Amount + " " + out.Currency + ")"}
			}
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if cust.Currency != c.Currency {
			return &engine.ValidationError{Errors: []engine.FieldError{{Field: "currency", Message: "must be the customer's currency " + cust.Currency}}}
		}
		out = creditRow{ID: c.ID, CustomerID: c.CustomerID, IdempotencyKey: c.IdempotencyKey, Amount: c.Amount.String(), Currency: c.Currency,
			Reason: c.Reason, EffectiveDate: c.EffectiveDate, RequestHash: hash, CreatedAt: db.Now()}
		if err := tx.Create(&out).Error; err != nil {
			return err
		}
		created = true
		return db.markPending(tx, EntityCredit, c.ID, 1)
	})
	if err != nil {
		return engine.Credit{}, false, err
	}
	return creditFromRow(out), created, nil
}

// GetCredit returns one credit.
func (db *DB) GetCredit(ctx context.Context, id string) (engine.Credit, error) {
	var r creditRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return engine.Credit{}, notFound("credit", id)
		}
		return engine.Credit{}, err
	}
	return creditFromRow(r), nil
}

// ListCredits returns a customer's credits, oldest first.
func (db *DB) ListCredits(ctx context.Context, customerID string) ([]engine.Credit, error) {
	var rows []creditRow
	if err := db.Gorm.WithContext(ctx).Where("customer_id = ?", customerID).Order("created_at, id").Limit(1000).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]engine.Credit, 0, len(rows))
	for _, r := range rows {
		out = append(out, creditFromRow(r))
	}
	return out, nil
}
