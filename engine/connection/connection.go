// Package connection keeps the Zuora connection entered on the admin page:
// the tenant's REST base URL, the OAuth client id and the client secret,
// sealed with AES-256-GCM under BILLSYNC_SECRET_KEY before it reaches the
// database, and applied to the running Zuora client at once (no restart),
// on this replica when saved and on the others within a refresh interval.
// A connection configured in the environment (BILLSYNC_ZUORA_BASE_URL) wins:
// it is shown, and the page cannot change it.
package connection

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/engine"
	"github.com/billsync/billsync/engine/store"
)

// MinKeyLength is the shortest BILLSYNC_SECRET_KEY accepted.
const MinKeyLength = 32

// Sealer seals secrets with AES-256-GCM; the AES key is the SHA-256 of
// BILLSYNC_SECRET_KEY.
type Sealer struct {
	aead cipher.AEAD
	id   string
}

// NewSealer builds a Sealer from the key (at least MinKeyLength characters).
func NewSealer(key string) (*Sealer, error) {
	if len(key) < MinKeyLength {
		return nil, fmt.Errorf("BILLSYNC_SECRET_KEY must be at least %d characters", MinKeyLength)
	}
	k := sha256.Sum256([]byte("billsync secret key\x00" + key))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256([]byte("billsync key id\x00" + key))
	return &Sealer{aead: aead, id: hex.EncodeToString(id[:6])}, nil
}

// KeyID names the key without revealing it (stored next to what it sealed).
func (s *Sealer) KeyID() string { return s.id }

// aad binds a sealed value to its use.
const aad = "billsync zuora client secret"

// Seal encrypts plain: base64 of a random nonce and the ciphertext.
func (s *Sealer) Seal(plain string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), []byte(aad))), nil
}

// Open decrypts what Seal returned.
func (s *Sealer) Open(sealed string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("the sealed secret is damaged")
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", errors.New("the sealed secret does not open with BILLSYNC_SECRET_KEY (another key, or damaged)")
	}
	return string(plain), nil
}

// Store is where the connection is kept (*store.DB).
type Store interface {
	GetZuoraConnection(ctx context.Context) (store.ZuoraConnection, error)
	PutZuoraConnection(ctx context.Context, c store.ZuoraConnection) (store.ZuoraConnection, error)
	DeleteZuoraConnection(ctx context.Context) error
}

// Client is the running Zuora client (*zuora.Client).
type Client interface {
	// Probe checks a tenant and credentials without using them.
	Probe(ctx context.Context, baseURL, clientID, clientSecret string, allowAny bool) error
	SetEndpoint(baseURL, clientID, clientSecret string, allowAny bool) error
	BaseURL() string
	ClientID() string
	TestConnection(ctx context.Context) error
}

// Endpoint is a tenant and its credentials.
type Endpoint struct {
	BaseURL, ClientID, ClientSecret string
}

// Where the connection in use comes from.
const (
	SourceEnvironment = "environment"
	SourceSettings    = "settings"
	SourceBuiltin     = "built-in simulator"
)

// Options configures a Manager.
type Options struct {
	Store  Store
	Client Client
	// Sealer is nil when BILLSYNC_SECRET_KEY is not set: nothing can be stored.
	Sealer *Sealer
	// FromEnv: the connection is configured in the environment, which wins.
	FromEnv bool
	// AllowAny accepts base URLs outside zuora.Environments
	// (BILLSYNC_ZUORA_ALLOW_ANY_URL).
	AllowAny bool
	// Fallback is what the client uses without stored settings (the
	// built-in simulator); its source is SourceBuiltin.
	Fallback Endpoint
	Logger   zerolog.Logger
}

// Manager applies and changes the stored connection.
type Manager struct {
	o Options

	mu      sync.Mutex
	applied time.Time // UpdatedAt of the stored connection in use (zero: none)
	secret  string    // the stored secret in use, for redaction
	problem string    // why the stored connection could not be used
}

// New returns a Manager; Load applies what is stored.
func New(o Options) *Manager { return &Manager{o: o} }

// Status is what the settings page shows. It never carries the secret.
type Status struct {
	Source       string    `json:"source"`
	BaseURL      string    `json:"baseUrl"`
	ClientID     string    `json:"clientId"`
	SecretStored bool      `json:"secretStored"`
	UpdatedAt    time.Time `json:"updatedAt,omitzero"`
	// Editable: the page may change the connection (not from the
	// environment, and a key to seal the secret is configured).
	Editable bool `json:"editable"`
	// KeyConfigured: BILLSYNC_SECRET_KEY is set.
	KeyConfigured bool `json:"keyConfigured"`
	// Problem says why the stored connection is not in use, if so.
	Problem string `json:"problem,omitempty"`
}

