package zuora

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// ---- CRUD catalog writes and reads (/v1/object/..., PascalCase, §4a) ----
//
// Empty fields are omitted from write bodies, so an update never blanks a
// field by accident (clearing a value is not supported by this client).
// Read-only fields (Id, CreatedDate, UpdatedDate) are never sent.

// Product is a catalog product as the CRUD API spells it.
type Product struct {
	ID                  string `json:"Id,omitempty"`
	Name                string `json:"Name,omitempty"`
	SKU                 string `json:"SKU,omitempty"`
	ProductNumber       string `json:"ProductNumber,omitempty"`
	Category            string `json:"Category,omitempty"`
	Description         string `json:"Description,omitempty"`
	EffectiveStartDate  string `json:"EffectiveStartDate,omitempty"` // YYYY-MM-DD
	EffectiveEndDate    string `json:"EffectiveEndDate,omitempty"`   // YYYY-MM-DD
	AllowFeatureChanges *bool  `json:"AllowFeatureChanges,omitempty"`
	CreatedDate         string `json:"CreatedDate,omitempty"`
	UpdatedDate         string `json:"UpdatedDate,omitempty"`
	// CustomFields are the product's *__c fields (top-level keys on the wire).
	CustomFields map[string]any `json:"-"`
}

type productAlias Product

// MarshalJSON adds the custom fields at the top level.
func (p Product) MarshalJSON() ([]byte, error) {
	return marshalWithCustom(productAlias(p), p.CustomFields)
}

// UnmarshalJSON collects the custom fields.
func (p *Product) UnmarshalJSON(b []byte) error {
	var a productAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = Product(a)
	p.CustomFields = cf
	return nil
}

func (p Product) forWrite() Product {
	p.ID, p.CreatedDate, p.UpdatedDate = "", "", ""
	return p
}

// ProductRatePlan is a catalog rate plan (billing period) as the CRUD API
// spells it.
type ProductRatePlan struct {
	ID                    string         `json:"Id,omitempty"`
	ProductID             string         `json:"ProductId,omitempty"`
	Name                  string         `json:"Name,omitempty"`
	Description           string         `json:"Description,omitempty"`
	EffectiveStartDate    string         `json:"EffectiveStartDate,omitempty"`
	EffectiveEndDate      string         `json:"EffectiveEndDate,omitempty"`
	ProductRatePlanNumber string         `json:"ProductRatePlanNumber,omitempty"`
	ActiveCurrencies      []string       `json:"ActiveCurrencies,omitempty"`
	Grade                 Number         `json:"Grade,omitempty"`
	CreatedDate           string         `json:"CreatedDate,omitempty"`
	UpdatedDate           string         `json:"UpdatedDate,omitempty"`
	CustomFields          map[string]any `json:"-"`
}

type productRatePlanAlias ProductRatePlan

// MarshalJSON adds the custom fields at the top level.
func (p ProductRatePlan) MarshalJSON() ([]byte, error) {
	return marshalWithCustom(productRatePlanAlias(p), p.CustomFields)
}

// UnmarshalJSON collects the custom fields.
func (p *ProductRatePlan) UnmarshalJSON(b []byte) error {
	var a productRatePlanAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = ProductRatePlan(a)
	p.CustomFields = cf
	return nil
}

func (p ProductRatePlan) forWrite() ProductRatePlan {
	p.ID, p.CreatedDate, p.UpdatedDate = "", "", ""
	return p
}

