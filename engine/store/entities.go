package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/mappings"
)

// Connector and direction of the outbound sync records written with entities.
const (
	ConnectorZuora = "zuora"
	DirectionOut   = "out"
	DirectionIn    = "in"
)

// Entity kinds of sync records.
const (
	EntityPlan         = "plan"
	EntityCustomer     = "customer"
	EntitySubscription = "subscription"
)

// ListOptions selects a page of a list, ordered by id.
type ListOptions struct {
	After           string
	Limit           int
	IncludeArchived bool
	CustomerID      string
	Kind            string
}

func (o ListOptions) limit() int {
	if o.Limit <= 0 {
		return 50
	}
	if o.Limit > 500 {
		return 500
	}
	return o.Limit
}

// Page is one page of a list; Next is the cursor of the next page, empty at the end.
type Page[T any] struct {
	Items []T
	Next  string
}

func notFound(kind, id string) error { return &engine.NotFoundError{Kind: kind, ID: id} }

// markPending raises the outbound sync record of an entity to the given revision
// and makes it due now. It runs inside the entity's write transaction (outbox).
func (db *DB) markPending(tx *gorm.DB, kind, id string, revision int) error {
	now := db.Now()
	rec := syncRecordRow{
		EntityKind: kind, EntityID: id, Connector: ConnectorZuora, Direction: DirectionOut,
		State: StatePending, DesiredRevision: revision, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now,
	}
	// An in-flight record keeps its state: the worker sees the higher desired
	// revision when it finishes and leaves the record pending.
	return tx.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "entity_kind"}, {Name: "entity_id"}, {Name: "connector"}, {Name: "direction"}},
		DoUpdates: clause.Assignments(map[string]any{
			"desired_revision": revision,
			"state":            gorm.Expr("CASE WHEN sync_records.state = ? THEN sync_records.state ELSE ? END", StateInFlight, StatePending),
			"attempts":         gorm.Expr("CASE WHEN sync_records.state = ? THEN sync_records.attempts ELSE 0 END", StateInFlight),
			"reason":           "",
			"next_attempt_at":  now,
			"updated_at":       now,
		}),
	}).Create(&rec).Error
}

func (db *DB) isMapped(tx *gorm.DB, kind mappings.Kind, localID string) (bool, error) {
	var n int64
	err := tx.Table("id_mappings").Where("kind = ? AND local_id = ?", string(kind), localID).Count(&n).Error
	return n > 0, err
}