// Status reports the connection in use and what is stored.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	st := Status{BaseURL: m.o.Client.BaseURL(), ClientID: m.o.Client.ClientID(), KeyConfigured: m.o.Sealer != nil}
	m.mu.Lock()
	st.Problem = m.problem
	applied := m.applied
	m.mu.Unlock()
	switch {
	case m.o.FromEnv:
		st.Source = SourceEnvironment
		return st, nil
	case !applied.IsZero():
		st.Source = SourceSettings
	default:
		st.Source = SourceBuiltin
	}
	st.Editable = m.o.Sealer != nil
	c, err := m.o.Store.GetZuoraConnection(ctx)
	switch {
	case err == nil:
		st.SecretStored, st.UpdatedAt = c.SecretSealed != "", c.UpdatedAt
		if st.Source != SourceSettings {
			st.BaseURL, st.ClientID = c.BaseURL, c.ClientID // stored, not in use (see Problem)
		}
	case !errors.Is(err, engine.ErrNotFound):
		return st, err
	}
	return st, nil
}

// Secret is the stored client secret in use ("" when none), so pages can
// mask it wherever it might appear.
func (m *Manager) Secret() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.secret
}

// Load applies the stored connection to the client when the environment
// does not configure one, and goes back to the fallback when it was
// removed. It runs at start and then every refresh (other replicas' saves).
// A stored secret that does not open is reported in Status, not applied.
func (m *Manager) Load(ctx context.Context) error {
	if m.o.FromEnv {
		return nil
	}
	c, err := m.o.Store.GetZuoraConnection(ctx)
	if errors.Is(err, engine.ErrNotFound) {
		m.mu.Lock()
		wasApplied := !m.applied.IsZero()
		m.applied, m.secret, m.problem = time.Time{}, "", ""
		m.mu.Unlock()
		if wasApplied {
			return m.useFallback()
		}
		return nil
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	same := m.applied.Equal(c.UpdatedAt)
	m.mu.Unlock()
	if same {
		return nil
	}
	secret, perr := m.open(c)
	if perr == nil {
		perr = m.o.Client.SetEndpoint(c.BaseURL, c.ClientID, secret, m.o.AllowAny)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if perr != nil {
		m.problem = "The stored connection is not used: " + perr.Error()
		m.o.Logger.Warn().Str("problem", m.problem).Msg("stored Zuora connection not applied")
		return nil
	}
	m.applied, m.secret, m.problem = c.UpdatedAt, secret, ""
	m.o.Logger.Info().Str("base_url", c.BaseURL).Str("client_id", c.ClientID).Msg("using the Zuora connection from the settings")
	return nil
}

func (m *Manager) open(c store.ZuoraConnection) (string, error) {
	if m.o.Sealer == nil {
		return "", errors.New("BILLSYNC_SECRET_KEY is not set, so the stored client secret cannot be opened")
	}
	if c.KeyID != m.o.Sealer.KeyID() {
		return "", errors.New("it was sealed with another BILLSYNC_SECRET_KEY; enter the client secret again")
	}
	return m.o.Sealer.Open(c.SecretSealed)
}

func (m *Manager) useFallback() error {
	f := m.o.Fallback
	if f.BaseURL == "" {
		return nil
	}
	m.o.Logger.Info().Str("base_url", f.BaseURL).Msg("no stored Zuora connection: back to the built-in simulator")
	return m.o.Client.SetEndpoint(f.BaseURL, f.ClientID, f.ClientSecret, true)
}

// Run reloads the stored connection every interval until ctx ends, so a
// save on another replica takes effect here too.
func (m *Manager) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Load(ctx); err != nil && ctx.Err() == nil {
				m.o.Logger.Warn().Err(err).Msg("reloading the stored Zuora connection")
			}
		}
	}
}

