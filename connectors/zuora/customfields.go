package zuora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// CustomFieldSuffix ends every Zuora custom field name (case-sensitive, §0).
const CustomFieldSuffix = "__c"

// IsCustomField reports whether name is a Zuora custom field name.
func IsCustomField(name string) bool { return strings.HasSuffix(name, CustomFieldSuffix) }

// marshalWithCustom marshals v (normally an alias of the caller's type, so
// its own MarshalJSON is not re-entered) and adds the custom fields as
// top-level keys, which is where CRUD bodies, POST/PUT /v1/accounts and the
// catalog/subscription reads keep them (§0).
func marshalWithCustom(v any, custom map[string]any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(custom) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(custom))
	for k := range custom {
		if !IsCustomField(k) {
			return nil, fmt.Errorf("zuora: custom field %q must end in %s", k, CustomFieldSuffix)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(bytes.TrimRight(b[:len(b)-1], " \n"))
	first := bytes.Equal(bytes.TrimSpace(b), []byte("{}"))
	for _, k := range keys {
		vb, err := json.Marshal(custom[k])
		if err != nil {
			return nil, fmt.Errorf("zuora: custom field %s: %w", k, err)
		}
		kb, _ := json.Marshal(k)
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// customFieldsOf returns the top-level custom fields of a JSON object (nil
// when there are none). Values keep their JSON types (json.Number for numbers).
func customFieldsOf(b []byte) (map[string]any, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	var out map[string]any
	for k, v := range raw {
		if !IsCustomField(k) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var val any
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("zuora: custom field %s: %w", k, err)
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = val
	}
	return out, nil
}

// unmarshalWithCustom decodes b into v (an alias pointer) and returns its
// top-level custom fields.
func unmarshalWithCustom(b []byte, v any) (map[string]any, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	return customFieldsOf(b)
}