// UpsertPlan stores the whole plan. Billing periods and charges missing from p
// are archived, never deleted. Unchanged content is a no-op. It reports whether
// anything changed.
func (db *DB) UpsertPlan(ctx context.Context, p engine.Plan) (engine.Plan, bool, error) {
	if err := p.Validate(); err != nil {
		return engine.Plan{}, false, err
	}
	for i := range p.BillingPeriods {
		for j := range p.BillingPeriods[i].Charges {
			if p.BillingPeriods[i].Charges[j].Currency == "" {
				p.BillingPeriods[i].Charges[j].Currency = p.Currency
			}
		}
	}
	hash := p.ContentHash()
	changed := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := db.Now()
		var existing planRow
		err := tx.Where("id = ?", p.ID).Take(&existing).Error
		found := err == nil
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if found && existing.ContentHash == hash && existing.ArchivedAt == nil {
			return nil
		}
		changed = true
		var oldBPs []billingPeriodRow
		var oldCharges []chargeRow
		if found {
			if err := tx.Where("plan_id = ?", p.ID).Find(&oldBPs).Error; err != nil {
				return err
			}
			if err := tx.Where("plan_id = ?", p.ID).Find(&oldCharges).Error; err != nil {
				return err
			}
			if err := db.checkPlanChange(tx, existing, oldBPs, oldCharges, p); err != nil {
				return err
			}
		}
		row := planRow{
			ID: p.ID, Kind: string(p.Kind), Name: p.Name, Description: p.Description, PricingType: string(p.PricingType),
			TrialDays: p.TrialDays, Currency: p.Currency, Metadata: metadataTo(p.Metadata), Revision: 1, ContentHash: hash, CreatedAt: now, UpdatedAt: now,
		}
		if found {
			row.Revision = existing.Revision + 1
			row.CreatedAt = existing.CreatedAt
			if err := tx.Model(&planRow{}).Where("id = ?", p.ID).Updates(map[string]any{
				"kind": row.Kind, "name": row.Name, "description": row.Description, "pricing_type": row.PricingType,
				"trial_days": row.TrialDays, "currency": row.Currency, "metadata": row.Metadata, "revision": row.Revision,
				"content_hash": hash, "archived_at": nil, "updated_at": now,
			}).Error; err != nil {
				return err
			}
		} else if err := tx.Create(&row).Error; err != nil {
			return err
		}
		keepBP := map[string]bool{}
		keepCharge := map[string]bool{}
		for i, bp := range p.BillingPeriods {
			keepBP[bp.ID] = true
			r := billingPeriodRow{PlanID: p.ID, ID: bp.ID, Period: string(bp.Period), Position: i}
			if err := tx.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "plan_id"}, {Name: "id"}},
				DoUpdates: clause.Assignments(map[string]any{"period": r.Period, "position": i, "archived_at": nil}),
			}).Create(&r).Error; err != nil {
				return err
			}
		}
		pos := 0
		for _, bp := range p.BillingPeriods {
			for _, c := range bp.Charges {
				keepCharge[c.ID] = true
				r := chargeToRow(p.ID, bp.ID, pos, c)
				pos++
				r.ArchivedAt = nil
				if err := tx.Clauses(clause.OnConflict{
					Columns: []clause.Column{{Name: "plan_id"}, {Name: "id"}},
					DoUpdates: clause.AssignmentColumns([]string{"billing_period_id", "position", "name", "type", "model",
						"currency", "price", "tiers", "unit_of_measure", "feature", "billing_timing", "default_quantity", "archived_at"}),
				}).Create(&r).Error; err != nil {
					return err
				}
			}
		}
		for _, c := range oldCharges {
			if !keepCharge[c.ID] && c.ArchivedAt == nil {
				if err := tx.Model(&chargeRow{}).Where("plan_id = ? AND id = ?", p.ID, c.ID).Update("archived_at", now).Error; err != nil {
					return err
				}
			}
		}
		for _, bp := range oldBPs {
			if !keepBP[bp.ID] && bp.ArchivedAt == nil {
				if err := tx.Model(&billingPeriodRow{}).Where("plan_id = ? AND id = ?", p.ID, bp.ID).Update("archived_at", now).Error; err != nil {
					return err
				}
				if err := tx.Model(&chargeRow{}).Where("plan_id = ? AND billing_period_id = ? AND archived_at IS NULL", p.ID, bp.ID).Update("archived_at", now).Error; err != nil {
					return err
				}
			}
		}
		if err := db.recordChange(tx, EntityPlan, p.ID, row.Revision); err != nil {
			return err
		}
		return db.markPending(tx, EntityPlan, p.ID, row.Revision)
	})
	if err != nil {
		return engine.Plan{}, false, err
	}
	out, err := db.GetPlan(ctx, p.ID)
	return out, changed, err
}