// Charge types, models and other CRUD enum spellings (§4a).
const (
	ChargeTypeOneTime   = "OneTime"
	ChargeTypeRecurring = "Recurring"
	ChargeTypeUsage     = "Usage"

	ChargeModelFlatFee           = "Flat Fee Pricing"
	ChargeModelPerUnit           = "Per Unit Pricing"
	ChargeModelOverage           = "Overage Pricing"
	ChargeModelTiered            = "Tiered Pricing"
	ChargeModelTieredWithOverage = "Tiered with Overage Pricing"
	ChargeModelVolume            = "Volume Pricing"
	ChargeModelDiscountFixed     = "Discount-Fixed Amount"
	ChargeModelDiscountPercent   = "Discount-Percentage"

	PriceFormatFlatFee = "Flat Fee"
	PriceFormatPerUnit = "Per Unit"

	BillingTimingInAdvance = "In Advance"
	BillingTimingInArrears = "In Arrears"

	TriggerContractEffective     = "ContractEffective"
	TriggerServiceActivation     = "ServiceActivation"
	TriggerCustomerAcceptance    = "CustomerAcceptance"
	BillCycleDefaultFromCustomer = "DefaultFromCustomer"
)

// ProductRatePlanCharge is a catalog charge as the CRUD API spells it.
// Create and update both send the full definition: Zuora's PUT requires the
// same core fields as the POST (§4a), tier data included.
type ProductRatePlanCharge struct {
	ID                                string `json:"Id,omitempty"`
	ProductRatePlanID                 string `json:"ProductRatePlanId,omitempty"`
	Name                              string `json:"Name,omitempty"`
	Description                       string `json:"Description,omitempty"`
	ChargeType                        string `json:"ChargeType,omitempty"`
	ChargeModel                       string `json:"ChargeModel,omitempty"`
	BillCycleType                     string `json:"BillCycleType,omitempty"`
	BillCycleDay                      *int   `json:"BillCycleDay,omitempty"`
	BillingPeriod                     string `json:"BillingPeriod,omitempty"`
	SpecificBillingPeriod             *int   `json:"SpecificBillingPeriod,omitempty"`
	BillingPeriodAlignment            string `json:"BillingPeriodAlignment,omitempty"`
	BillingTiming                     string `json:"BillingTiming,omitempty"`
	TriggerEvent                      string `json:"TriggerEvent,omitempty"`
	EndDateCondition                  string `json:"EndDateCondition,omitempty"`
	UpToPeriods                       *int   `json:"UpToPeriods,omitempty"`
	UpToPeriodsType                   string `json:"UpToPeriodsType,omitempty"`
	ListPriceBase                     string `json:"ListPriceBase,omitempty"`
	UOM                               string `json:"UOM,omitempty"`
	DefaultQuantity                   Number `json:"DefaultQuantity,omitempty"`
	IncludedUnits                     Number `json:"IncludedUnits,omitempty"`
	MinQuantity                       Number `json:"MinQuantity,omitempty"`
	MaxQuantity                       Number `json:"MaxQuantity,omitempty"`
	Taxable                           *bool  `json:"Taxable,omitempty"`
	TaxCode                           string `json:"TaxCode,omitempty"`
	TaxMode                           string `json:"TaxMode,omitempty"`
	AccountingCode                    string `json:"AccountingCode,omitempty"`
	DeferredRevenueAccount            string `json:"DeferredRevenueAccount,omitempty"`
	RecognizedRevenueAccount          string `json:"RecognizedRevenueAccount,omitempty"`
	ProductRatePlanChargeNumber       string `json:"ProductRatePlanChargeNumber,omitempty"`
	UseDiscountSpecificAccountingCode bool   `json:"UseDiscountSpecificAccountingCode"`
	// DiscountLevel (rateplan, subscription, account) and ApplyDiscountTo
	// (ONETIME, RECURRING, USAGE and their sums such as RECURRINGUSAGE) are
	// the scope of a discount charge.
	DiscountLevel                 string          `json:"DiscountLevel,omitempty"`
	ApplyDiscountTo               string          `json:"ApplyDiscountTo,omitempty"`
	ProductRatePlanChargeTierData *ChargeTierData `json:"ProductRatePlanChargeTierData,omitempty"`
	CreatedDate                   string          `json:"CreatedDate,omitempty"`
	UpdatedDate                   string          `json:"UpdatedDate,omitempty"`
	CustomFields                  map[string]any  `json:"-"`
}

// ChargeTierData wraps a charge's prices: one tier per currency for flat
// fee and per unit, several per currency for tiered and volume (§4a).
type ChargeTierData struct {
	ProductRatePlanChargeTier []ChargeTier `json:"ProductRatePlanChargeTier"`
}

