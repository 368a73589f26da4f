// Package mappings stores the links between billsync ids and Zuora ids and
// numbers, per kind, unique both ways.
package mappings

// Kind is what a mapping links.
type Kind string

const (
	// Account links a customer to a Zuora account: local id "customerID/zuoraAccountID",
	// parent id the customer id. A customer may have several; an account has one customer.
	Account Kind = "account"
	// Product links a plan or add-on to a Zuora product.
	Product Kind = "product"
	// RatePlan links a billing period ("planID/periodID") to a product rate plan.
	RatePlan Kind = "rate_plan"
	// Charge links a charge ("planID/chargeID") to a product rate plan charge.
	Charge Kind = "charge"
	// Subscription links a subscription to a Zuora subscription (number is the stable key).
	Subscription Kind = "subscription"
	// SubscriptionRatePlan links a subscription's plan or add-on ("subID/planID") to the subscription's rate plan.
	SubscriptionRatePlan Kind = "subscription_rate_plan"
	// SubscriptionCharge links a subscription's charge ("subID/planID/chargeID") to its charge number.
	SubscriptionCharge Kind = "subscription_charge"
)

// Kinds lists every kind.
var Kinds = []Kind{Account, Product, RatePlan, Charge, Subscription, SubscriptionRatePlan, SubscriptionCharge}

// Key joins the parts of a nested local id.
func Key(parts ...string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "/"
		}
		out += p
	}
	return out
}
