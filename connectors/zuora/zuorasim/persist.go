package zuorasim

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"unsafe"
)

// Store keeps the simulator's objects across restarts (Options.Store).
// Load returns nil and no error when nothing was saved yet.
type Store interface {
	Load() ([]byte, error)
	Save(state []byte) error
}

// FileStore is a Store in one file, written atomically (temporary file and
// rename): `billsync zuora-sim --state PATH`.
type FileStore string

// Load implements Store.
func (f FileStore) Load() ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save implements Store.
func (f FileStore) Save(state []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(string(f)), filepath.Base(string(f))+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(state); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), string(f))
}

// derivedFields are the state's indexes: not saved, rebuilt by reindex from
// the saved objects (they share pointers with them). Every other field of
// state is saved as it is, so a new plain field persists by itself; a new
// index over other fields' objects must be listed here and rebuilt in
// reindex (TestStateFieldsClassified).
var derivedFields = map[string]bool{
	"tiers": true, "accountByNumber": true, "subByID": true, "subsByAccount": true, "chargeOwner": true, "usageByAccount": true,
}

// fields returns a pointer to every saved field of st, by field name.
func (st *state) fields() map[string]any {
	v := reflect.ValueOf(st).Elem()
	out := map[string]any{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if derivedFields[f.Name] {
			continue
		}
		fv := v.Field(i)
		// Unexported fields of the package's own struct, reached for
		// encoding/json: the pointer is to st's own memory.
		out[f.Name] = reflect.NewAt(fv.Type(), unsafe.Pointer(fv.UnsafeAddr())).Interface() //nolint:gosec // see above
	}
	return out
}

// stateVersion is the format of the saved state; a saved state of another
// version is refused (the simulator is for tests and demos: start afresh).
const stateVersion = 1

func (st *state) marshal() ([]byte, error) {
	return json.Marshal(map[string]any{"version": stateVersion, "state": st.fields()})
}

func unmarshalState(b []byte) (*state, error) {
	var doc struct {
		Version int                        `json:"version"`
		State   map[string]json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("zuorasim: saved state: %w", err)
	}
	if doc.Version != stateVersion {
		return nil, fmt.Errorf("zuorasim: saved state has version %d, this simulator reads %d", doc.Version, stateVersion)
	}
	st := newState()
	for name, ptr := range st.fields() {
		raw, ok := doc.State[name]
		if !ok {
			continue // a field added since: keeps newState's value
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // as request bodies are decoded
		if err := dec.Decode(ptr); err != nil {
			return nil, fmt.Errorf("zuorasim: saved state, %s: %w", name, err)
		}
	}
	st.reindex()
	return st, nil
}

// reindex rebuilds derivedFields from the saved objects (after a load every
// nil map of newState's is restored too).
func (st *state) reindex() {
	fresh := newState()
	v, fv := reflect.ValueOf(st).Elem(), reflect.ValueOf(fresh).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Map && f.IsNil() {
			reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(fv.Field(i)) //nolint:gosec // st's own memory
		}
	}
	st.tiers = map[string]*prpTier{}
	for _, ch := range st.charges {
		for _, t := range ch.Tiers {
			st.tiers[t.ID] = t
		}
	}
	st.accountByNumber = map[string]*account{}
	for _, a := range st.accounts {
		st.accountByNumber[a.Number] = a
	}
	st.subByID, st.subsByAccount, st.chargeOwner = map[string]*subscription{}, map[string][]string{}, map[string]*subscription{}
	for _, num := range st.subOrder {
		sub := st.subs[num]
		if sub == nil {
			continue
		}
		st.subsByAccount[sub.AccountID] = append(st.subsByAccount[sub.AccountID], sub.Number)
		for _, ver := range sub.Versions {
			st.subByID[ver.ID] = sub
			for _, rp := range ver.RatePlans {
				for _, ch := range rp.Charges {
					st.chargeOwner[ch.Number] = sub
				}
			}
		}
	}
	st.usageByAccount = map[string][]*usageRecord{}
	for _, u := range st.usage {
		st.usageByAccount[u.AccountID] = append(st.usageByAccount[u.AccountID], u)
	}
}

// Open returns a simulator whose objects are loaded from opts.Store and saved
// to it after every change (before the change is answered), so a restart
// finds what was there and never hands out an id twice. Without a Store it
// is New.
func Open(opts Options) (*Sim, error) {
	s := New(opts)
	if opts.Store == nil {
		return s, nil
	}
	b, err := opts.Store.Load()
	if err != nil {
		return nil, fmt.Errorf("zuorasim: load the saved state: %w", err)
	}
	if b != nil {
		st, err := unmarshalState(b)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.st = st
		s.mu.Unlock()
	} else if err := s.save(); err != nil {
		return nil, err
	}
	return s, nil
}

// persist saves the state after a change. Changes that complete while a save
// is under way are saved together by the next one (group commit); a change
// is answered only once a save that includes it is done.
func (s *Sim) persist() {
	if s.opts.Store == nil {
		return
	}
	my := s.changes.Add(1)
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.saved >= my {
		return
	}
	cur := s.changes.Load()
	if err := s.save(); err != nil {
		s.log.Error().Err(err).Msg("zuorasim: saving the state failed")
		return
	}
	s.saved = cur
}

func (s *Sim) save() error {
	s.mu.Lock()
	b, err := s.st.marshal()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.opts.Store.Save(b)
}

func newEpoch() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