// ChargeTier is one price point of a catalog charge.
type ChargeTier struct {
	Currency           string `json:"Currency,omitempty"`
	Price              Number `json:"Price,omitempty"`
	StartingUnit       Number `json:"StartingUnit,omitempty"`
	EndingUnit         Number `json:"EndingUnit,omitempty"`
	PriceFormat        string `json:"PriceFormat,omitempty"`
	IsOveragePrice     *bool  `json:"IsOveragePrice,omitempty"`
	DiscountAmount     Number `json:"DiscountAmount,omitempty"`
	DiscountPercentage Number `json:"DiscountPercentage,omitempty"`
}

// ChargeTierUpdate changes one existing tier
// (PUT /v1/object/product-rate-plan-charge-tier/{id}).
type ChargeTierUpdate struct {
	Price              Number `json:"Price,omitempty"`
	PriceFormat        string `json:"PriceFormat,omitempty"`
	DiscountAmount     Number `json:"DiscountAmount,omitempty"`
	DiscountPercentage Number `json:"DiscountPercentage,omitempty"`
}

type productRatePlanChargeAlias ProductRatePlanCharge

// MarshalJSON adds the custom fields at the top level.
func (p ProductRatePlanCharge) MarshalJSON() ([]byte, error) {
	return marshalWithCustom(productRatePlanChargeAlias(p), p.CustomFields)
}

// UnmarshalJSON collects the custom fields.
func (p *ProductRatePlanCharge) UnmarshalJSON(b []byte) error {
	var a productRatePlanChargeAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = ProductRatePlanCharge(a)
	p.CustomFields = cf
	return nil
}

func (p ProductRatePlanCharge) forWrite() ProductRatePlanCharge {
	p.ID, p.CreatedDate, p.UpdatedDate = "", "", ""
	return p
}

// crudResult is {Id, Success} (create/update) or {id, success} (delete).
type crudResult struct {
	ID        string `json:"Id"`
	IDLC      string `json:"id"`
	Success   *bool  `json:"Success"`
	SuccessLC *bool  `json:"success"`
}

func (r crudResult) id() string {
	if r.ID != "" {
		return r.ID
	}
	return r.IDLC
}

// crudCreate posts a CRUD object and returns its new id.
func (c *Client) crudCreate(ctx context.Context, object, idemKey string, body any) (string, error) {
	op := "POST /v1/object/" + object
	if idemKey == "" {
		return "", fmt.Errorf("zuora %s: an idempotency key is required", op)
	}
	var res crudResult
	resp, err := c.doJSON(ctx, call{op: op, method: http.MethodPost, path: "/v1/object/" + object, body: body, idemKey: idemKey}, &res)
	if err != nil {
		return "", err
	}
	if res.id() == "" {
		return "", &Error{Op: op, HTTPStatus: resp.status, Code: codeDecode, Message: "create answered without an Id", RequestID: resp.requestID}
	}
	return res.id(), nil
}

func (c *Client) crudUpdate(ctx context.Context, object, id string, body any) error {
	if id == "" {
		return fmt.Errorf("zuora PUT /v1/object/%s/{id}: id is required", object)
	}
	_, err := c.doJSON(ctx, call{op: "PUT /v1/object/" + object + "/{id}", method: http.MethodPut, path: "/v1/object/" + object + "/" + seg(id), body: body}, nil)
	return err
}