// Input is a connection entered on the page. An empty ClientSecret keeps
// the stored one.
type Input struct {
	BaseURL      string `json:"baseUrl"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// Report says what Save did.
type Report struct {
	Saved   bool          `json:"saved"`
	Message string        `json:"message"`
	Took    time.Duration `json:"-"`
	TookMS  int64         `json:"tookMs"`
}

// ErrFromEnvironment: the environment configures the connection.
var errFromEnv = &engine.ConflictError{Field: "connection", Message: "the Zuora connection comes from the environment (BILLSYNC_ZUORA_BASE_URL, BILLSYNC_ZUORA_CLIENT_ID, BILLSYNC_ZUORA_CLIENT_SECRET), which wins over the settings: change it there"}

var errNoKey = &engine.ConflictError{Field: "connection", Message: fmt.Sprintf("set BILLSYNC_SECRET_KEY (at least %d characters) so billsync can store the client secret encrypted", MinKeyLength)}

// Save checks the connection against Zuora (a token and one catalog read
// with a separate client, so a wrong secret never reaches the running one),
// then stores it with the secret sealed and switches the running client to
// it. Nothing is stored when Zuora refuses: the error says why.
func (m *Manager) Save(ctx context.Context, in Input) (Report, error) {
	start := time.Now()
	if m.o.FromEnv {
		return Report{}, errFromEnv
	}
	if m.o.Sealer == nil {
		return Report{}, errNoKey
	}
	in.BaseURL, in.ClientID = strings.TrimRight(strings.TrimSpace(in.BaseURL), "/"), strings.TrimSpace(in.ClientID)
	secret := in.ClientSecret
	if secret == "" {
		c, err := m.o.Store.GetZuoraConnection(ctx)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return Report{}, err
		}
		if err == nil {
			if secret, err = m.open(c); err != nil {
				return Report{}, &engine.ValidationError{Errors: []engine.FieldError{{Field: "clientSecret", Message: "enter the client secret: " + err.Error()}}}
			}
		}
	}
	if err := m.o.Client.Probe(ctx, in.BaseURL, in.ClientID, secret, m.o.AllowAny); err != nil {
		ze, isZuora := zuora.AsError(err)
		if !isZuora {
			return Report{}, &engine.ValidationError{Errors: fieldErrors(err, m.o.AllowAny)}
		}
		field := "clientSecret"
		if !ze.Auth {
			field = "baseUrl"
		}
		return Report{}, &engine.ValidationError{Errors: []engine.FieldError{{Field: field,
			Message: "Zuora did not accept the connection, nothing was saved: " + err.Error()}}}
	}
	sealed, err := m.o.Sealer.Seal(secret)
	if err != nil {
		return Report{}, err
	}
	if _, err := m.o.Store.PutZuoraConnection(ctx, store.ZuoraConnection{BaseURL: in.BaseURL, ClientID: in.ClientID, SecretSealed: sealed, KeyID: m.o.Sealer.KeyID()}); err != nil {
		return Report{}, err
	}
	c, err := m.o.Store.GetZuoraConnection(ctx) // the stamp as stored, which Load compares
	if err != nil {
		return Report{}, err
	}
	if err := m.o.Client.SetEndpoint(in.BaseURL, in.ClientID, secret, m.o.AllowAny); err != nil {
		return Report{}, err
	}
	m.mu.Lock()
	m.applied, m.secret, m.problem = c.UpdatedAt, secret, ""
	m.mu.Unlock()
	m.o.Logger.Info().Str("base_url", in.BaseURL).Str("client_id", in.ClientID).Msg("Zuora connection saved from the settings and in use")
	// The running client proves the switch (and "last successful call" moves).
	msg := fmt.Sprintf("Saved and in use: Zuora at %s accepted client %s (a fresh OAuth token and a catalog read). The client secret is stored encrypted and not shown again.", in.BaseURL, in.ClientID)
	if err := m.o.Client.TestConnection(ctx); err != nil {
		msg = "Saved, but the first call with it failed: " + err.Error()
	}
	took := time.Since(start).Round(time.Millisecond)
	return Report{Saved: true, Message: msg, Took: took, TookMS: took.Milliseconds()}, nil
}

// Forget deletes the stored connection; the client goes back to the fallback.
func (m *Manager) Forget(ctx context.Context) (string, error) {
	if m.o.FromEnv {
		return "", errFromEnv
	}
	if err := m.o.Store.DeleteZuoraConnection(ctx); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.applied, m.secret, m.problem = time.Time{}, "", ""
	m.mu.Unlock()
	if err := m.useFallback(); err != nil {
		return "", err
	}
	if m.o.Fallback.BaseURL != "" {
		return "The stored connection is deleted; billsync talks to the built-in simulator again.", nil
	}
	return "The stored connection is deleted.", nil
}

// fieldErrors turns Config.Validate's errors into the page's fields.
func fieldErrors(err error, allowAny bool) []engine.FieldError {
	var out []engine.FieldError
	for _, line := range strings.Split(err.Error(), "\n") {
		field, msg := "baseUrl", strings.TrimPrefix(line, "zuora config: ")
		switch {
		case strings.HasPrefix(msg, "ClientID"):
			field = "clientId"
		case strings.HasPrefix(msg, "ClientSecret"):
			field = "clientSecret"
			msg = strings.Replace(msg, "ClientSecret", "client secret", 1)
		}
		if field == "baseUrl" && !allowAny && strings.Contains(msg, "not a Zuora environment") {
			msg += " (BILLSYNC_ZUORA_ALLOW_ANY_URL=true allows other URLs)"
		}
		out = append(out, engine.FieldError{Field: field, Message: msg})
	}
	return out
}
