package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/mappings"
)

// EntityCoupon is the sync record kind of a coupon (a Zuora discount product).
const EntityCoupon = "coupon"

// CouponMappingID is the local id of a coupon's Zuora catalog mappings
// (product; rate plan and charge under it): '~' is not allowed in entity
// ids, so a coupon's mappings never meet a plan's.
func CouponMappingID(couponID string) string { return "~coupon:" + couponID }

type couponRow struct {
	ID            string `gorm:"primaryKey"`
	Name          string
	Description   string
	DiscountType  string
	Percentage    string
	Amount        string
	Currency      string
	Duration      string
	Periods       int
	BillingPeriod string
	PlanIDs       string `gorm:"column:plan_ids"`
	ChargeTypes   string
	Revision      int
	ContentHash   string
	ArchivedAt    *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (couponRow) TableName() string { return "coupons" }

func couponFromRow(r couponRow) engine.Coupon {
	c := engine.Coupon{ID: r.ID, Name: r.Name, Description: r.Description, Type: engine.DiscountType(r.DiscountType),
		Percentage: mustDecimal(r.Percentage), Amount: mustDecimal(r.Amount), Currency: r.Currency,
		Duration: engine.CouponDuration(r.Duration), Periods: r.Periods, BillingPeriod: engine.Period(r.BillingPeriod),
		Revision: r.Revision, ArchivedAt: utcPtr(r.ArchivedAt), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	_ = json.Unmarshal([]byte(r.PlanIDs), &c.PlanIDs)
	_ = json.Unmarshal([]byte(r.ChargeTypes), &c.ChargeTypes)
	if len(c.PlanIDs) == 0 {
		c.PlanIDs = nil
	}
	if len(c.ChargeTypes) == 0 {
		c.ChargeTypes = nil
	}
	return c
}

func couponToRow(c engine.Coupon) couponRow {
	plans, _ := json.Marshal(append([]string{}, c.PlanIDs...))
	types, _ := json.Marshal(append([]engine.ChargeType{}, c.ChargeTypes...))
	return couponRow{ID: c.ID, Name: c.Name, Description: c.Description, DiscountType: string(c.Type),
		Percentage: c.Percentage.String(), Amount: c.Amount.String(), Currency: c.Currency, Duration: string(c.Duration),
		Periods: c.Periods, BillingPeriod: string(c.BillingPeriod), PlanIDs: string(plans), ChargeTypes: string(types)}
}

// UpsertCoupon stores a coupon and marks its sync record pending in the
// same transaction; unchanged content is a no-op. Once the coupon is in
// Zuora only its name, description and plan restriction can change: its
// discount charge's model, value, currency and duration are what the
// subscriptions that carry it were sold (a new coupon is the way).
func (db *DB) UpsertCoupon(ctx context.Context, c engine.Coupon) (engine.Coupon, bool, error) {
	if c.BillingPeriod == "" {
		c.BillingPeriod = engine.PeriodMonth
	}
	if err := c.Validate(); err != nil {
		return engine.Coupon{}, false, err
	}
	hash := c.ContentHash()
	changed := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := db.Now()
		var existing couponRow
		err := tx.Where("id = ?", c.ID).Take(&existing).Error
		found := err == nil
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if found && existing.ContentHash == hash && existing.ArchivedAt == nil {
			return nil
		}
		changed = true
		for _, id := range c.PlanIDs {
			var n int64
			if err := tx.Model(&planRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return &engine.ValidationError{Errors: []engine.FieldError{{Field: "appliesTo.planIds", Message: "unknown plan " + id}}}
			}
		}
		if found {
			old := couponFromRow(existing)
			mapped, err := db.isMapped(tx, mappings.Product, CouponMappingID(c.ID))
			if err != nil {
				return err
			}
			if mapped && (old.Type != c.Type || !old.Percentage.Equal(c.Percentage) || !old.Amount.Equal(c.Amount) || old.Currency != c.Currency ||
				old.Duration != c.Duration || old.Periods != c.Periods || old.BillingPeriod != c.BillingPeriod || !sameTypes(old.ChargeTypes, c.ChargeTypes)) {
				return &engine.ConflictError{Field: "coupon", Message: "the coupon is in Zuora: only its name, description and appliesTo.planIds can change; " +
					"create a new coupon for another discount, duration or scope"}
			}
		}
		row := couponToRow(c)
		row.ContentHash, row.UpdatedAt, row.Revision, row.CreatedAt = hash, now, 1, now
		if found {
			row.Revision, row.CreatedAt = existing.Revision+1, existing.CreatedAt
			if err := tx.Model(&couponRow{}).Where("id = ?", c.ID).Select("*").Omit("id").Updates(&row).Error; err != nil {
				return err
			}
		} else if err := tx.Create(&row).Error; err != nil {
			return err
		}
		if err := db.recordChange(tx, EntityCoupon, c.ID, row.Revision); err != nil {
			return err
		}
		return db.markPending(tx, EntityCoupon, c.ID, row.Revision)
	})
	if err != nil {
		return engine.Coupon{}, false, err
	}
	out, err := db.GetCoupon(ctx, c.ID)
	return out, changed, err
}

