package mappings

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Mapping links one local id to one Zuora object.
type Mapping struct {
	Kind        Kind      `json:"kind"`
	LocalID     string    `json:"localId"`
	ZuoraID     string    `json:"zuoraId"`
	ZuoraNumber string    `json:"zuoraNumber,omitempty"`
	ParentID    string    `json:"parentId,omitempty"`
	PayloadHash string    `json:"-"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

type row struct {
	Kind        string `gorm:"primaryKey"`
	LocalID     string `gorm:"primaryKey"`
	ZuoraID     string
	ZuoraNumber string
	ParentID    string
	PayloadHash string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (row) TableName() string { return "id_mappings" }

func fromRow(r row) Mapping {
	return Mapping{Kind: Kind(r.Kind), LocalID: r.LocalID, ZuoraID: r.ZuoraID, ZuoraNumber: r.ZuoraNumber,
		ParentID: r.ParentID, PayloadHash: r.PayloadHash, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// ErrNotFound is returned when no mapping exists.
var ErrNotFound = errors.New("mapping not found")

// ErrConflict is returned when the Zuora id is already mapped to another local id.
var ErrConflict = errors.New("zuora object already mapped to another local id")

// Store reads and writes mappings. Pass a transaction's *gorm.DB to With to
// write mappings in the same transaction as other changes.
type Store struct{ db *gorm.DB }

// New returns a mapping store on db.
func New(db *gorm.DB) *Store { return &Store{db: db} }

// With returns the store bound to tx.
func (s *Store) With(tx *gorm.DB) *Store { return &Store{db: tx} }

// Put creates or updates the mapping of (kind, localID). It fails with
// ErrConflict when the Zuora id already belongs to another local id of the kind.
func (s *Store) Put(ctx context.Context, m Mapping) error {
	now := time.Now().UTC()
	r := row{Kind: string(m.Kind), LocalID: m.LocalID, ZuoraID: m.ZuoraID, ZuoraNumber: m.ZuoraNumber,
		ParentID: m.ParentID, PayloadHash: m.PayloadHash, CreatedAt: now, UpdatedAt: now}
	// Inside a transaction a failed statement ends it (Postgres), so the
	// conflict is looked for first; outside one, the Zuora id's unique index
	// finds it, and the owner is read only then.
	if _, inTx := s.db.Statement.ConnPool.(gorm.TxCommitter); inTx {
		if err := s.conflict(ctx, m); err != nil {
			return err
		}
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "kind"}, {Name: "local_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"zuora_id", "zuora_number", "parent_id", "payload_hash", "updated_at"}),
	}).Create(&r).Error
	if err != nil && isUniqueViolation(err) {
		// Two Puts of the same new mapping at once (two first subscriptions
		// adopting one account): the loser's insert trips the Zuora id's
		// index, not the upsert's. The same local id is no conflict: its
		// update applies. (Inside a Postgres transaction the re-read fails
		// and the conflict stands; the reconcile is retried.)
		var cur row
		if e := s.db.WithContext(ctx).Where("kind = ? AND zuora_id = ?", r.Kind, r.ZuoraID).Take(&cur).Error; e == nil && cur.LocalID == r.LocalID {
			return s.db.WithContext(ctx).Model(&row{}).Where("kind = ? AND local_id = ?", r.Kind, r.LocalID).
				Updates(map[string]any{"zuora_number": r.ZuoraNumber, "parent_id": r.ParentID, "payload_hash": r.PayloadHash, "updated_at": now}).Error
		} else if e == nil {
			return fmt.Errorf("%w: %s %s is mapped to %q, not %q", ErrConflict, m.Kind, m.ZuoraID, cur.LocalID, m.LocalID)
		}
		return fmt.Errorf("%w: %s %s", ErrConflict, m.Kind, m.ZuoraID)
	}
	return err
}

// conflict reports ErrConflict when the Zuora id of m belongs to another
// local id of its kind.
func (s *Store) conflict(ctx context.Context, m Mapping) error {
	var other row
	err := s.db.WithContext(ctx).Where("kind = ? AND zuora_id = ? AND local_id <> ?", string(m.Kind), m.ZuoraID, m.LocalID).Take(&other).Error
	if err == nil {
		return fmt.Errorf("%w: %s %s is mapped to %q, not %q", ErrConflict, m.Kind, m.ZuoraID, other.LocalID, m.LocalID)
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return err
	}
	return nil
}

// SetHash records the payload hash last pushed for a mapping.
func (s *Store) SetHash(ctx context.Context, kind Kind, localID, hash string) error {
	return s.db.WithContext(ctx).Model(&row{}).Where("kind = ? AND local_id = ?", string(kind), localID).
		Updates(map[string]any{"payload_hash": hash, "updated_at": time.Now().UTC()}).Error
}

// Get returns the mapping of a local id.
func (s *Store) Get(ctx context.Context, kind Kind, localID string) (Mapping, error) {
	var r row
	err := s.db.WithContext(ctx).Where("kind = ? AND local_id = ?", string(kind), localID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Mapping{}, ErrNotFound
	}
	return fromRow(r), err
}

// ByZuoraID returns the mapping of a Zuora id.
func (s *Store) ByZuoraID(ctx context.Context, kind Kind, zuoraID string) (Mapping, error) {
	var r row
	err := s.db.WithContext(ctx).Where("kind = ? AND zuora_id = ?", string(kind), zuoraID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Mapping{}, ErrNotFound
	}
	return fromRow(r), err
}

// ByZuoraKey returns the mapping whose Zuora id or number is key.
func (s *Store) ByZuoraKey(ctx context.Context, kind Kind, key string) (Mapping, error) {
	var r row
	err := s.db.WithContext(ctx).Where("kind = ? AND (zuora_id = ? OR zuora_number = ?)", string(kind), key, key).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Mapping{}, ErrNotFound
	}
	return fromRow(r), err
}

// Children returns the mappings of a kind whose local id starts with prefix+"/".
func (s *Store) Children(ctx context.Context, kind Kind, prefix string) ([]Mapping, error) {
	var rows []row
	err := s.db.WithContext(ctx).Where("kind = ? AND local_id LIKE ? ESCAPE '\\'", string(kind), escapeLike(prefix)+"/%").Order("local_id").Find(&rows).Error
	out := make([]Mapping, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromRow(r))
	}
	return out, err
}

// ByParent returns the mappings of a kind with the given parent id.
func (s *Store) ByParent(ctx context.Context, kind Kind, parent string) ([]Mapping, error) {
	var rows []row
	err := s.db.WithContext(ctx).Where("kind = ? AND parent_id = ?", string(kind), parent).Order("local_id").Find(&rows).Error
	out := make([]Mapping, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromRow(r))
	}
	return out, err
}

// ByParents returns the mappings of a kind whose parent is one of parents,
// grouped by parent, each group in local id order.
func (s *Store) ByParents(ctx context.Context, kind Kind, parents []string) (map[string][]Mapping, error) {
	out := map[string][]Mapping{}
	if len(parents) == 0 {
		return out, nil
	}
	var rows []row
	if err := s.db.WithContext(ctx).Where("kind = ? AND parent_id IN ?", string(kind), parents).Order("local_id").Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.ParentID] = append(out[r.ParentID], fromRow(r))
	}
	return out, nil
}

// Mapped reports which of localIDs have a mapping of the kind.
func (s *Store) Mapped(ctx context.Context, kind Kind, localIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(localIDs))
	if len(localIDs) == 0 {
		return out, nil
	}
	var found []string
	if err := s.db.WithContext(ctx).Model(&row{}).Where("kind = ? AND local_id IN ?", string(kind), localIDs).Pluck("local_id", &found).Error; err != nil {
		return nil, err
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// Delete removes a mapping.
func (s *Store) Delete(ctx context.Context, kind Kind, localID string) error {
	return s.db.WithContext(ctx).Where("kind = ? AND local_id = ?", string(kind), localID).Delete(&row{}).Error
}

// ListOptions selects a page of mappings.
type ListOptions struct {
	Kind    Kind
	LocalID string
	After   string // cursor: "kind\x00local_id" of the last row
	Limit   int
}

// List returns a page of mappings ordered by kind and local id, and the next cursor.
func (s *Store) List(ctx context.Context, o ListOptions) ([]Mapping, string, error) {
	limit := o.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := s.db.WithContext(ctx).Order("kind, local_id").Limit(limit + 1)
	if o.Kind != "" {
		q = q.Where("kind = ?", string(o.Kind))
	}
	if o.LocalID != "" {
		q = q.Where("local_id = ? OR local_id LIKE ? ESCAPE '\\'", o.LocalID, escapeLike(o.LocalID)+"/%")
	}
	if o.After != "" {
		k, l, _ := strings.Cut(o.After, "|")
		q = q.Where("kind > ? OR (kind = ? AND local_id > ?)", k, k, l)
	}
	var rows []row
	if err := q.Find(&rows).Error; err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[len(rows)-1]
		next = last.Kind + "|" + last.LocalID
	}
	out := make([]Mapping, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromRow(r))
	}
	return out, next, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`%`, `\%`, `_`, `\_`).Replace(s)
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint") || strings.Contains(msg, "23505") || strings.Contains(msg, "duplicate key")
}