// checkPlanChange refuses changes Zuora cannot take once the object is synced.
func (db *DB) checkPlanChange(tx *gorm.DB, old planRow, oldBPs []billingPeriodRow, oldCharges []chargeRow, p engine.Plan) error {
	if old.Kind != string(p.Kind) {
		return &engine.ConflictError{Field: "kind", Message: fmt.Sprintf("a %s cannot become a %s; create a new plan with a new id instead", old.Kind, p.Kind)}
	}
	productSynced, err := db.isMapped(tx, mappings.Product, p.ID)
	if err != nil {
		return err
	}
	if productSynced && old.Currency != p.Currency {
		return &engine.ConflictError{Field: "currency", Message: fmt.Sprintf("the plan is synced to Zuora in %s; its currency cannot change. Create a new plan for %s instead", old.Currency, p.Currency)}
	}
	bpByID := map[string]billingPeriodRow{}
	for _, bp := range oldBPs {
		bpByID[bp.ID] = bp
	}
	for i, bp := range p.BillingPeriods {
		old, ok := bpByID[bp.ID]
		if !ok || old.Period == string(bp.Period) {
			continue
		}
		synced, err := db.isMapped(tx, mappings.RatePlan, mappings.Key(p.ID, bp.ID))
		if err != nil {
			return err
		}
		if synced {
			return &engine.ConflictError{Field: fmt.Sprintf("billingPeriods[%d].period", i),
				Message: fmt.Sprintf("billing period %q is synced to Zuora as a %s rate plan; its length cannot change. Add a new billing period with a new id instead", bp.ID, old.Period)}
		}
	}
	chByID := map[string]chargeRow{}
	for _, c := range oldCharges {
		chByID[c.ID] = c
	}
	// A charge in Zuora cannot leave a billing period that subscriptions use:
	// Zuora keeps (cannot delete, cannot end) a product rate plan charge that
	// was added to a subscription ("Delete products, rate plans, and product
	// rate plan charges", docs.zuora.com/en/zuora-billing/set-up-zuora-billing/
	// build-product-and-prices/set-up-product-catalog/delete-products-rate-plans-and-product-rate-plan-charges),
	// so new subscriptions to the period would still be billed for it.
	kept := map[string]bool{}
	activeBP := map[string]int{}
	for i, bp := range p.BillingPeriods {
		if bp.ArchivedAt == nil {
			activeBP[bp.ID] = i
		}
		for _, c := range bp.Charges {
			if c.ArchivedAt == nil {
				kept[c.ID] = true
			}
		}
	}
	for _, c := range oldCharges {
		i, active := activeBP[c.BillingPeriodID]
		if c.ArchivedAt != nil || kept[c.ID] || !active {
			continue
		}
		synced, err := db.isMapped(tx, mappings.Charge, mappings.Key(p.ID, c.ID))
		if err != nil || !synced {
			if err != nil {
				return err
			}
			continue
		}
		used, err := db.chargeInUse(tx, p.ID, c.BillingPeriodID)
		if err != nil {
			return err
		}
		if used {
			return &engine.ConflictError{Field: fmt.Sprintf("billingPeriods[%d].charges", i),
				Message: fmt.Sprintf("charge %q is in Zuora and subscriptions use billing period %q: Zuora keeps the charges of a rate plan that subscriptions use, so new subscriptions would still be billed for it. "+
					"Add a new billing period with the charges new subscriptions should get, move subscriptions to it, then archive this one", c.ID, c.BillingPeriodID)}
		}
	}
	for i, bp := range p.BillingPeriods {
		for j, c := range bp.Charges {
			old, ok := chByID[c.ID]
			if !ok || (old.Type == string(c.Type) && old.Model == string(c.Model) && old.BillingPeriodID == bp.ID) {
				continue
			}
			synced, err := db.isMapped(tx, mappings.Charge, mappings.Key(p.ID, c.ID))
			if err != nil {
				return err
			}
			if !synced {
				continue
			}
			f := fmt.Sprintf("billingPeriods[%d].charges[%d]", i, j)
			switch {
			case old.Type != string(c.Type):
				return &engine.ConflictError{Field: f + ".type", Message: fmt.Sprintf("charge %q is synced to Zuora as a %s charge; its type cannot change. Add a new charge with a new id instead", c.ID, old.Type)}
			case old.Model != string(c.Model):
				return &engine.ConflictError{Field: f + ".model", Message: fmt.Sprintf("charge %q is synced to Zuora with model %s; its model cannot change. Add a new charge with a new id instead", c.ID, old.Model)}
			default:
				return &engine.ConflictError{Field: f + ".id", Message: fmt.Sprintf("charge %q is synced to Zuora in billing period %q; it cannot move. Add a new charge with a new id instead", c.ID, old.BillingPeriodID)}
			}
		}
	}
	return nil
}

// GetPlan returns a plan with all its billing periods and charges, archived ones included.
func (db *DB) GetPlan(ctx context.Context, id string) (engine.Plan, error) {
	return db.getPlan(db.Gorm.WithContext(ctx), id)
}

func (db *DB) getPlan(tx *gorm.DB, id string) (engine.Plan, error) {
	var p planRow
	if err := tx.Where("id = ?", id).Take(&p).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return engine.Plan{}, notFound("plan", id)
		}
		return engine.Plan{}, err
	}
	var bps []billingPeriodRow
	if err := tx.Where("plan_id = ?", id).Order("position, id").Find(&bps).Error; err != nil {
		return engine.Plan{}, err
	}
	var cs []chargeRow
	if err := tx.Where("plan_id = ?", id).Order("position, id").Find(&cs).Error; err != nil {
		return engine.Plan{}, err
	}
	return planFromRows(p, bps, cs), nil
}

