package store

import (
	"cmp"
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Kinds of local change in an entity's timeline.
const (
	ChangeCreated  = "created"
	ChangeChanged  = "changed"
	ChangeArchived = "archived"
)

// Kinds of timeline event.
const (
	TimelineChange  = "change"  // a local change (a new revision)
	TimelinePush    = "push"    // an attempt to bring Zuora in line started
	TimelineAnswer  = "answer"  // what came of it: Zuora's answer, or billsync's own error
	TimelineCallout = "callout" // a callout from Zuora (or a poll hit) about the entity's Zuora object
)

type entityChangeRow struct {
	ID         int64 `gorm:"primaryKey"`
	EntityKind string
	EntityID   string
	Revision   int
	Change     string
	CreatedAt  time.Time
}

func (entityChangeRow) TableName() string { return "entity_changes" }

// recordChange notes a new revision of an entity in its write transaction:
// revision 1 is its creation, any other a change.
func (db *DB) recordChange(tx *gorm.DB, kind, id string, revision int) error {
	change := ChangeChanged
	if revision == 1 {
		change = ChangeCreated
	}
	return db.recordChangeAs(tx, kind, id, revision, change)
}

func (db *DB) recordChangeAs(tx *gorm.DB, kind, id string, revision int, change string) error {
	return tx.Create(&entityChangeRow{EntityKind: kind, EntityID: id, Revision: revision, Change: change, CreatedAt: db.Now()}).Error
}

type timelineAttemptRow struct {
	SyncRecordID int64
	SyncID       string
	StartedAt    time.Time
	FinishedAt   time.Time
	Outcome      string
	Detail       string
	ErrorCode    string
	ErrorMessage string
	RequestID    string
	ZuoraCalls   int
	Direction    string
}

// TimelineEvent is one thing that happened to an entity.
type TimelineEvent struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // Timeline*
	// Change (for a local change), the attempt's outcome (for an answer) or
	// the inbox entry's state (for a callout).
	Outcome  string `json:"outcome,omitempty"`
	Revision int    `json:"revision,omitempty"`
	// SyncID and RecordID name the attempt and its sync record (pushes and answers).
	SyncID   string `json:"syncId,omitempty"`
	RecordID int64  `json:"recordId,omitempty"`
	// Direction of the sync record: out (to Zuora) or in (from Zuora).
	Direction    string `json:"direction,omitempty"`
	Detail       string `json:"detail,omitempty"`
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	RequestID    string `json:"requestId,omitempty"`
	ZuoraCalls   int    `json:"zuoraCalls,omitempty"`
	// InboxID, Event and ObjectID describe a callout.
	InboxID  int64  `json:"inboxId,omitempty"`
	Event    string `json:"event,omitempty"`
	ObjectID string `json:"objectId,omitempty"`
	Source   string `json:"source,omitempty"`
}

// TimelineQuery selects an entity's timeline.
type TimelineQuery struct {
	Kind, ID string
	// ZuoraKeys are the ids and numbers of the entity's Zuora objects (from
	// the mappings): callouts about them belong to the entity.
	ZuoraKeys []string
	// Limit bounds the events returned (default 100, at most 500).
	Limit int
}

// Timeline returns, newest first, an entity's local changes, the attempts
// of its sync records (each a push and its answer), and the callouts about
// its Zuora objects.
func (db *DB) Timeline(ctx context.Context, q TimelineQuery) ([]TimelineEvent, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	g := db.Gorm.WithContext(ctx)
	var out []TimelineEvent

	var changes []entityChangeRow
	if err := g.Where("entity_kind = ? AND entity_id = ?", q.Kind, q.ID).Order("id DESC").Limit(limit).Find(&changes).Error; err != nil {
		return nil, err
	}
	for _, c := range changes {
		out = append(out, TimelineEvent{At: c.CreatedAt.UTC(), Kind: TimelineChange, Outcome: c.Change, Revision: c.Revision})
	}

	var attempts []timelineAttemptRow
	if err := g.Table("sync_attempts").Select("sync_attempts.sync_record_id, sync_attempts.sync_id, sync_attempts.started_at, sync_attempts.finished_at, sync_attempts.outcome, "+
		"sync_attempts.detail, sync_attempts.error_code, sync_attempts.error_message, sync_attempts.request_id, sync_attempts.zuora_calls, sync_records.direction").
		Joins("JOIN sync_records ON sync_records.id = sync_attempts.sync_record_id").
		Where("sync_records.entity_kind = ? AND sync_records.entity_id = ?", q.Kind, q.ID).
		Order("sync_attempts.id DESC").Limit(limit).Find(&attempts).Error; err != nil {
		return nil, err
	}
	for _, a := range attempts {
		push := TimelineEvent{At: a.StartedAt.UTC(), Kind: TimelinePush, SyncID: a.SyncID, RecordID: a.SyncRecordID, Direction: a.Direction}
		answer := push
		answer.At, answer.Kind, answer.Outcome = a.FinishedAt.UTC(), TimelineAnswer, a.Outcome
		answer.Detail, answer.ErrorCode, answer.ErrorMessage, answer.RequestID, answer.ZuoraCalls = a.Detail, a.ErrorCode, a.ErrorMessage, a.RequestID, a.ZuoraCalls
		out = append(out, answer, push)
	}

	var keys []string
	for _, k := range q.ZuoraKeys {
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		var inbox []inboxRow
		if err := g.Where("object_id IN ?", keys).Order("id DESC").Limit(limit).Find(&inbox).Error; err != nil {
			return nil, err
		}
		for _, e := range inbox {
			out = append(out, TimelineEvent{At: e.CreatedAt.UTC(), Kind: TimelineCallout, Outcome: e.State, InboxID: e.ID, Event: e.Event,
				ObjectID: e.ObjectID, Source: e.Source, Detail: e.Result, ErrorMessage: e.LastError, RequestID: e.RequestID})
		}
	}
	// Newest first; at the same instant an answer comes after its push, and
	// the push after the change that caused it.
	rank := map[string]int{TimelineAnswer: 0, TimelineCallout: 1, TimelinePush: 2, TimelineChange: 3}
	slices.SortStableFunc(out, func(a, b TimelineEvent) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return cmp.Compare(rank[a.Kind], rank[b.Kind])
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