func sameTypes(a, b []engine.ChargeType) bool { return slices.Equal(a, b) }

// GetCoupon returns one coupon, archived or not.
func (db *DB) GetCoupon(ctx context.Context, id string) (engine.Coupon, error) {
	var r couponRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return engine.Coupon{}, notFound("coupon", id)
		}
		return engine.Coupon{}, err
	}
	return couponFromRow(r), nil
}

// CouponsByID returns the coupons with the given ids that exist.
func (db *DB) CouponsByID(ctx context.Context, ids []string) (map[string]engine.Coupon, error) {
	return db.couponsByID(db.Gorm.WithContext(ctx), ids)
}

func (db *DB) couponsByID(tx *gorm.DB, ids []string) (map[string]engine.Coupon, error) {
	out := map[string]engine.Coupon{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []couponRow
	if err := tx.Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.ID] = couponFromRow(r)
	}
	return out, nil
}

// ListCoupons lists coupons by id.
func (db *DB) ListCoupons(ctx context.Context, o ListOptions) (Page[engine.Coupon], error) {
	q := db.Gorm.WithContext(ctx).Where("id > ?", o.After).Order("id").Limit(o.limit() + 1)
	if !o.IncludeArchived {
		q = q.Where("archived_at IS NULL")
	}
	var rows []couponRow
	if err := q.Find(&rows).Error; err != nil {
		return Page[engine.Coupon]{}, err
	}
	var page Page[engine.Coupon]
	if len(rows) > o.limit() {
		rows = rows[:o.limit()]
		page.Next = rows[len(rows)-1].ID
	}
	for _, r := range rows {
		page.Items = append(page.Items, couponFromRow(r))
	}
	return page, nil
}

// ArchiveCoupon archives a coupon: it can no longer be applied; the
// subscriptions that carry it keep it, and its Zuora rate plan is ended.
func (db *DB) ArchiveCoupon(ctx context.Context, id string) (engine.Coupon, error) {
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r couponRow
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("coupon", id)
			}
			return err
		}
		if r.ArchivedAt != nil {
			return nil
		}
		if err := tx.Model(&couponRow{}).Where("id = ?", id).Updates(map[string]any{
			"archived_at": db.Now(), "updated_at": db.Now(), "revision": r.Revision + 1,
		}).Error; err != nil {
			return err
		}
		if err := db.recordChangeAs(tx, EntityCoupon, id, r.Revision+1, ChangeArchived); err != nil {
			return err
		}
		return db.markPending(tx, EntityCoupon, id, r.Revision+1)
	})
	if err != nil {
		return engine.Coupon{}, err
	}
	return db.GetCoupon(ctx, id)
}

// checkSubscriptionCoupons checks the coupons a subscription applies
// (before: the ones it applied until now, which may stay though archived).
func (db *DB) checkSubscriptionCoupons(tx *gorm.DB, s engine.Subscription, before []string) error {
	if len(s.Coupons) == 0 {
		return nil
	}
	found, err := db.couponsByID(tx, s.Coupons)
	if err != nil {
		return err
	}
	var cust customerRow
	if err := tx.Where("id = ?", s.CustomerID).Take(&cust).Error; err != nil {
		return err
	}
	return engine.CheckCoupons(s, customerFromRow(cust), found, before)
}
