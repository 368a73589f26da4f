package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ZuoraConnection is the Zuora connection entered on the admin page. The
// client secret is sealed by the caller (engine/connection); the store never
// sees it in the clear.
type ZuoraConnection struct {
	BaseURL      string
	ClientID     string
	SecretSealed string
	KeyID        string
	UpdatedAt    time.Time
}

type zuoraConnectionRow struct {
	ID           int `gorm:"primaryKey"`
	BaseURL      string
	ClientID     string
	SecretSealed string
	KeyID        string
	UpdatedAt    time.Time
}

func (zuoraConnectionRow) TableName() string { return "zuora_connection" }

// GetZuoraConnection returns the stored connection (engine.ErrNotFound: none).
func (db *DB) GetZuoraConnection(ctx context.Context) (ZuoraConnection, error) {
	var r zuoraConnectionRow
	err := db.Gorm.WithContext(ctx).Where("id = 1").Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ZuoraConnection{}, notFound("zuora connection", "settings")
	}
	if err != nil {
		return ZuoraConnection{}, err
	}
	return ZuoraConnection{BaseURL: r.BaseURL, ClientID: r.ClientID, SecretSealed: r.SecretSealed, KeyID: r.KeyID, UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// PutZuoraConnection stores the connection (one row), stamped now.
func (db *DB) PutZuoraConnection(ctx context.Context, c ZuoraConnection) (ZuoraConnection, error) {
	c.UpdatedAt = db.Now()
	err := db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"base_url", "client_id", "secret_sealed", "key_id", "updated_at"}),
	}).Create(&zuoraConnectionRow{ID: 1, BaseURL: c.BaseURL, ClientID: c.ClientID, SecretSealed: c.SecretSealed, KeyID: c.KeyID, UpdatedAt: c.UpdatedAt}).Error
	return c, err
}

// DeleteZuoraConnection forgets the stored connection.
func (db *DB) DeleteZuoraConnection(ctx context.Context) error {
	return db.Gorm.WithContext(ctx).Where("id = 1").Delete(&zuoraConnectionRow{}).Error
}
