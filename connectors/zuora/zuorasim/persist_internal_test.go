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
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			walk(typ.Elem(), path+"[]")
		case reflect.Struct:
			if typ.PkgPath() != "github.com/billsync/billsync/connectors/zuora/zuorasim" {
				return // time.Time and the like marshal themselves
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				if typ.Name() != "state" && !f.IsExported() {
					t.Errorf("%s.%s is unexported: a saved object's fields must be exported (or the object be derived)", path, f.Name)
				}
				if f.Type == reflect.TypeFor[json.Number]() && !strings.Contains(f.Tag.Get("json"), "omitempty") {
					t.Errorf("%s.%s is a json.Number without `json:\",omitempty\"`: an empty one would come back as 0", path, f.Name)
				}
				walk(f.Type, path+"."+f.Name)
			}
		}
	}
	st := reflect.TypeFor[state]()
	for i := range st.NumField() {
		if f := st.Field(i); !derivedFields[f.Name] {
			walk(f.Type, "state."+f.Name)
		}
	}
}