func (c *Client) crudGet(ctx context.Context, object, id string, out any) error {
	if id == "" {
		return fmt.Errorf("zuora GET /v1/object/%s/{id}: id is required", object)
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/object/" + object + "/{id}", method: http.MethodGet, path: "/v1/object/" + object + "/" + seg(id)}, out)
	return err
}

func (c *Client) crudDelete(ctx context.Context, object, id string) error {
	if id == "" {
		return fmt.Errorf("zuora DELETE /v1/object/%s/{id}: id is required", object)
	}
	_, err := c.doJSON(ctx, call{op: "DELETE /v1/object/" + object + "/{id}", method: http.MethodDelete, path: "/v1/object/" + object + "/" + seg(id)}, nil)
	return err
}

// CreateProduct creates a product (POST /v1/object/product) and returns its id.
func (c *Client) CreateProduct(ctx context.Context, idempotencyKey string, p Product) (string, error) {
	return c.crudCreate(ctx, "product", idempotencyKey, p.forWrite())
}

// UpdateProduct updates a product (PUT /v1/object/product/{id}).
func (c *Client) UpdateProduct(ctx context.Context, id string, p Product) error {
	return c.crudUpdate(ctx, "product", id, p.forWrite())
}

// GetProduct reads a product (GET /v1/object/product/{id}).
func (c *Client) GetProduct(ctx context.Context, id string) (Product, error) {
	var p Product
	err := c.crudGet(ctx, "product", id, &p)
	return p, err
}

// DeleteProduct deletes a product (DELETE /v1/object/product/{id}).
func (c *Client) DeleteProduct(ctx context.Context, id string) error {
	return c.crudDelete(ctx, "product", id)
}

// CreateProductRatePlan creates a rate plan and returns its id.
func (c *Client) CreateProductRatePlan(ctx context.Context, idempotencyKey string, p ProductRatePlan) (string, error) {
	return c.crudCreate(ctx, "product-rate-plan", idempotencyKey, p.forWrite())
}

// UpdateProductRatePlan updates a rate plan.
func (c *Client) UpdateProductRatePlan(ctx context.Context, id string, p ProductRatePlan) error {
	return c.crudUpdate(ctx, "product-rate-plan", id, p.forWrite())
}

// GetProductRatePlan reads a rate plan.
func (c *Client) GetProductRatePlan(ctx context.Context, id string) (ProductRatePlan, error) {
	var p ProductRatePlan
	err := c.crudGet(ctx, "product-rate-plan", id, &p)
	return p, err
}

// DeleteProductRatePlan deletes a rate plan.
func (c *Client) DeleteProductRatePlan(ctx context.Context, id string) error {
	return c.crudDelete(ctx, "product-rate-plan", id)
}

// CreateProductRatePlanCharge creates a charge with its tiers and returns its id.
func (c *Client) CreateProductRatePlanCharge(ctx context.Context, idempotencyKey string, p ProductRatePlanCharge) (string, error) {
	return c.crudCreate(ctx, "product-rate-plan-charge", idempotencyKey, p.forWrite())
}

// UpdateProductRatePlanCharge updates a charge (send the full definition,
// tier data included).
func (c *Client) UpdateProductRatePlanCharge(ctx context.Context, id string, p ProductRatePlanCharge) error {
	return c.crudUpdate(ctx, "product-rate-plan-charge", id, p.forWrite())
}

// GetProductRatePlanCharge reads a charge (the CRUD read has no tier data;
// use ListProductRatePlans for prices).
func (c *Client) GetProductRatePlanCharge(ctx context.Context, id string) (ProductRatePlanCharge, error) {
	var p ProductRatePlanCharge
	err := c.crudGet(ctx, "product-rate-plan-charge", id, &p)
	return p, err
}

// DeleteProductRatePlanCharge deletes a charge.
func (c *Client) DeleteProductRatePlanCharge(ctx context.Context, id string) error {
	return c.crudDelete(ctx, "product-rate-plan-charge", id)
}

// UpdateChargeTier changes one tier's price
// (PUT /v1/object/product-rate-plan-charge-tier/{id}).
func (c *Client) UpdateChargeTier(ctx context.Context, id string, t ChargeTierUpdate) error {
	return c.crudUpdate(ctx, "product-rate-plan-charge-tier", id, t)
}

// ---- REST catalog reads (camelCase, §4c) ----

// CatalogProduct is a product from GET /v1/catalog/products.
type CatalogProduct struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	SKU                string `json:"sku"`
	ProductNumber      string `json:"productNumber"`
	Category           string `json:"category"`
	Description        string `json:"description"`
	EffectiveStartDate string `json:"effectiveStartDate"`
	EffectiveEndDate   string `json:"effectiveEndDate"`
	// ProductRatePlans is set when Zuora embedded the plans (Zuora-Version
	// before 230.0; at most 300 plans); otherwise ProductRatePlansURL is.
	// RatePlansOf handles both.
	ProductRatePlans    []CatalogRatePlan `json:"-"`
	ProductRatePlansURL string            `json:"-"`
	CustomFields        map[string]any    `json:"-"`
}

