package web

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

//go:embed openapi.yaml
var openAPIYAML []byte

var openAPI = sync.OnceValues(func() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
})

// OpenAPI returns the OpenAPI 3.1 description of billsync's API, validated.
// The API tests check every accepted request and every answer against it.
func OpenAPI() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("load web/openapi.yaml: %w", err)
	}
	if err := doc.Validate(openapi3.NewLoader().Context); err != nil {
		return nil, fmt.Errorf("validate web/openapi.yaml: %w", err)
	}
	return doc, nil
}

func (s *Server) openAPIJSON(c *gin.Context) {
	b, err := openAPI()
	if err != nil {
		writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", b)
}
