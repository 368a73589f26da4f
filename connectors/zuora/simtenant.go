package zuora

import "github.com/billsync/billsync/connectors/zuora/zuorasim"

// SimTenant is a simulator tenant set up the way billsync's setup
// instructions tell an admin to set up a real one: a fresh tenant, the
// custom fields of RequiredCustomFields(idField), and the given units of
// measure. serve's built-in simulator, the tests and the bench start with it.
func SimTenant(idField string, units ...string) zuorasim.Tenant {
	t := zuorasim.FreshTenant()
	for _, f := range RequiredCustomFields(idField) {
		t.Define(f.Object, zuorasim.CustomField{Name: f.Name, Type: f.Type, Length: f.Length})
	}
	// The back-link field, as the README says to create it with BILLSYNC_PUBLIC_URL.
	for _, o := range URLFieldObjects {
		t.Define(o, zuorasim.CustomField{Name: URLField, Type: "text", Length: IDFieldLength})
	}
	t.AddUnits(units...)
	return t
}
