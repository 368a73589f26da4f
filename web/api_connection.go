package web

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/engine/connection"
)

// ConnectionService keeps the Zuora connection entered on the admin page
// (*connection.Manager); the API reads and changes the same settings.
type ConnectionService interface {
	Status(ctx context.Context) (connection.Status, error)
	Save(ctx context.Context, in connection.Input) (connection.Report, error)
	Forget(ctx context.Context) (string, error)
}

func (s *Server) registerConnection(api *gin.RouterGroup) {
	api.GET("/zuora/connection", s.getConnection)
	api.PUT("/zuora/connection", s.putConnection)
	api.DELETE("/zuora/connection", s.deleteConnection)
}

// getConnection answers the connection in use and what is stored, never the secret.
func (s *Server) getConnection(c *gin.Context) {
	st, err := s.opts.Connection.Status(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// putConnection checks the connection against Zuora, then stores it (the
// secret sealed) and switches the running client to it: 422 when Zuora
// refuses (nothing stored), 409 when the environment configures the
// connection or no BILLSYNC_SECRET_KEY is set.
func (s *Server) putConnection(c *gin.Context) {
	var in connection.Input
	if !decodeJSON(c, &in) {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 60*time.Second)
	defer cancel()
	rep, err := s.opts.Connection.Save(ctx, in)
	if err != nil {
		writeError(c, err)
		return
	}
	st, err := s.opts.Connection.Status(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	if s.opts.Kick != nil {
		s.opts.Kick()
	}
	c.JSON(http.StatusOK, gin.H{"report": rep, "connection": st})
}

// deleteConnection forgets the stored connection (the built-in simulator again).
func (s *Server) deleteConnection(c *gin.Context) {
	msg, err := s.opts.Connection.Forget(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	st, err := s.opts.Connection.Status(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": msg, "connection": st})
}
