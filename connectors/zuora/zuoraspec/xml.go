package zuoraspec

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// GET /v1/describe/{object} answers text/xml; the spec describes the
// document as an object whose single property is the root element. The
// decoder turns the XML into that shape, guided by the schema: an element
// whose schema is an array holds one child element per item, scalars are
// converted to the schema's type, elements the schema does not name are
// kept as strings.
func init() {
	openapi3filter.RegisterBodyDecoder("text/xml", decodeXML)
}

type xmlNode struct {
	XMLName  xml.Name
	Children []xmlNode `xml:",any"`
	Text     string    `xml:",chardata"`
}

func decodeXML(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	if schema != nil && schema.Value != nil && schema.Value.Type.Is("string") {
		return string(raw), nil // an error page described as a string
	}
	var root xmlNode
	if err := xml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("xml: %w", err)
	}
	var prop *openapi3.SchemaRef
	if schema != nil && schema.Value != nil {
		prop = schema.Value.Properties[root.XMLName.Local]
	}
	return map[string]any{root.XMLName.Local: xmlValue(root, prop)}, nil
}

func xmlValue(n xmlNode, ref *openapi3.SchemaRef) any {
	var sc *openapi3.Schema
	if ref != nil {
		sc = ref.Value
	}
	if sc != nil && sc.Type.Is("array") {
		out := make([]any, 0, len(n.Children))
		for _, c := range n.Children {
			out = append(out, xmlValue(c, sc.Items))
		}
		return out
	}
	if len(n.Children) == 0 {
		text := strings.TrimSpace(n.Text)
		if sc != nil {
			switch {
			case sc.Type.Is("boolean"):
				if b, err := strconv.ParseBool(text); err == nil {
					return b
				}
			case sc.Type.Is("integer"), sc.Type.Is("number"):
				if f, err := strconv.ParseFloat(text, 64); err == nil {
					return f
				}
			case sc.Type.Is("object"):
				return map[string]any{}
			}
		}
		return text
	}
	out := map[string]any{}
	for _, c := range n.Children {
		var p *openapi3.SchemaRef
		if sc != nil {
			p = sc.Properties[c.XMLName.Local]
		}
		out[c.XMLName.Local] = xmlValue(c, p)
	}
	return out
}
