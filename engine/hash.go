package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// HashJSON returns the hex SHA-256 of v's JSON encoding. Maps are encoded with
// sorted keys and decimals in their shortest form, so equal content hashes equal.
func HashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("engine: unhashable value: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ContentHash identifies the plan's desired definition (ids, fields, periods, charges),
// independent of timestamps, revision and archive state.
func (p Plan) ContentHash() string {
	c := p
	c.Revision, c.ArchivedAt = 0, nil
	c.CreatedAt, c.UpdatedAt = zeroTime, zeroTime
	c.BillingPeriods = nil
	for _, bp := range p.ActivePeriods() {
		bp.ArchivedAt = nil
		var charges []Charge
		for _, ch := range bp.Charges {
			if ch.ArchivedAt != nil {
				continue
			}
			charges = append(charges, ch)
		}
		bp.Charges = charges
		c.BillingPeriods = append(c.BillingPeriods, bp)
	}
	return HashJSON(c)
}

// ContentHash identifies the customer's desired state.
func (c Customer) ContentHash() string {
	x := c
	x.Revision, x.ArchivedAt = 0, nil
	x.CreatedAt, x.UpdatedAt = zeroTime, zeroTime
	return HashJSON(x)
}

// ContentHash identifies the subscription's desired state.
func (s Subscription) ContentHash() string {
	x := s
	x.Revision = 0
	x.CreatedAt, x.UpdatedAt = zeroTime, zeroTime
	x.AddOns = append([]AddOn(nil), s.AddOns...)
	sort.Slice(x.AddOns, func(i, j int) bool { return x.AddOns[i].PlanID < x.AddOns[j].PlanID })
	if len(x.ChargeQuantities) == 0 {
		x.ChargeQuantities = nil
	}
	return HashJSON(x)
}