// ListPlans lists plans by id.
func (db *DB) ListPlans(ctx context.Context, o ListOptions) (Page[engine.Plan], error) {
	q := db.Gorm.WithContext(ctx).Model(&planRow{}).Where("id > ?", o.After).Order("id").Limit(o.limit() + 1)
	if !o.IncludeArchived {
		q = q.Where("archived_at IS NULL")
	}
	if o.Kind != "" {
		q = q.Where("kind = ?", o.Kind)
	}
	var ids []string
	if err := q.Pluck("id", &ids).Error; err != nil {
		return Page[engine.Plan]{}, err
	}
	var page Page[engine.Plan]
	if len(ids) > o.limit() {
		ids = ids[:o.limit()]
		page.Next = ids[len(ids)-1]
	}
	for _, id := range ids {
		p, err := db.GetPlan(ctx, id)
		if err != nil {
			return Page[engine.Plan]{}, err
		}
		page.Items = append(page.Items, p)
	}
	return page, nil
}

// ArchivePlan archives a plan: it stays (Zuora keeps history) but takes no new subscriptions.
func (db *DB) ArchivePlan(ctx context.Context, id string) (engine.Plan, error) {
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var p planRow
		if err := tx.Where("id = ?", id).Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("plan", id)
			}
			return err
		}
		if p.ArchivedAt != nil {
			return nil
		}
		if err := tx.Model(&planRow{}).Where("id = ?", id).Updates(map[string]any{
			"archived_at": db.Now(), "updated_at": db.Now(), "revision": p.Revision + 1,
		}).Error; err != nil {
			return err
		}
		if err := db.recordChangeAs(tx, EntityPlan, id, p.Revision+1, ChangeArchived); err != nil {
			return err
		}
		return db.markPending(tx, EntityPlan, id, p.Revision+1)
	})
	if err != nil {
		return engine.Plan{}, err
	}
	return db.GetPlan(ctx, id)
}

// linkConflict refuses a link (billingId) to a Zuora record that another
// local record links to or is mapped to, or a change of the link of a
// record already mapped to another Zuora record (409).
func linkConflict(tx *gorm.DB, kind mappings.Kind, table, id, billingID string) error {
	if billingID == "" {
		return nil
	}
	var other []string
	if err := tx.Table(table).Where("billing_id = ? AND id <> ?", billingID, id).Limit(1).Pluck("id", &other).Error; err != nil {
		return err
	}
	if len(other) > 0 {
		return &engine.ConflictError{Field: "billingId", Message: fmt.Sprintf("%s is already linked to %q", billingID, other[0])}
	}
	owner := "parent_id"
	if kind == mappings.Subscription {
		owner = "local_id"
	}
	var rows []struct{ Owner, ZuoraID, ZuoraNumber string }
	if err := tx.Table("id_mappings").Select(owner+" AS owner, zuora_id, zuora_number").
		Where("kind = ? AND (zuora_id = ? OR zuora_number = ? OR "+owner+" = ?)", string(kind), billingID, billingID, id).Scan(&rows).Error; err != nil {
		return err
	}
	for _, r := range rows {
		switch {
		case r.Owner != id && (r.ZuoraID == billingID || r.ZuoraNumber == billingID):
			return &engine.ConflictError{Field: "billingId", Message: fmt.Sprintf("Zuora's %s is already mapped to %q", billingID, r.Owner)}
		case r.Owner == id && r.ZuoraID != billingID && r.ZuoraNumber != billingID:
			return &engine.ConflictError{Field: "billingId", Message: fmt.Sprintf("already synced to Zuora's %s; a link cannot move it", r.ZuoraNumber)}
		}
	}
	return nil
}

