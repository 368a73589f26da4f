package main

import (
	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine/inbound"
	"github.com/billsync/billsync/engine/outbound"
	ledger "github.com/billsync/billsync/engine/usage"
)

// Connector is what the engine calls on the billing system: each engine
// package declares the part it uses (outbound.Zuora for the reconcilers,
// inbound.Zuora for callouts, pulls and setup, usage.Zuora for the ledger),
// and Connector is their union. The Zuora client is registered here as its
// one implementation; the engine never names the concrete client.
type Connector interface {
	outbound.Zuora
	inbound.Zuora
	ledger.Zuora
}

var _ Connector = (*zuora.Client)(nil)
