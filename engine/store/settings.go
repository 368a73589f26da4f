package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

type settingRow struct {
	Key       string `gorm:"primaryKey"`
	Value     string
	UpdatedAt time.Time
}

func (settingRow) TableName() string { return "settings" }

// Settings returns every persisted runtime setting.
func (db *DB) Settings(ctx context.Context) (map[string]string, error) {
	var rows []settingRow
	if err := db.Gorm.WithContext(ctx).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Key] = r.Value
	}
	return out, nil
}

// SetSetting persists one runtime setting.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	return db.Gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "updated_at"}),
	}).Create(&settingRow{Key: key, Value: value, UpdatedAt: db.Now()}).Error
}
