package zuorasim

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestStateFieldsClassified: the saved state keeps what the simulator holds.
// A json.Number field of a saved object must be tagged omitempty (else an
// empty number comes back as 0), and interfaces are only map[string]any
// values (decoded as request bodies are).
func TestStateFieldsClassified(t *testing.T) {
	t.Parallel()
	seen := map[reflect.Type]bool{}
	// byField: typ is encoded field by field (state, and the structs its
	// fields point to directly, such as state.bill): unexported fields are
	// fine there; anything else goes through encoding/json as it is.
	var walk func(typ reflect.Type, path string, byField bool)
	walk = func(typ reflect.Type, path string, byField bool) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Pointer:
			walk(typ.Elem(), path, byField)
		case reflect.Slice, reflect.Array, reflect.Map:
			walk(typ.Elem(), path+"[]", false)
		case reflect.Struct:
			if typ.PkgPath() != "github.com/billsync/billsync/connectors/zuora/zuorasim" {
				return // time.Time, decimal.Decimal and the like marshal themselves
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				if !byField && !f.IsExported() {
					t.Errorf("%s.%s is unexported: a saved object's fields must be exported (or the object be derived, or pointed to from state directly)", path, f.Name)
				}
				if f.Type == reflect.TypeFor[json.Number]() && !strings.Contains(f.Tag.Get("json"), "omitempty") {
					t.Errorf("%s.%s is a json.Number without `json:\",omitempty\"`: an empty one would come back as 0", path, f.Name)
				}
				walk(f.Type, path+"."+f.Name, byField && f.Type.Kind() == reflect.Pointer)
			}
		}
	}
	st := reflect.TypeFor[state]()
	for i := range st.NumField() {
		if f := st.Field(i); !derivedFields[f.Name] {
			walk(f.Type, "state."+f.Name, f.Type.Kind() == reflect.Pointer)
		}
	}
}
