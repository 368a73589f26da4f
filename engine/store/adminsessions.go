package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/billsync/billsync/engine"
)

type secretRow struct {
	Name      string `gorm:"primaryKey"`
	Value     string
	CreatedAt time.Time
}

func (secretRow) TableName() string { return "secrets" }

// Secret returns the named random secret (n bytes, hex-encoded), creating it
// on first use; every replica gets the same value.
func (db *DB) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	g := db.Gorm.WithContext(ctx)
	if err := g.Clauses(clause.OnConflict{DoNothing: true}).Create(&secretRow{Name: name, Value: hex.EncodeToString(b), CreatedAt: db.Now()}).Error; err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	var row secretRow
	if err := g.Where("name = ?", name).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return hex.DecodeString(row.Value)
}

// AdminSession is one admin login: ID is the SHA-256 of the cookie's token,
// PasswordFP the fingerprint of the password it was opened with.
type AdminSession struct {
	ID         string `gorm:"primaryKey"`
	PasswordFP string `gorm:"column:password_fp"`
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

func (AdminSession) TableName() string { return "admin_sessions" }

// CreateAdminSession stores a session (and drops expired ones).
func (db *DB) CreateAdminSession(ctx context.Context, s AdminSession) error {
	g := db.Gorm.WithContext(ctx)
	if err := g.Where("expires_at < ?", db.Now()).Delete(&AdminSession{}).Error; err != nil {
		return err
	}
	s.CreatedAt = db.Now()
	s.ExpiresAt = s.ExpiresAt.UTC()
	return g.Create(&s).Error
}

// AdminSessionByID returns a stored session, or engine.ErrNotFound.
func (db *DB) AdminSessionByID(ctx context.Context, id string) (AdminSession, error) {
	var s AdminSession
	err := db.Gorm.WithContext(ctx).Where("id = ?", id).Take(&s).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return s, engine.ErrNotFound
	}
	return s, err
}

// DeleteAdminSession ends one session (logout).
func (db *DB) DeleteAdminSession(ctx context.Context, id string) error {
	return db.Gorm.WithContext(ctx).Where("id = ?", id).Delete(&AdminSession{}).Error
}

// EndAdminSessionsExcept ends every session not opened with the password
// fingerprint fp (the password changed) and every expired one.
func (db *DB) EndAdminSessionsExcept(ctx context.Context, fp string) (int64, error) {
	res := db.Gorm.WithContext(ctx).Where("password_fp <> ? OR expires_at < ?", fp, db.Now()).Delete(&AdminSession{})
	return res.RowsAffected, res.Error
}