type catalogProductAlias CatalogProduct

// UnmarshalJSON accepts productRatePlans as an array or a URL string.
func (p *CatalogProduct) UnmarshalJSON(b []byte) error {
	var a struct {
		catalogProductAlias
		ProductRatePlans json.RawMessage `json:"productRatePlans"`
	}
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = CatalogProduct(a.catalogProductAlias)
	p.CustomFields = cf
	raw := a.ProductRatePlans
	if len(raw) > 0 {
		switch raw[0] {
		case '"':
			if err := json.Unmarshal(raw, &p.ProductRatePlansURL); err != nil {
				return err
			}
		case '[':
			p.ProductRatePlans = []CatalogRatePlan{}
			if err := json.Unmarshal(raw, &p.ProductRatePlans); err != nil {
				return err
			}
		}
	}
	return nil
}

// CatalogRatePlan is a rate plan from the REST catalog reads.
type CatalogRatePlan struct {
	ID                     string          `json:"id"`
	Name                   string          `json:"name"`
	Description            string          `json:"description"`
	Status                 string          `json:"status"`
	EffectiveStartDate     string          `json:"effectiveStartDate"`
	EffectiveEndDate       string          `json:"effectiveEndDate"`
	ProductRatePlanNumber  string          `json:"productRatePlanNumber"`
	Grade                  Number          `json:"grade"`
	ProductRatePlanCharges []CatalogCharge `json:"productRatePlanCharges"`
	CustomFields           map[string]any  `json:"-"`
}

type catalogRatePlanAlias CatalogRatePlan

// UnmarshalJSON collects the custom fields.
func (p *CatalogRatePlan) UnmarshalJSON(b []byte) error {
	var a catalogRatePlanAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = CatalogRatePlan(a)
	p.CustomFields = cf
	return nil
}

// CatalogCharge is a charge from the REST catalog reads. Its enums use the
// REST spellings (model "FlatFee"/"PerUnit"/"Tiered", billingTiming
// "IN_ADVANCE", listPriceBase "Per_Billing_Period", §0).
type CatalogCharge struct {
	ID                          string           `json:"id"`
	Name                        string           `json:"name"`
	Description                 string           `json:"description"`
	Type                        string           `json:"type"`
	Model                       string           `json:"model"`
	UOM                         string           `json:"uom"`
	BillingDay                  string           `json:"billingDay"`
	BillingPeriod               string           `json:"billingPeriod"`
	BillingPeriodAlignment      string           `json:"billingPeriodAlignment"`
	BillingTiming               string           `json:"billingTiming"`
	TriggerEvent                string           `json:"triggerEvent"`
	EndDateCondition            string           `json:"endDateCondition"`
	ListPriceBase               string           `json:"listPriceBase"`
	DefaultQuantity             Number           `json:"defaultQuantity"`
	IncludedUnits               Number           `json:"includedUnits"`
	ProductRatePlanChargeNumber string           `json:"productRatePlanChargeNumber"`
	Pricing                     []CatalogPricing `json:"pricing"`
	Taxable                     bool             `json:"taxable"`
	TaxCode                     string           `json:"taxCode"`
	TaxMode                     string           `json:"taxMode"`
	CustomFields                map[string]any   `json:"-"`
}

type catalogChargeAlias CatalogCharge