// UpsertCustomer stores a customer; unchanged content is a no-op.
func (db *DB) UpsertCustomer(ctx context.Context, c engine.Customer) (engine.Customer, bool, error) {
	if err := c.Validate(); err != nil {
		return engine.Customer{}, false, err
	}
	hash := c.ContentHash()
	changed := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := db.Now()
		var existing customerRow
		err := tx.Where("id = ?", c.ID).Take(&existing).Error
		found := err == nil
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		if found && existing.ContentHash == hash && existing.ArchivedAt == nil {
			return nil
		}
		changed = true
		if found && existing.Currency != c.Currency {
			var n int64
			if err := tx.Table("id_mappings").Where("kind = ? AND parent_id = ?", string(mappings.Account), c.ID).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return &engine.ConflictError{Field: "currency", Message: fmt.Sprintf("the customer's Zuora account bills in %s; its currency cannot change", existing.Currency)}
			}
		}
		if err := linkConflict(tx, mappings.Account, "customers", c.ID, c.BillingID); err != nil {
			return err
		}
		row := customerToRow(c)
		row.ContentHash = hash
		row.UpdatedAt = now
		row.ArchivedAt = nil
		if found {
			row.Revision = existing.Revision + 1
			row.CreatedAt = existing.CreatedAt
			if err := tx.Model(&customerRow{}).Where("id = ?", c.ID).Select("*").Omit("id").Updates(&row).Error; err != nil {
				return err
			}
		} else {
			row.Revision = 1
			row.CreatedAt = now
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
			if _, err := db.emit(tx, NewEvent{Type: EventCustomerCreated, Key: c.ID, CustomerID: c.ID, Subject: c.ID,
				Data: map[string]any{"customerId": c.ID, "name": c.Name, "email": c.Email, "currency": c.Currency}}); err != nil {
				return err
			}
		}
		if err := db.recordChange(tx, EntityCustomer, c.ID, row.Revision); err != nil {
			return err
		}
		if err := db.markPending(tx, EntityCustomer, c.ID, row.Revision); err != nil {
			return err
		}
		// Subscriptions skipped because of the customer (billing info, payment
		// method) are re-evaluated.
		var subIDs []string
		if err := tx.Model(&subscriptionRow{}).Where("customer_id = ?", c.ID).Pluck("id", &subIDs).Error; err != nil {
			return err
		}
		for _, id := range subIDs {
			if err := tx.Model(&syncRecordRow{}).
				Where("entity_kind = ? AND entity_id = ? AND direction = ? AND state IN ?", EntitySubscription, id, DirectionOut, []string{StateSkipped, StateDead, StateFailed}).
				Updates(map[string]any{"state": StatePending, "next_attempt_at": now, "updated_at": now, "reason": ""}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return engine.Customer{}, false, err
	}
	out, err := db.GetCustomer(ctx, c.ID)
	return out, changed, err
}

// GetCustomer returns one customer.
func (db *DB) GetCustomer(ctx context.Context, id string) (engine.Customer, error) {
	var r customerRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return engine.Customer{}, notFound("customer", id)
		}
		return engine.Customer{}, err
	}
	return customerFromRow(r), nil
}

// ListCustomers lists customers by id.
func (db *DB) ListCustomers(ctx context.Context, o ListOptions) (Page[engine.Customer], error) {
	q := db.Gorm.WithContext(ctx).Where("id > ?", o.After).Order("id").Limit(o.limit() + 1)
	if !o.IncludeArchived {
		q = q.Where("archived_at IS NULL")
	}
	var rows []customerRow
	if err := q.Find(&rows).Error; err != nil {
		return Page[engine.Customer]{}, err
	}
	var page Page[engine.Customer]
	if len(rows) > o.limit() {
		rows = rows[:o.limit()]
		page.Next = rows[len(rows)-1].ID
	}
	for _, r := range rows {
		page.Items = append(page.Items, customerFromRow(r))
	}
	return page, nil
}

// ArchiveCustomer archives a customer; its Zuora account is kept.
func (db *DB) ArchiveCustomer(ctx context.Context, id string) (engine.Customer, error) {
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r customerRow
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("customer", id)
			}
			return err
		}
		if r.ArchivedAt != nil {
			return nil
		}
		if err := db.recordChangeAs(tx, EntityCustomer, id, r.Revision, ChangeArchived); err != nil {
			return err
		}
		return tx.Model(&customerRow{}).Where("id = ?", id).Updates(map[string]any{"archived_at": db.Now(), "updated_at": db.Now()}).Error
	})
	if err != nil {
		return engine.Customer{}, err
	}
	return db.GetCustomer(ctx, id)
}

// UpsertSubscription stores a subscription after checking its references;
// unchanged content is a no-op.
func (db *DB) UpsertSubscription(ctx context.Context, s engine.Subscription) (engine.Subscription, bool, error) {
	return db.AdoptSubscription(ctx, s, 0)
}

// ErrStaleRevision: the subscription changed since the revision the caller read.
var ErrStaleRevision = errors.New("the subscription changed since it was read")

