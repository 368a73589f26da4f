package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/worker"
)

// Credits (issue 15, Togai's "Charge ID"): a credit granted to a customer
// becomes one Zuora credit memo on the customer's account, made from the
// credit charge (POST /v1/credit-memos, POST_CreditMemoFromPrpc) and posted
// at once. Never twice: the create carries an idempotency key derived from
// the credit, and after a failed or cut-off attempt the account's memos are
// looked up (GET /v1/credit-memos?accountId=) for the credit's marker in the
// memo's comment before anything is created again (custom fields on
// CreditMemo would need the tenant to define them; the comment is always
// there). A credit never changes: once its memo exists, the record stays
// synced.

// CreditChargeSKU is the SKU of the product billsync creates for credits
// when BILLSYNC_ZUORA_CREDIT_CHARGE_ID is not set. It starts with '_', which
// no plan id (and so no plan's SKU) can.
const CreditChargeSKU = "_billsync-credits"

// settingCreditCharge stores the id of the charge billsync created.
const settingCreditCharge = "zuora.credit_charge_id"

// creditMarker tags the memo's comment with the credit's id.
func creditMarker(id string) string { return "[billsync " + id + "]" }

func creditComment(c engine.Credit) string {
	m := creditMarker(c.ID)
	reason := engine.Truncate(c.Reason, 255-len(m)-1)
	if reason == "" {
		return m
	}
	return reason + " " + m
}

// creditChargeMu keeps two credits of one replica from creating the charge
// at once (replicas share the idempotency keys of the creates).
var creditChargeMu sync.Mutex

func (r *Reconcilers) reconcileCredit(ctx context.Context, rec store.SyncRecord, s *session) (worker.Result, error) {
	if rec.ZuoraID != "" && rec.ZuoraNumber != "" {
		return worker.Result{PayloadHash: rec.PayloadHash, ZuoraID: rec.ZuoraID, ZuoraNumber: rec.ZuoraNumber, ZuoraURL: rec.ZuoraURL,
			Detail: "credit memo " + rec.ZuoraNumber + " already exists; a credit never changes"}, nil
	}
	c, err := r.db.GetCredit(ctx, rec.EntityID)
	if errors.Is(err, engine.ErrNotFound) {
		return worker.Result{}, worker.Terminal{Err: fmt.Errorf("credit %s does not exist", rec.EntityID)}
	}
	if err != nil {
		return worker.Result{}, err
	}
	if !r.cfg.Enabled(SwitchCustomers) {
		return worker.Result{Skipped: ReasonSwitchedOffCustomers}, nil
	}
	acct, ok, err := r.billingAccount(ctx, c.CustomerID)
	if err != nil {
		return worker.Result{}, err
	}
	if !ok {
		return worker.Result{Wait: 30 * r.cfg.DependencyWait, WaitReason: fmt.Sprintf("customer %q has no Zuora account yet (it is created with the customer's first billable subscription)", c.CustomerID)}, nil
	}
	hash := engine.HashJSON(c)
	done := func(m zuora.CreditMemo, how string) worker.Result {
		return worker.Result{PayloadHash: hash, ZuoraID: m.ID, ZuoraNumber: m.Number, ZuoraURL: r.z.CreditMemoURL(m.ID),
			Detail: fmt.Sprintf("credit memo %s %s: %s %s on account %s (%s)", m.Number, how, c.Amount, c.Currency, acct.ZuoraNumber, m.Status)}
	}
	if s.lookup {
		s.calls++
		for m, err := range r.z.ListCreditMemos(ctx, acct.ZuoraID) {
			if err != nil {
				return worker.Result{}, err
			}
			if strings.Contains(m.Comment, creditMarker(c.ID)) {
				return done(m, "found (an earlier attempt made it)"), nil
			}
		}
	}
	chargeID, err := r.creditCharge(ctx, s, c.Currency)
	if err != nil {
		return worker.Result{}, err
	}
	s.calls++
	m, err := r.z.CreateCreditMemo(ctx, zuora.IdempotencyKey("credit", c.ID), zuora.CreditMemoRequest{AccountID: acct.ZuoraID, AutoPost: true,
		EffectiveDate: c.EffectiveDate, Comment: creditComment(c),
		Charges: []zuora.CreditMemoCharge{{ProductRatePlanChargeID: chargeID, Amount: zuora.NumberFromDecimal(c.Amount)}}})
	if err != nil {
		return worker.Result{}, err
	}
	return done(m, "created"), nil
}

// creditCharge is the product rate plan charge credit memos are made from:
// BILLSYNC_ZUORA_CREDIT_CHARGE_ID, or the one billsync created (its id kept
// in the settings), or a new one: a product (SKU CreditChargeSKU) with one
// rate plan and a one-time flat-fee charge at 0 (the memo carries the
// amount). An earlier product with that SKU is adopted, so a lost answer
// creates nothing twice.
func (r *Reconcilers) creditCharge(ctx context.Context, s *session, currency string) (string, error) {
	if r.cfg.CreditChargeID != "" {
		return r.cfg.CreditChargeID, nil
	}
	creditChargeMu.Lock()
	defer creditChargeMu.Unlock()
	settings, err := r.db.Settings(ctx)
	if err != nil {
		return "", err
	}
	if id := settings[settingCreditCharge]; id != "" {
		return id, nil
	}
	keep := func(id string) (string, error) { return id, r.db.SetSetting(ctx, settingCreditCharge, id) }
	s.calls++
	p, err := r.z.GetCatalogProduct(ctx, CreditChargeSKU)
	productID := p.ID
	switch {
	case zuora.IsNotFound(err):
		s.calls++
		productID, err = r.z.CreateProduct(ctx, zuora.IdempotencyKey("credit-product"), zuora.Product{Name: "billsync credits", SKU: CreditChargeSKU,
			Category: "Miscellaneous Products", Description: "Credits granted through billsync (credit memos are made from its charge)",
			EffectiveStartDate: catalogDay, EffectiveEndDate: farFuture, CustomFields: map[string]any{r.cfg.IDField: CreditChargeSKU}})
		if err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		for rp, err := range r.z.ListProductRatePlans(ctx, productID) {
			if err != nil {
				return "", err
			}
			for _, ch := range rp.ProductRatePlanCharges {
				return keep(ch.ID)
			}
		}
	}
	s.calls++
	rpID, err := r.z.CreateProductRatePlan(ctx, zuora.IdempotencyKey("credit-rate-plan", productID), zuora.ProductRatePlan{ProductID: productID,
		Name: "Credits", EffectiveStartDate: catalogDay, EffectiveEndDate: farFuture, ActiveCurrencies: []string{currency},
		CustomFields: map[string]any{r.cfg.IDField: CreditChargeSKU}})
	if err != nil {
		return "", err
	}
	s.calls++
	chID, err := r.z.CreateProductRatePlanCharge(ctx, zuora.IdempotencyKey("credit-charge", rpID), zuora.ProductRatePlanCharge{ProductRatePlanID: rpID,
		Name: "Credit", ChargeType: zuora.ChargeTypeOneTime, ChargeModel: zuora.ChargeModelFlatFee, BillCycleType: zuora.BillCycleDefaultFromCustomer,
		BillingPeriod: "Month",
		TriggerEvent:  zuora.TriggerContractEffective, CustomFields: map[string]any{r.cfg.IDField: CreditChargeSKU},
		ProductRatePlanChargeTierData: &zuora.ChargeTierData{ProductRatePlanChargeTier: []zuora.ChargeTier{{Currency: currency, Price: "0"}}}})
	if err != nil {
		return "", err
	}
	return keep(chID)
}
