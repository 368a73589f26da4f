package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

type simStateRow struct {
	ID        int `gorm:"primaryKey;autoIncrement:false"`
	State     string
	UpdatedAt time.Time
}

func (simStateRow) TableName() string { return "zuora_sim_state" }

// SimState returns the built-in Zuora simulator's saved state (nil when it
// was never saved).
func (db *DB) SimState(ctx context.Context) ([]byte, error) {
	var row simStateRow
	err := db.Gorm.WithContext(ctx).Where("id = 1").Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []byte(row.State), nil
}

// SaveSimState replaces the built-in Zuora simulator's saved state.
func (db *DB) SaveSimState(ctx context.Context, state []byte) error {
	return db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"state", "updated_at"}),
	}).Create(&simStateRow{ID: 1, State: string(state), UpdatedAt: db.Now()}).Error
}