// AdoptSubscription stores a subscription read from Zuora over the local one
// only while the local one is still at revision expected (ErrStaleRevision
// otherwise: a local change made meanwhile wins); expected 0 stores it
// whatever the revision (UpsertSubscription). A pending scheduled change is
// kept as an ordinary write keeps it.
func (db *DB) AdoptSubscription(ctx context.Context, s engine.Subscription, expected int) (engine.Subscription, bool, error) {
	if err := s.Validate(); err != nil {
		return engine.Subscription{}, false, err
	}
	return db.upsertSubscription(ctx, s.ID, func(found bool, existing engine.Subscription) (engine.Subscription, bool, error) {
		if expected > 0 && (!found || existing.Revision != expected) {
			return s, false, ErrStaleRevision
		}
		if found && s.Scheduled == nil {
			s.Scheduled = keptChange(existing.Scheduled, s)
		}
		return s, false, nil
	})
}

// upsertSubscription writes the subscription next returns, given the stored
// one (found false: none), in one transaction; skip leaves everything as is.
func (db *DB) upsertSubscription(ctx context.Context, id string, next func(found bool, existing engine.Subscription) (s engine.Subscription, skip bool, err error)) (engine.Subscription, bool, error) {
	changed := false
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := db.Now()
		var existing subscriptionRow
		err := tx.Where("id = ?", id).Take(&existing).Error
		found := err == nil
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		s, skip, err := next(found, subscriptionFromRow(existing))
		if err != nil || skip {
			return err
		}
		if c := s.Scheduled; c != nil {
			// The state the pending change leads to must be one the
			// subscription could have (plans known, currency, periods on sale).
			same := c.PlanID == existing.PlanID && c.BillingPeriodID == existing.BillingPeriodID
			if err := db.checkSubscriptionRefs(tx, s.Applied(), found && same); err != nil {
				return err
			}
		}
		hash := s.ContentHash()
		if found && existing.ContentHash == hash {
			return nil
		}
		changed = true
		if found && existing.CustomerID != s.CustomerID {
			return &engine.ConflictError{Field: "customerId", Message: "a subscription cannot move to another customer; cancel it and create a new one"}
		}
		if err := db.checkSubscriptionRefs(tx, s, found); err != nil {
			return err
		}
		if err := db.checkSubscriptionCoupons(tx, s, subscriptionFromRow(existing).Coupons); err != nil {
			return err
		}
		if err := linkConflict(tx, mappings.Subscription, "subscriptions", s.ID, s.BillingID); err != nil {
			return err
		}
		row := subscriptionToRow(s)
		row.ContentHash = hash
		row.UpdatedAt = now
		if found {
			row.Revision = existing.Revision + 1
			row.CreatedAt = existing.CreatedAt
			if err := tx.Model(&subscriptionRow{}).Where("id = ?", s.ID).Select("*").Omit("id").Updates(&row).Error; err != nil {
				return err
			}
		} else {
			row.Revision = 1
			row.CreatedAt = now
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
		}
		if err := db.recordChange(tx, EntitySubscription, s.ID, row.Revision); err != nil {
			return err
		}
		if err := db.markPending(tx, EntitySubscription, s.ID, row.Revision); err != nil {
			return err
		}
		if err := db.emitSubscription(tx, s, found, existing.Status, row.Revision); err != nil {
			return err
		}
		// The customer's skip rules depend on its subscriptions.
		return db.markDue(tx, EntityCustomer, s.CustomerID)
	})
	if err != nil {
		return engine.Subscription{}, false, err
	}
	out, err := db.GetSubscription(ctx, id)
	return out, changed, err
}

func (db *DB) checkSubscriptionRefs(tx *gorm.DB, s engine.Subscription, existing bool) error {
	var cust customerRow
	if err := tx.Where("id = ?", s.CustomerID).Take(&cust).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return &engine.ValidationError{Errors: []engine.FieldError{{Field: "customerId", Message: fmt.Sprintf("unknown customer %q", s.CustomerID)}}}
		}
		return err
	}
	plans := map[string]engine.Plan{}
	load := func(id string) (engine.Plan, bool, error) {
		if p, ok := plans[id]; ok {
			return p, true, nil
		}
		p, err := db.getPlan(tx, id)
		if errors.Is(err, engine.ErrNotFound) {
			return engine.Plan{}, false, nil
		}
		if err != nil {
			return engine.Plan{}, false, err
		}
		plans[id] = p
		return p, true, nil
	}
	plan, ok, err := load(s.PlanID)
	if err != nil {
		return err
	}
	if !ok {
		return &engine.ValidationError{Errors: []engine.FieldError{{Field: "planId", Message: fmt.Sprintf("unknown plan %q", s.PlanID)}}}
	}
	var addOns []engine.Plan
	for _, a := range s.AddOns {
		p, ok, err := load(a.PlanID)
		if err != nil {
			return err
		}
		if !ok {
			return &engine.ValidationError{Errors: []engine.FieldError{{Field: "addOns", Message: fmt.Sprintf("unknown add-on %q", a.PlanID)}}}
		}
		addOns = append(addOns, p)
	}
	return engine.CheckSubscriptionRefs(s, customerFromRow(cust), plan, addOns, existing)
}

