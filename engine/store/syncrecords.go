package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Sync record states.
const (
	StatePending  = "pending"
	StateInFlight = "in_flight"
	StateSynced   = "synced"
	StateFailed   = "failed"
	StateDead     = "dead"
	StateSkipped  = "skipped"
	StateDrifted  = "drifted"
)

type syncRecordRow struct {
	ID                 int64 `gorm:"primaryKey"`
	EntityKind         string
	EntityID           string
	Connector          string
	Direction          string
	State              string
	Reason             string
	DesiredRevision    int
	SyncedRevision     int
	Attempts           int
	NextAttemptAt      time.Time
	ClaimedBy          string
	ClaimedUntil       *time.Time
	LastAttemptAt      *time.Time
	LastErrorCode      string
	LastErrorMessage   string
	LastRequestID      string
	PayloadHash        string
	ZuoraID            string
	ZuoraNumber        string
	ZuoraURL           string
	PushedState        string
	ProcessingRevision int
	Claims             int
	LeaseToken         string
	DriftCheck         string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

func (syncRecordRow) TableName() string { return "sync_records" }

// GetSyncRecord returns the outbound Zuora sync record of an entity.
func (db *DB) GetSyncRecord(ctx context.Context, kind, id string) (SyncRecord, error) {
	var r syncRecordRow
	err := db.Gorm.WithContext(ctx).Where("entity_kind = ? AND entity_id = ? AND connector = ? AND direction = ?",
		kind, id, ConnectorZuora, DirectionOut).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return SyncRecord{}, notFound("sync record", kind+"/"+id)
	}
	if err != nil {
		return SyncRecord{}, err
	}
	return syncRecordFromRow(r), nil
}

// SyncRecord is the sync state of one entity towards one connector in one direction.
type SyncRecord struct {
	ID               int64      `json:"id"`
	EntityKind       string     `json:"entityKind"`
	EntityID         string     `json:"entityId"`
	Connector        string     `json:"connector"`
	Direction        string     `json:"direction"`
	State            string     `json:"state"`
	Reason           string     `json:"reason,omitempty"`
	DesiredRevision  int        `json:"desiredRevision"`
	SyncedRevision   int        `json:"syncedRevision"`
	Attempts         int        `json:"attempts"`
	NextAttemptAt    time.Time  `json:"nextAttemptAt"`
	LastAttemptAt    *time.Time `json:"lastAttemptAt,omitempty"`
	LastErrorCode    string     `json:"lastErrorCode,omitempty"`
	LastErrorMessage string     `json:"lastErrorMessage,omitempty"`
	LastRequestID    string     `json:"lastRequestId,omitempty"`
	PayloadHash      string     `json:"payloadHash,omitempty"`
	ZuoraID          string     `json:"zuoraId,omitempty"`
	ZuoraNumber      string     `json:"zuoraNumber,omitempty"`
	ZuoraURL         string     `json:"zuoraUrl,omitempty"`
	PushedState      string     `json:"-"`
	// Claims counts claims since the last settled outcome; above 1 means an
	// earlier attempt was cut off and may have reached Zuora.
	Claims int `json:"-"`
	// LeaseToken identifies the claim that holds an in-flight record (a new
	// one per claim); Heartbeat and Finish need it.
	LeaseToken string `json:"-"`
	// DriftCheck, on a claimed record, is the period of the drift check it
	// was claimed for ('' for a reconcile).
	DriftCheck   string     `json:"-"`
	ClaimedUntil *time.Time `json:"claimedUntil,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
}

func syncRecordFromRow(r syncRecordRow) SyncRecord {
	return SyncRecord{
		ID: r.ID, EntityKind: r.EntityKind, EntityID: r.EntityID, Connector: r.Connector, Direction: r.Direction,
		State: r.State, Reason: r.Reason, DesiredRevision: r.DesiredRevision, SyncedRevision: r.SyncedRevision,
		Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.UTC(), LastAttemptAt: utcPtr(r.LastAttemptAt),
		LastErrorCode: r.LastErrorCode, LastErrorMessage: r.LastErrorMessage, LastRequestID: r.LastRequestID,
		PayloadHash: r.PayloadHash, PushedState: r.PushedState, Claims: r.Claims, LeaseToken: r.LeaseToken, DriftCheck: r.DriftCheck, ClaimedUntil: utcPtr(r.ClaimedUntil), ZuoraID: r.ZuoraID, ZuoraNumber: r.ZuoraNumber, ZuoraURL: r.ZuoraURL,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}
