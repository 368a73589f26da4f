package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/connection"
	"github.com/billsync/billsync/engine/inbound"
)

// ConnectionSettings keeps the Zuora connection entered on the settings
// page (*connection.Manager).
type ConnectionSettings interface {
	Status(ctx context.Context) (connection.Status, error)
	Save(ctx context.Context, in connection.Input) (connection.Report, error)
	Forget(ctx context.Context) (string, error)
	Secret() string
}

// Callouts sets up and removes billsync's callouts in the tenant (*inbound.Service).
type Callouts interface {
	SetupCallouts(ctx context.Context, in inbound.CalloutSetup) (inbound.SetupReport, error)
	RemoveCallouts(ctx context.Context) (inbound.SetupReport, error)
}

// connReport is what a connection action did, shown on the settings page.
type connReport struct {
	OK     bool
	Action string
	Lines  []string
}

// connForm is what was entered (never the secret).
type connForm struct {
	BaseURL, ClientID, PublicURL string
	Errors                       map[string]string
}

// currentConn is the connection in use: the startup one, or the settings'.
func (a *Admin) currentConn(ctx context.Context) (connView, *connection.Status, error) {
	c := a.opts.Connection
	v := connView{Configured: a.opts.Zuora != nil, Environment: c.Environment, BaseURL: c.BaseURL}
	if c.LastCall != nil {
		v.LastCall, v.LastOp = c.LastCall()
	}
	if c.Paused != nil {
		v.Paused, v.PauseCause = c.Paused()
	}
	v.SimulatorURL = c.SimulatorURL
	if c.World != nil {
		v.World = c.World()
	}
	if a.opts.Settings == nil {
		return v, nil, nil
	}
	st, err := a.opts.Settings.Status(ctx)
	if err != nil {
		return v, nil, err
	}
	if v.SimulatorURL == "" || st.Source == connection.SourceSettings {
		v.BaseURL = st.BaseURL // the built-in simulator shows where people reach it
	}
	if st.Source == connection.SourceSettings {
		v.SimulatorURL = "" // a connection entered on the settings page replaced it
		v.Environment = "custom base URL"
		if e, ok := zuora.EnvironmentFor(st.BaseURL); ok {
			v.Environment = e.Name
		}
		v.Environment += " (entered on the settings page)"
	}
	return v, &st, nil
}

type connectionData struct {
	Conn     connView
	Status   *connection.Status
	Form     connForm
	Report   *connReport
	Confirm  bool // Remove integration asks first
	Callouts bool // Set up callouts / Remove integration are available
	CanCheck bool
	Webhook  bool // BILLSYNC_WEBHOOK_PASSWORD is set
}

func (a *Admin) connectionData(ctx context.Context, f connForm) (connectionData, error) {
	v, st, err := a.currentConn(ctx)
	if err != nil {
		return connectionData{}, err
	}
	d := connectionData{Conn: v, Status: st, Form: f, Callouts: a.opts.Callouts != nil, CanCheck: a.opts.Tenant != nil,
		Webhook: a.opts.CalloutSetup.Password != ""}
	if d.Form.BaseURL == "" && st != nil && st.Source != connection.SourceEnvironment && st.Source != connection.SourceBuiltin {
		d.Form.BaseURL, d.Form.ClientID = st.BaseURL, st.ClientID
	}
	if d.Form.PublicURL == "" {
		d.Form.PublicURL = a.opts.CalloutSetup.PublicURL
	}
	return d, nil
}

// renderSettings renders the settings page with the connection card's state.
func (a *Admin) renderSettings(c *gin.Context, status int, cd connectionData) {
	d := a.settings()
	d.Conn = cd
	a.render(c, status, "settings", page{Title: "Settings", Nav: "settings", Data: d})
}

func (a *Admin) settingsWith(c *gin.Context, status int, f connForm, rep *connReport, confirm bool) {
	cd, err := a.connectionData(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	cd.Report, cd.Confirm = rep, confirm
	a.renderSettings(c, status, cd)
}

// saveConnection stores the entered connection once Zuora accepts it and
// switches the running client to it.
func (a *Admin) saveConnection(c *gin.Context) {
	if a.opts.Settings == nil {
		a.errorPage(c, http.StatusNotFound, "No connection settings", "This server does not keep a Zuora connection in its settings.")
		return
	}
	in := connection.Input{BaseURL: c.PostForm("base_url"), ClientID: c.PostForm("client_id"), ClientSecret: c.PostForm("client_secret")}
	f := connForm{BaseURL: in.BaseURL, ClientID: in.ClientID}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 60*time.Second)
	defer cancel()
	rep, err := a.opts.Settings.Save(ctx, in)
	var ve *engine.ValidationError
	var ce *engine.ConflictError
	switch {
	case errors.As(err, &ve):
		f.Errors = map[string]string{}
		lines := []string{"Nothing was saved; the running connection is unchanged."}
		for _, fe := range ve.Errors {
			f.Errors[fe.Field] = a.redactWith(fe.Message, in.ClientSecret)
			lines = append(lines, a.redactWith(fe.Message, in.ClientSecret))
		}
		a.logger(c).Warn().Str("base_url", in.BaseURL).Str("client_id", in.ClientID).Msg("admin: Zuora connection refused")
		a.settingsWith(c, http.StatusUnprocessableEntity, f, &connReport{Action: "Save and connect", Lines: lines}, false)
		return
	case errors.As(err, &ce):
		a.settingsWith(c, http.StatusConflict, f, &connReport{Action: "Save and connect", Lines: []string{ce.Message, "Nothing was saved."}}, false)
		return
	case err != nil:
		a.fail(c, err)
		return
	}
	a.logger(c).Info().Str("base_url", in.BaseURL).Str("client_id", in.ClientID).Msg("admin: Zuora connection saved")
	a.kick()
	a.settingsWith(c, http.StatusOK, connForm{}, &connReport{OK: true, Action: "Save and connect",
		Lines: []string{a.redactWith(rep.Message, in.ClientSecret), fmt.Sprintf("Took %s.", rep.Took)}}, false)
}

