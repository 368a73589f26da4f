package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/connectors/zuora"
)

// TestREADMEListsEverySetting keeps the README's configuration table true.
func TestREADMEListsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	cfg := DefaultConfig()
	for _, s := range cfg.settings() {
		require.True(t, strings.Contains(readme, "`"+s.env+"`"), "README.md does not document %s", s.env)
		require.True(t, strings.Contains(readme, "`--"+s.flag+"`"), "README.md does not document --%s", s.flag)
	}
	for _, c := range commands() {
		require.True(t, strings.Contains(readme, "billsync "+c.name), "README.md does not mention the %s command", c.name)
	}
}

// TestREADMESetupNamesEveryFieldObject: the README's setup list names every
// object billsync writes its id custom field on (zuora.IDFieldObjects), and
// the simulator tenant example defines it on each.
func TestREADMESetupNamesEveryFieldObject(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	i := strings.Index(readme, "In Zuora, create the text custom field")
	require.Positive(t, i)
	setup := strings.Join(strings.Fields(readme[i:i+400]), " ")
	spelled := map[string]string{"Product": "Product,", "ProductRatePlan": "Product Rate Plan,", "ProductRatePlanCharge": "Product Rate Plan Charge,",
		"Account": "Account,", "Subscription": "Subscription", "RatePlan": "Rate Plan (the subscription's rate plan)"}
	for _, obj := range zuora.IDFieldObjects {
		require.Contains(t, spelled, obj, "add %s to this test and the README", obj)
		require.Contains(t, setup, spelled[obj], "README's setup list omits %s", obj)
		require.Contains(t, readme, `"`+obj+`": [{"name": "BillsyncId__c"`, "README's tenant example omits %s", obj)
	}
}