// GetSubscription returns one subscription.
func (db *DB) GetSubscription(ctx context.Context, id string) (engine.Subscription, error) {
	var r subscriptionRow
	if err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return engine.Subscription{}, notFound("subscription", id)
		}
		return engine.Subscription{}, err
	}
	return subscriptionFromRow(r), nil
}

// ListSubscriptions lists subscriptions by id, optionally of one customer.
func (db *DB) ListSubscriptions(ctx context.Context, o ListOptions) (Page[engine.Subscription], error) {
	q := db.Gorm.WithContext(ctx).Where("id > ?", o.After).Order("id").Limit(o.limit() + 1)
	if o.CustomerID != "" {
		q = q.Where("customer_id = ?", o.CustomerID)
	}
	var rows []subscriptionRow
	if err := q.Find(&rows).Error; err != nil {
		return Page[engine.Subscription]{}, err
	}
	var page Page[engine.Subscription]
	if len(rows) > o.limit() {
		rows = rows[:o.limit()]
		page.Next = rows[len(rows)-1].ID
	}
	for _, r := range rows {
		page.Items = append(page.Items, subscriptionFromRow(r))
	}
	return page, nil
}

// ChargeInUse reports whether any subscription uses the plan (directly or as
// an add-on) on the billing period key "planID/billingPeriodID".
func (db *DB) ChargeInUse(ctx context.Context, planID, periodKey string) (bool, error) {
	bpID := periodKey
	if i := len(planID) + 1; len(periodKey) > i {
		bpID = periodKey[i:]
	}
	return db.chargeInUse(db.Gorm.WithContext(ctx), planID, bpID)
}

func (db *DB) chargeInUse(tx *gorm.DB, planID, bpID string) (bool, error) {
	var n int64
	err := tx.Model(&subscriptionRow{}).
		Where("(plan_id = ? AND billing_period_id = ?) OR add_ons LIKE ?", planID, bpID, "%\"planId\":\""+planID+"\"%").Count(&n).Error
	return n > 0, err
}

// emitSubscription writes the subscription's event for this revision:
// created, canceled (the status became cancelled) or updated.
func (db *DB) emitSubscription(tx *gorm.DB, s engine.Subscription, existed bool, oldStatus string, revision int) error {
	typ := EventSubscriptionUpdated
	switch {
	case !existed:
		typ = EventSubscriptionCreated
	case s.Status == engine.StatusCancelled && oldStatus != string(engine.StatusCancelled):
		typ = EventSubscriptionCanceled
	}
	_, err := db.emit(tx, NewEvent{Type: typ, Key: fmt.Sprintf("%s:%d", s.ID, revision), CustomerID: s.CustomerID, Subject: s.ID,
		Data: map[string]any{"subscriptionId": s.ID, "customerId": s.CustomerID, "planId": s.PlanID, "billingPeriodId": s.BillingPeriodID,
			"status": s.Status, "startDate": s.StartDate, "cancellationDate": s.CancellationDate, "revision": revision}})
	return err
}

// CatalogGeneration returns the catalog's generation: a number that moves
// with every change to plans, billing periods, charges and the mappings of
// products, rate plans and charges (triggers move it, in the change's own
// transaction; migration 00027). Caches of the catalog are good while it
// stands.
func (db *DB) CatalogGeneration(ctx context.Context) (int64, error) {
	var gen []int64
	if err := db.Gorm.WithContext(ctx).Raw(`SELECT generation FROM catalog_generation WHERE id = 1`).Scan(&gen).Error; err != nil {
		return 0, fmt.Errorf("read the catalog generation: %w", err)
	}
	if len(gen) == 0 {
		return 0, errors.New("read the catalog generation: no row (migration 00027 not applied?)")
	}
	return gen[0], nil
}