// setupCallouts creates billsync's callouts in the tenant (idempotently).
func (a *Admin) setupCallouts(c *gin.Context) {
	if a.opts.Callouts == nil {
		a.errorPage(c, http.StatusNotFound, "No callouts", "This server cannot set up callouts.")
		return
	}
	f := connForm{PublicURL: strings.TrimSpace(c.PostForm("public_url"))}
	in := a.opts.CalloutSetup
	if f.PublicURL != "" {
		in.PublicURL = f.PublicURL
	}
	rep := &connReport{Action: "Set up callouts"}
	switch {
	case in.Password == "":
		rep.Lines = []string{"Set BILLSYNC_WEBHOOK_PASSWORD first: Zuora sends it with every callout and billsync checks it. Nothing was changed in Zuora."}
		a.settingsWith(c, http.StatusConflict, f, rep, false)
		return
	case !strings.HasPrefix(in.PublicURL, "https://") && !strings.HasPrefix(in.PublicURL, "http://"):
		rep.Lines = []string{"Enter billsync's public URL (https://…, as Zuora reaches it). Nothing was changed in Zuora."}
		f.Errors = map[string]string{"publicUrl": "an absolute https:// URL"}
		a.settingsWith(c, http.StatusUnprocessableEntity, f, rep, false)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 60*time.Second)
	defer cancel()
	res, err := a.opts.Callouts.SetupCallouts(ctx, in)
	rep.Lines = setupLines(res)
	if err != nil {
		rep.Lines = append(rep.Lines, a.redact("Stopped: "+err.Error()))
		a.logger(c).Warn().Err(err).Msg("admin: setting up callouts failed")
	} else {
		rep.OK = true
		rep.Lines = append(rep.Lines, "Zuora calls "+strings.TrimRight(in.PublicURL, "/")+"/webhooks/zuora/… with Basic auth (BILLSYNC_WEBHOOK_USERNAME / BILLSYNC_WEBHOOK_PASSWORD).")
		a.logger(c).Info().Int("created", len(res.Created)).Int("existed", len(res.Existed)).Msg("admin: callouts set up")
	}
	a.settingsWith(c, http.StatusOK, f, rep, false)
}

// removeIntegration asks first, then removes billsync's callouts from the
// tenant and forgets a connection stored on the settings page.
func (a *Admin) removeIntegration(c *gin.Context) {
	if a.opts.Callouts == nil {
		a.errorPage(c, http.StatusNotFound, "No callouts", "This server cannot remove callouts.")
		return
	}
	if c.PostForm("confirm") != "yes" {
		a.settingsWith(c, http.StatusOK, connForm{}, nil, true)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 60*time.Second)
	defer cancel()
	rep := &connReport{Action: "Remove integration"}
	res, err := a.opts.Callouts.RemoveCallouts(ctx)
	rep.Lines = setupLines(res)
	if err != nil {
		rep.Lines = append(rep.Lines, a.redact("Stopped: "+err.Error()+". The stored connection is kept, so you can try again."))
		a.logger(c).Warn().Err(err).Msg("admin: removing callouts failed")
		a.settingsWith(c, http.StatusOK, connForm{}, rep, false)
		return
	}
	rep.OK = true
	a.logger(c).Info().Int("removed", len(res.Removed)).Msg("admin: callouts removed")
	if a.opts.Settings != nil {
		if st, err := a.opts.Settings.Status(ctx); err == nil && st.Source == connection.SourceSettings {
			msg, err := a.opts.Settings.Forget(ctx)
			if err != nil {
				a.fail(c, err)
				return
			}
			rep.Lines = append(rep.Lines, msg)
		} else if err == nil && st.Source == connection.SourceEnvironment {
			rep.Lines = append(rep.Lines, "The connection comes from the environment and stays; remove BILLSYNC_ZUORA_* to disconnect.")
		}
	}
	a.settingsWith(c, http.StatusOK, connForm{}, rep, false)
}

func setupLines(r inbound.SetupReport) []string {
	var out []string
	for _, s := range r.Created {
		out = append(out, "created "+s)
	}
	for _, s := range r.Existed {
		out = append(out, "already there: "+s)
	}
	for _, s := range r.Removed {
		out = append(out, "removed "+s)
	}
	if len(out) == 0 {
		out = []string{"Nothing to do in Zuora."}
	}
	return out
}

// redactWith masks the configured secrets and one more value (a secret just entered).
func (a *Admin) redactWith(s, more string) string {
	s = a.redact(s)
	if len(more) >= 4 {
		s = strings.ReplaceAll(s, more, "••••••")
	}
	return s
}