// UnmarshalJSON collects the custom fields.
func (p *CatalogCharge) UnmarshalJSON(b []byte) error {
	var a catalogChargeAlias
	cf, err := unmarshalWithCustom(b, &a)
	if err != nil {
		return err
	}
	*p = CatalogCharge(a)
	p.CustomFields = cf
	return nil
}

// CatalogPricing is one currency's price of a catalog charge.
type CatalogPricing struct {
	Currency           string        `json:"currency"`
	Price              Number        `json:"price"`
	Tiers              []CatalogTier `json:"tiers"`
	IncludedUnits      Number        `json:"includedUnits"`
	OveragePrice       Number        `json:"overagePrice"`
	DiscountAmount     Number        `json:"discountAmount"`
	DiscountPercentage Number        `json:"discountPercentage"`
}

// CatalogTier is one tier of a catalog price.
type CatalogTier struct {
	Tier         int    `json:"tier"`
	StartingUnit Number `json:"startingUnit"`
	EndingUnit   Number `json:"endingUnit"`
	Price        Number `json:"price"`
	PriceFormat  string `json:"priceFormat"`
}

// ListProducts iterates the whole catalog (GET /v1/catalog/products, 40 per
// page, newest update first).
func (c *Client) ListProducts(ctx context.Context) iter.Seq2[CatalogProduct, error] {
	q := url.Values{"page": {"1"}, "pageSize": {strconv.Itoa(classicPageSize)}}
	return listNextPage(ctx, c, "GET /v1/catalog/products", "/v1/catalog/products", q,
		func(b []byte) ([]CatalogProduct, string, error) {
			var page struct {
				Products []CatalogProduct `json:"products"`
				NextPage string           `json:"nextPage"`
			}
			err := json.Unmarshal(b, &page)
			return page.Products, page.NextPage, err
		})
}

// GetCatalogProduct reads one product by id, SKU or product number
// (GET /v1/catalog/products/{product-key}).
func (c *Client) GetCatalogProduct(ctx context.Context, key string) (CatalogProduct, error) {
	var p CatalogProduct
	if key == "" {
		return p, fmt.Errorf("zuora GET /v1/catalog/products/{product-key}: key is required")
	}
	_, err := c.doJSON(ctx, call{op: "GET /v1/catalog/products/{product-key}", method: http.MethodGet,
		path: "/v1/catalog/products/" + seg(key)}, &p)
	return p, err
}

// ListProductRatePlans iterates a product's rate plans with their charges
// and prices (GET /v1/products/{product-key}/product-rate-plans).
func (c *Client) ListProductRatePlans(ctx context.Context, productKey string) iter.Seq2[CatalogRatePlan, error] {
	op := "GET /v1/products/{product-key}/product-rate-plans"
	if productKey == "" {
		return func(yield func(CatalogRatePlan, error) bool) {
			yield(CatalogRatePlan{}, fmt.Errorf("zuora %s: product key is required", op))
		}
	}
	q := url.Values{"page": {"1"}, "pageSize": {strconv.Itoa(classicPageSize)}}
	return listNextPage(ctx, c, op, "/v1/products/"+seg(productKey)+"/product-rate-plans", q,
		func(b []byte) ([]CatalogRatePlan, string, error) {
			var page struct {
				ProductRatePlans []CatalogRatePlan `json:"productRatePlans"`
				NextPage         string            `json:"nextPage"`
			}
			err := json.Unmarshal(b, &page)
			return page.ProductRatePlans, page.NextPage, err
		})
}

// RatePlansOf iterates p's rate plans: the embedded ones when Zuora embedded
// them, otherwise those listed by ListProductRatePlans (the URL Zuora returns
// instead, /v1/rateplan/{id}/productRatePlan, is not in the published spec).
func (c *Client) RatePlansOf(ctx context.Context, p CatalogProduct) iter.Seq2[CatalogRatePlan, error] {
	if p.ProductRatePlans != nil {
		return func(yield func(CatalogRatePlan, error) bool) {
			for _, rp := range p.ProductRatePlans {
				if !yield(rp, nil) {
					return
				}
			}
		}
	}
	return c.ListProductRatePlans(ctx, p.ID)
}
