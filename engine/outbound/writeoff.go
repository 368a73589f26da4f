package outbound

import (
	"fmt"
	"strings"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
)

// processingFor is an order's processingOptions: never bill in the order;
// and, for a cancellation asked to write off (Subscription.WriteOff), write
// off the subscription's unpaid invoices in the same order
// (processingOptions.writeOff with runBilling and collectPayment false, as
// docs.zuora.com "Cancel a subscription and write off all unpaid invoices
// using the REST API" shows). The order is atomic: the write-off happens
// with the cancellation or not at all, so a retry after a lost answer, which
// finds the subscription cancelled and sends no order, writes off nothing
// twice.
func processingFor(sub engine.Subscription, actions []zuora.OrderAction) *zuora.ProcessingOptions {
	if sub.WriteOff {
		for _, a := range actions {
			if a.Type == zuora.OrderActionCancelSubscription {
				return zuora.WriteOffOptions()
			}
		}
	}
	return &zuora.ProcessingOptions{RunBilling: ptr(false)}
}

// writeOffDetail tells what an order wrote off, for the attempt's history.
func writeOffDetail(res zuora.OrderResult) string {
	if len(res.WriteOff) == 0 {
		return ""
	}
	var parts []string
	for _, w := range res.WriteOff {
		if w.Status == "Success" {
			parts = append(parts, fmt.Sprintf("%s written off (%v, credit memo %s)", w.InvoiceNumber, w.Amount, w.WriteOffCreditMemoNumber))
		} else {
			parts = append(parts, fmt.Sprintf("%s not written off: %s", w.InvoiceNumber, w.FailedReason))
		}
	}
	return "; " + strings.Join(parts, ", ")
}
