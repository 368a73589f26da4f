package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Billing state read from Zuora (issue 16): invoices, the payment status of
// each Zuora account, and the grace a past-due account's grants run on. Each
// write takes the events it causes, written in the same transaction.

// Invoice is a Zuora invoice as billsync last read it. Amounts are decimal text.
type Invoice struct {
	ID             string    `json:"id"`
	Number         string    `json:"number"`
	CustomerID     string    `json:"customerId"`
	ZuoraAccountID string    `json:"zuoraAccountId"`
	InvoiceDate    string    `json:"invoiceDate"`
	DueDate        string    `json:"dueDate,omitempty"`
	Amount         string    `json:"amount"`
	Balance        string    `json:"balance"`
	Currency       string    `json:"currency,omitempty"`
	Status         string    `json:"status"` // Zuora's: Draft, Posted, Canceled
	Paid           bool      `json:"paid"`   // posted with nothing left to pay
	ZuoraURL       string    `json:"zuoraUrl,omitempty"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

type invoiceRow struct {
	ID             string `gorm:"primaryKey"`
	InvoiceNumber  string
	CustomerID     string
	ZuoraAccountID string
	InvoiceDate    string
	DueDate        string
	Amount         string
	Balance        string
	Currency       string
	Status         string
	ZuoraURL       string
	UpdatedAt      time.Time
}

func (invoiceRow) TableName() string { return "zuora_invoices" }

func paidInvoice(status, balance string) bool {
	return status == "Posted" && (balance == "0" || balance == "0.00" || balance == "0.0")
}

// UpsertInvoice stores an invoice and emits evs in the same transaction;
// it reports whether anything changed.
func (db *DB) UpsertInvoice(ctx context.Context, inv Invoice, evs ...NewEvent) (bool, error) {
	changed := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var old invoiceRow
		err := tx.Where("id = ?", inv.ID).Take(&old).Error
		r := invoiceRow{ID: inv.ID, InvoiceNumber: inv.Number, CustomerID: inv.CustomerID, ZuoraAccountID: inv.ZuoraAccountID, InvoiceDate: inv.InvoiceDate,
			DueDate: inv.DueDate, Amount: inv.Amount, Balance: inv.Balance, Currency: inv.Currency, Status: inv.Status, ZuoraURL: inv.ZuoraURL}
		same := err == nil && old.InvoiceNumber == r.InvoiceNumber && old.CustomerID == r.CustomerID && old.DueDate == r.DueDate &&
			old.Amount == r.Amount && old.Balance == r.Balance && old.Status == r.Status && old.ZuoraURL == r.ZuoraURL
		if !same {
			changed = true
			r.UpdatedAt = db.Now()
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error; err != nil {
				return err
			}
		}
		_, err = db.emit(tx, evs...)
		return err
	})
	return changed, err
}

// InvoicesOf returns a customer's invoices, newest first.
func (db *DB) InvoicesOf(ctx context.Context, customerID string) ([]Invoice, error) {
	var rows []invoiceRow
	if err := db.Gorm.WithContext(ctx).Where("customer_id = ?", customerID).Order("invoice_date DESC, invoice_number DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Invoice, 0, len(rows))
	for _, r := range rows {
		out = append(out, Invoice{ID: r.ID, Number: r.InvoiceNumber, CustomerID: r.CustomerID, ZuoraAccountID: r.ZuoraAccountID, InvoiceDate: r.InvoiceDate,
			DueDate: r.DueDate, Amount: r.Amount, Balance: r.Balance, Currency: r.Currency, Status: r.Status, Paid: paidInvoice(r.Status, r.Balance),
			ZuoraURL: r.ZuoraURL, UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// Payment statuses.
const (
	PaymentPaid    = "paid"
	PaymentPastDue = "past_due"
)

// PaymentStatus is a Zuora account's payment standing (its subscriptions share it).
type PaymentStatus struct {
	ZuoraAccountID string    `json:"zuoraAccountId"`
	CustomerID     string    `json:"customerId"`
	Status         string    `json:"status"`                 // paid, past_due
	PastDueSince   string    `json:"pastDueSince,omitempty"` // date
	UpdatedAt      time.Time `json:"updatedAt"`
}

type paymentStatusRow struct {
	ZuoraAccountID string `gorm:"primaryKey"`
	CustomerID     string
	Status         string
	PastDueSince   string
	UpdatedAt      time.Time
}

func (paymentStatusRow) TableName() string { return "payment_status" }

// GrantGrace is the grace a grant runs on while its account is past due:
// access lasts until GraceUntil (exclusive), then the grant is revoked.
type GrantGrace struct {
	CustomerID         string     `json:"customerId"`
	SubscriptionNumber string     `json:"subscriptionNumber"`
	PlanID             string     `json:"planId"`
	ZuoraAccountID     string     `json:"zuoraAccountId"`
	PastDueSince       string     `json:"pastDueSince"`
	GraceDays          int        `json:"graceDays"`
	GraceUntil         string     `json:"graceUntil"`
	RevokedAt          *time.Time `json:"revokedAt,omitempty"`
}

type graceRow struct {
	CustomerID         string `gorm:"primaryKey"`
	SubscriptionNumber string `gorm:"primaryKey"`
	PlanID             string `gorm:"primaryKey"`
	ZuoraAccountID     string
	PastDueSince       string
	GraceDays          int
	GraceUntil         string
	RevokedAt          *time.Time
	UpdatedAt          time.Time
}

func (graceRow) TableName() string { return "grant_grace" }

func graceFromRow(r graceRow) GrantGrace {
	return GrantGrace{CustomerID: r.CustomerID, SubscriptionNumber: r.SubscriptionNumber, PlanID: r.PlanID, ZuoraAccountID: r.ZuoraAccountID,
		PastDueSince: r.PastDueSince, GraceDays: r.GraceDays, GraceUntil: r.GraceUntil, RevokedAt: utcPtr(r.RevokedAt)}
}

// SetPaymentStatus records an account's payment status and, in the same
// transaction, its grants' grace (past due: one row per grant, a grace
// already running is kept; paid: grace ends) and the events evs. It reports
// whether the status changed.
func (db *DB) SetPaymentStatus(ctx context.Context, ps PaymentStatus, grace []GrantGrace, evs ...NewEvent) (bool, error) {
	changed := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := db.Now()
		var old paymentStatusRow
		err := tx.Where("zuora_account_id = ?", ps.ZuoraAccountID).Take(&old).Error
		if err != nil || old.Status != ps.Status || old.PastDueSince != ps.PastDueSince || old.CustomerID != ps.CustomerID {
			changed = true
			r := paymentStatusRow{ZuoraAccountID: ps.ZuoraAccountID, CustomerID: ps.CustomerID, Status: ps.Status, PastDueSince: ps.PastDueSince, UpdatedAt: now}
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error; err != nil {
				return err
			}
		}
		if ps.Status == PaymentPaid {
			if err := tx.Where("zuora_account_id = ? AND revoked_at IS NULL", ps.ZuoraAccountID).Delete(&graceRow{}).Error; err != nil {
				return err
			}
		}
		for _, g := range grace {
			r := graceRow{CustomerID: g.CustomerID, SubscriptionNumber: g.SubscriptionNumber, PlanID: g.PlanID, ZuoraAccountID: g.ZuoraAccountID,
				PastDueSince: g.PastDueSince, GraceDays: g.GraceDays, GraceUntil: g.GraceUntil, UpdatedAt: now}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error; err != nil {
				return err
			}
		}
		_, err = db.emit(tx, evs...)
		return err
	})
	return changed, err
}

// PaymentStatusOf returns the payment status of each of a customer's accounts.
func (db *DB) PaymentStatusOf(ctx context.Context, customerID string) ([]PaymentStatus, error) {
	var rows []paymentStatusRow
	if err := db.Gorm.WithContext(ctx).Where("customer_id = ?", customerID).Order("zuora_account_id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]PaymentStatus, 0, len(rows))
	for _, r := range rows {
		out = append(out, PaymentStatus{ZuoraAccountID: r.ZuoraAccountID, CustomerID: r.CustomerID, Status: r.Status, PastDueSince: r.PastDueSince,
			UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// GraceOf returns a customer's grants on grace (running or run out).
func (db *DB) GraceOf(ctx context.Context, customerID string) ([]GrantGrace, error) {
	var rows []graceRow
	if err := db.Gorm.WithContext(ctx).Where("customer_id = ?", customerID).Order("plan_id, subscription_number").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]GrantGrace, 0, len(rows))
	for _, r := range rows {
		out = append(out, graceFromRow(r))
	}
	return out, nil
}

// GraceRunOut returns grants whose grace ended on or before today and that
// were not revoked yet.
func (db *DB) GraceRunOut(ctx context.Context, today string, limit int) ([]GrantGrace, error) {
	var rows []graceRow
	if err := db.Gorm.WithContext(ctx).Where("grace_until <= ? AND revoked_at IS NULL", today).Order("grace_until, customer_id").
		Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]GrantGrace, 0, len(rows))
	for _, r := range rows {
		out = append(out, graceFromRow(r))
	}
	return out, nil
}

// RevokeGrace marks a grant's grace as run out and emits evs, in one
// transaction; a grace already revoked (or ended by a payment) is left.
func (db *DB) RevokeGrace(ctx context.Context, g GrantGrace, evs ...NewEvent) (bool, error) {
	done := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := db.Now()
		res := tx.Model(&graceRow{}).Where("customer_id = ? AND subscription_number = ? AND plan_id = ? AND revoked_at IS NULL",
			g.CustomerID, g.SubscriptionNumber, g.PlanID).Updates(map[string]any{"revoked_at": now, "updated_at": now})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		done = true
		_, err := db.emit(tx, evs...)
		return err
	})
	return done, err
}
